"""Pictures for `aezip bench codec`: the rate-distortion plot and a grid of originals beside reconstructions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def rd_plot(rows: list[dict], path: Path, title: str) -> None:
    """PSNR against bits/pixel, one line per lossy codec family (image codecs per image and on a mosaic, PCA, each
    aezip model's quality ladder, its --max-error curve)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    groups: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r["psnr_db"] == float("inf"):
            continue
        key = r["codec"]
        if key.startswith("aezip"):
            key = "aezip --max-error E" if "max-error" in r["setting"] else \
                "aezip --embed-model (model in the file)" if "embed-model" in r["setting"] else \
                f"{r['codec']} --quality 2..L"
        if key in ("JPEG", "WebP"):
            key += " (mosaic)" if "mosaic" in r["setting"] else " (per image)"
        groups.setdefault(key, []).append((r["bits_per_pixel"], r["psnr_db"]))
    for key, pts in sorted(groups.items()):
        pts.sort()
        ax.plot(*zip(*pts), marker="o", lw=2.5 if key.startswith("aezip") else 1.2, label=key)
    ax.set_xscale("log")
    ax.set_xlabel("bits/pixel (file bytes x 8 / pixels, log scale)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def recon_grid(original: np.ndarray, recons: list[np.ndarray], path: Path, scale: int = 2) -> None:
    """Rows: the originals, then each reconstruction; columns: images. Saved as a PNG."""
    rows = [np.concatenate(list(a), axis=1) for a in (original, *recons)]
    grid = np.concatenate(rows, axis=0)
    img = Image.fromarray(grid)
    img.resize((img.width * scale, img.height * scale), Image.NEAREST).save(path)
