"""`aezip info`: what a .aez file, a model file (.aezm) or a decode-side model (.aezd) holds."""
from __future__ import annotations

from pathlib import Path

import click

from aezip.errors import InputError

from .common import PATH, Report, aez_input, per_sample, reporting


@click.command()
@click.argument("file", type=PATH)
@reporting
def info(file: Path, quiet: bool, verbose: int, as_json: bool) -> None:
    """Describe a .aez file (all checksums are verified), a model file (.aezm) or a decode-side model (.aezd)."""
    from aezip import api
    from aezip.codec import image_channels
    from aezip.conv.layout import CODER as CONV_CODER
    from aezip.files.container import MAGIC
    from aezip.files.decodemodel import is_decoder

    report = Report(quiet, verbose, as_json)
    src = aez_input(file)
    head = src[:9] if isinstance(src, bytes) else _head(src)
    if head[:8] != MAGIC and (head[8:9] == b"{" or is_decoder(head)):   # safetensors (8-byte length, then JSON)
        from aezip.files.modelfile import describe
        m = describe(api.load_model(src))
        if m.get("kind") == "conv":
            report.result(m, *(f"{k:>16}: {v}" for k, v in (
                ("model id", m["model_id"]), ("bytes", m["bytes"]),
                ("kind", "decode-side model (decodes; cannot encode)" if m["decode_only"] else "model file"),
                ("decode side", f"{m['decode_side_bytes']} bytes; per rate point (what an --embed-model file holds) "
                                f"{', '.join(map(str, m['decode_side_rate_bytes']))}"),
                ("architecture", f"convolutional codec with a hyperprior, {m['channels']} channel(s), any H x W; "
                                 f"widths n={m['n']} m={m['m']} z={m['z']}"),
                ("rate points", f"{len(m['lambdas'])} (--quality 1..{len(m['lambdas'])}; lambda "
                                f"{', '.join(map(str, m['lambdas']))})"),
                ("trained on", m["training"].get("data", "?")),
                ("training", _conv_training(m["training"])))))
            return
        report.result(m, *(f"{k:>16}: {v}" for k, v in (
            ("model id", m["model_id"]), ("bytes", m["bytes"]),
            ("kind", "decode-side model (decodes; cannot encode)" if m["decode_only"] else "model file"),
            ("decode side", f"{m['decode_side_bytes']} bytes; {m['decode_side_lossy_bytes']} without the max-error "
                            "coder (what a lossy --embed-model file holds)"),
            ("image shape", "x".join(map(str, m["image_shape"]))),
            ("architecture", f"{'-'.join(map(str, [*m['hidden'], m['latent']]))}, {m['levels']} levels" + (
                ", {patch}x{patch} tiles, margin {margin}, context {context} (any H x W)".format(**m["tiles"])
                if m["tiles"] else "")),
            ("code bank", f"{m['code_bank_images']} images"),
            ("max-error parts", ", ".join(m["max_error_parts"]) or "none (the context, gradient, mixing and generic "
                                                                  "coders only)"),
            ("trained on", m["training"].get("data", "?")), ("held-out", m["training"].get("heldout", "?")))))
        return
    h = api.info(src)
    src_fmt = h["source"]
    rows = [("shape", "x".join(map(str, h["shape"]))), ("dtype", h["dtype"]), ("source format", src_fmt["format"]),
            ("model id", h["model_id"]), ("levels", h["levels"]), ("latent", h["latent"]),
            ("quality", _per_chunk(h["chunk_settings"]) if "chunk_settings" in h else
                        f"{h['quality']} of {h['levels']} rate points" if h["entropy"] == CONV_CODER else
                        f"{h.get('quality', h['levels'])} of {h['levels']} levels"
                        + "".join(f", {k}: {v} chunk{'s' * (v != 1)}" for k, v in h.get("reconstruction", {}).items())),
            ("latent coders", ", ".join(f"{k}: {v} chunk{'s' * (v != 1)}" for k, v in h["latent_coders"].items())
             or h["entropy"]),
            ("max error", "per chunk (above)" if "chunk_settings" in h else "none (lossy)" if h["max_error"] is None
             else h["max_error"]),
            ("pixel coders", ", ".join(f"{k}: {v} chunk{'s' * (v != 1)}" for k, v in h.get("pixel_coders", {}).items())
             or "none"),
            ("encoder backend", h["backend"]),
            ("latent search", h.get("latent_search", "none (codes rounded to the nearest)")),
            ("encoder adapted", _adapted(h.get("adapted"))),
            ("decoder", h["decoder"]), ("chunks", h["chunks"]),
            ("bytes", h["bytes"]),
            ("embedded model", f"{h['embedded_model_bytes']} bytes (decodes without -m)" if h["embedded_model_bytes"]
             else "none"),
            ("decoder patch", f"{h['decoder_patch_bytes']} bytes (encode --adapt-decoder)" if h["decoder_patch_bytes"]
             else "none"),
            ("bits/pixel", f"{h['bits_per_pixel']:.4f}{per_sample(image_channels(h['shape']), h['bits_per_sample'])}"),
            ("aezip version", h["aezip_version"])]
    if "shard" in h:
        sh = h["shard"]
        rows.append(("shard", f"{sh['index']}/{sh['count']}: images {sh['images'][0]}..{sh['images'][1] - 1} of "
                              f"{sh['total']} (join the parts with aezip merge)"))
    report.result(h, *(f"{k:>16}: {v}" for k, v in rows))


def _per_chunk(settings: dict[str, int]) -> str:
    """A per-chunk file's settings (encode --per-chunk) in words."""
    return "per chunk: " + ", ".join(f"{k}: {v} chunk{'s' * (v != 1)}" for k, v in settings.items())


def _adapted(record: object) -> str:
    """A header's `adapted` record (untrusted: provenance only) in words."""
    if record is None:
        return "no"
    if isinstance(record, dict) and all(type(record.get(k)) is int for k in ("steps", "images")):
        return f"{record['steps']} steps on the first {record['images']} images (encode --adapt)"
    return "yes (a record this aezip does not read)"


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(9)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None


def _conv_training(info: dict) -> str:
    """A conv model's training summary: its steps, and the model it continued (--init) with the chain's total."""
    line = f"{info.get('steps', '?')} steps, batch {info.get('batch', '?')}, augment {','.join(info.get('augment', []))}"
    init = info.get("init")
    if isinstance(init, dict):
        line += f"; continued model {str(init.get('model_id', '?'))[:16]}, {init.get('total_steps', '?')} steps in all"
    return line
