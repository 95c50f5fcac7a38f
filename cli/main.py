"""The `aezip` command line: train, encode, decode, info, demo. Errors are one line and a non-zero exit."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from aezip import __version__
from aezip.config import AEConfig
from aezip.errors import AezipError, InputError
from aezip.options import TrainOptions

BACKEND = click.Choice(["auto", "triton", "torch"])
DEVICE = click.Choice(["auto", "cpu", "cuda"])
THREADS = click.option("--threads", type=int, default=None,
                       help="CPU threads [default: OMP_NUM_THREADS, else the measured best for this command: 1].")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--hidden {text!r}: expected comma-separated widths such as 512,256") from None
    if not values or min(values) < 1:
        raise InputError(f"--hidden {text!r}: expected positive widths such as 512,256")
    return values


def _train_option(field: str, *decls: str, **kw):
    """A click option whose default is TrainOptions' own, so the CLI and the library agree."""
    return click.option(*decls, default=getattr(TrainOptions, field), show_default=True, **kw)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aezip")
def cli() -> None:
    """Compress image datasets with a trained sparse autoencoder."""


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Model file to write (.aezm).")
@click.option("--range", "image_range", help="Train on images A..B-1 only (A:B).")
@click.option("--hidden", default=",".join(map(str, AEConfig.hidden)), show_default=True,
              help="Encoder widths; the decoder mirrors them.")
@click.option("--latent", default=AEConfig.latent, show_default=True, help="Latent dimensions.")
@click.option("--levels", default=AEConfig.levels, show_default=True, help="Quantization levels of each latent.")
@_train_option("loss", "--loss", type=click.Choice(["bce", "mse", "cosine"]), help="Reconstruction loss.")
@_train_option("rho", "--sparsity", "rho", type=float, help="Sparse-KL target activation rho (0: no penalty).")
@_train_option("beta", "--beta", type=float, help="Weight of the sparse-KL penalty.")
@_train_option("l2", "--l2", type=float, help="Weight of the L2 latent penalty.")
@click.option("--denoise", help="Denoising training: gaussian:SIGMA, mask:P or box:S (intensities in [0, 1]).")
@_train_option("quant_noise", "--quant-noise", type=click.Choice(["uniform", "ste"]),
               help="Quantization-aware training: additive uniform noise, or straight-through rounding.")
@click.option("--prior", help="A second network on the latents: adversarial[:uniform|bernoulli:RHO].")
@_train_option("prior_weight", "--prior-weight", type=float, help="Weight of the adversarial term.")
@_train_option("shift", "--shift", help="Augment with random translations of up to N pixels.")
@_train_option("weight_decay", "--weight-decay", type=float, help="AdamW weight decay.")
@_train_option("epochs", "--epochs")
@_train_option("batch_size", "--batch-size")
@_train_option("lr", "--lr", type=float, help="Peak learning rate (one-cycle schedule).")
@_train_option("seed", "--seed")
@_train_option("val_split", "--val-split", type=float, help="Fraction of DATA kept apart for validation.")
@_train_option("patience", "--patience", help="Early stop after this many epochs without a better validation PSNR.")
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@click.option("--backend", type=BACKEND, default=None, help="Kernel backend [default: AEZIP_BACKEND or auto].")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@click.option("--fused-optimizer", is_flag=True,
              help="torch's fused AdamW: faster steps, weights differ in the last bits from the default.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@THREADS
def train(data: Path, output: Path, image_range: str | None, hidden: str, latent: int, levels: int, rho: float,
          force: bool, quiet: bool, threads: int | None, **options) -> None:
    """Learn a codec on DATA and write it to a model file."""
    from aezip.atomic import check_output
    from aezip.codec import parse_range
    from aezip.data import open_dataset
    from aezip.modelfile import save_model
    from aezip.threads import apply_threads
    from aezip.train import train_model

    check_output(output, force, inputs=(data,))
    apply_threads("train", threads)
    opts = TrainOptions(rho=rho if rho > 0 else None, **options)
    dataset = open_dataset(data)
    lo, hi = parse_range(image_range, dataset.shape[0])
    try:
        config = AEConfig(image_shape=dataset.image_shape, hidden=_int_list(hidden), latent=latent, levels=levels)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    images = dataset.read_all()[lo:hi]
    result = train_model(images, config, opts, progress=not quiet, log=lambda m: click.echo(m, err=True))
    result.info["data"] = {"name": Path(data).name, "range": [lo, hi], "shape": list(images.shape)}
    model_id = save_model(output, result, force=force)
    click.echo(f"wrote {output} (model id {model_id[:16]})")


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help=".aez file to write.")
@click.option("-m", "--model", "model_path", type=click.Path(path_type=Path), help="Model file [default: embedded].")
@click.option("--max-error", type=int, default=None, help="Bound every pixel's error by E gray levels (0: lossless).")
@click.option("--chunk-size", type=int, default=None,
              help="Images per chunk, the unit of random access [default: 1024, fewer for large images].")
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@click.option("--backend", type=BACKEND, default=None, help="Kernel backend [default: AEZIP_BACKEND or auto].")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@THREADS
def encode(data: Path, output: Path, model_path: Path | None, max_error: int | None, chunk_size: int | None,
           device: str, backend: str | None, force: bool, threads: int | None) -> None:
    """Write the dataset DATA into one .aez file."""
    from aezip.atomic import check_output
    from aezip.codec import encode_dataset
    from aezip.data import open_dataset
    from aezip.modelfile import load_model
    from aezip.threads import apply_threads

    check_output(output, force, inputs=(data, model_path))
    apply_threads("encode", threads)
    dataset = open_dataset(data)
    mf = load_model(model_path)
    r = encode_dataset(dataset, mf, output, chunk_size=chunk_size, max_error=max_error, backend=backend,
                       device=device, force=force)
    click.echo(f"wrote {output}: {r.images} images, {r.file_bytes} bytes, {r.bits_per_pixel:.4f} bits/pixel, "
               f"PSNR {r.psnr_db:.2f} dB, max error {r.max_abs_error}, {r.images / r.seconds:.0f} images/s")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Where to write the dataset (a folder for image datasets).")
@click.option("-m", "--model", "model_path", type=click.Path(path_type=Path),
              help="The model that wrote FILE [default: embedded].")
@click.option("--range", "image_range", help="Decode images A..B-1 only (A:B), through the chunk index.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@THREADS
def decode(file: Path, output: Path, model_path: Path | None, image_range: str | None, force: bool,
           threads: int | None) -> None:
    """Give back the dataset stored in FILE, in the format it came in."""
    from aezip.atomic import check_output
    from aezip.codec import decode_file
    from aezip.threads import apply_threads

    check_output(output, force, inputs=(file, model_path), folder=output.is_dir())
    apply_threads("decode", threads)
    r = decode_file(file, output, model_path=model_path, image_range=image_range, force=force)
    click.echo(f"wrote {output}: {r.images} images, {r.images / r.seconds:.0f} images/s")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the header as JSON.")
def info(file: Path, as_json: bool) -> None:
    """Show the header of a .aez file (all checksums are verified)."""
    from aezip.codec import file_info

    h = file_info(file)
    if as_json:
        click.echo(json.dumps(h, indent=2, sort_keys=True))
        return
    src = h["source"]
    rows = [("shape", "x".join(map(str, h["shape"]))), ("dtype", h["dtype"]), ("source format", src["format"]),
            ("model id", h["model_id"]), ("levels", h["levels"]), ("latent", h["latent"]),
            ("max error", "none (lossy)" if h["max_error"] is None else h["max_error"]),
            ("pixel coders", ", ".join(f"{k}: {v} chunk{'s' * (v != 1)}" for k, v in h.get("pixel_coders", {}).items())
             or "none"),
            ("encoder backend", h["backend"]), ("decoder", h["decoder"]), ("chunks", h["chunks"]),
            ("bytes", h["bytes"]), ("bits/pixel", f"{h['bits_per_pixel']:.4f}"),
            ("aezip version", h["aezip_version"])]
    for k, v in rows:
        click.echo(f"{k:>16}: {v}")


@cli.command()
@click.option("--workdir", type=click.Path(path_type=Path), help="Keep the files here [default: a temporary folder].")
def demo(workdir: Path | None) -> None:
    """Encode the shipped MNIST sample with the embedded model, decode it, and compare with xz and zstd."""
    from aezip.demo import run_demo
    from aezip.threads import apply_threads

    apply_threads("encode")   # the encode policy (1 thread here) covers its decodes too
    for line in run_demo(workdir):
        click.echo(line)


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Features file (.npy).")
@click.option("-m", "--model", "model_path", type=click.Path(path_type=Path), help="Model file [default: embedded].")
@click.option("--quantized", is_flag=True, help="The integer codes the codec stores, not the float latents.")
@click.option("--backend", type=BACKEND, default=None, help="Kernel backend [default: AEZIP_BACKEND or auto].")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def embed(data: Path, output: Path, model_path: Path | None, quantized: bool, backend: str | None,
          force: bool) -> None:
    """Write the latent features of DATA (N x latent) for downstream models."""
    import numpy as np
    from aezip.atomic import atomic_path, check_output
    from aezip.codec import check_fits
    from aezip.data import open_dataset
    from aezip.features import embed as embed_features
    from aezip.modelfile import load_model

    check_output(output, force, inputs=(data, model_path))
    dataset = open_dataset(data)
    mf = load_model(model_path)
    check_fits(dataset.image_shape, mf, str(data))
    feats = embed_features(dataset, mf, quantized=quantized, backend=backend)
    with atomic_path(output, force=force, inputs=(data, model_path)) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, feats)
    click.echo(f"wrote {output}: {feats.shape[0]} x {feats.shape[1]} {feats.dtype} features")


@cli.group("eval")
def eval_group() -> None:
    """Evaluate what a model's features are worth."""


@eval_group.command("probe")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--labels", type=click.Path(path_type=Path), required=True, help="IDX label file or 1-D .npy.")
@click.option("-m", "--model", "model_path", type=click.Path(path_type=Path), help="Model file [default: embedded].")
@click.option("--train-range", default="0:8000", show_default=True, help="Images the probe is fit on (A:B).")
@click.option("--test-range", default="8000:10000", show_default=True, help="Images it is tested on (A:B).")
def probe(data: Path, labels: Path, model_path: Path | None, train_range: str, test_range: str) -> None:
    """Linear-probe accuracy of aezip features beside raw pixels and PCA of the same size."""
    from aezip.baselines import PCACodec
    from aezip.codec import check_fits, parse_range
    from aezip.data import open_dataset
    from aezip.features import embed as embed_features, linear_probe, read_labels
    from aezip.modelfile import load_model

    dataset = open_dataset(data)
    mf = load_model(model_path)
    check_fits(dataset.image_shape, mf, str(data))
    y = read_labels(labels)
    if len(y) != dataset.shape[0]:
        raise InputError(f"{labels}: {len(y)} labels for {dataset.shape[0]} images")
    (a, b), (c, d) = parse_range(train_range, len(y)), parse_range(test_range, len(y))
    images = dataset.read_all()
    flat = images.reshape(len(images), -1).astype("float64")
    pca = PCACodec.fit(images[a:b], mf.config.latent)
    features = {f"aezip ({mf.config.latent} latents)": embed_features(dataset, mf),
                "raw pixels": flat,
                f"PCA ({mf.config.latent} components)": (flat - pca.mean) @ pca.basis.T}
    click.echo(f"linear probe: fit on images {a}..{b - 1}, tested on {c}..{d - 1}")
    for name, f in features.items():
        click.echo(f"{name:<28} accuracy {linear_probe(f[a:b], y[a:b], f[c:d], y[c:d]):.4f}")


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Restored dataset.")
@click.option("-m", "--model", "model_path", type=click.Path(path_type=Path), help="Model file [default: embedded].")
@click.option("--denoise", "do_denoise", is_flag=True, help="Map noisy images to clean ones (a --denoise model).")
@click.option("--mask", "mask_path", type=click.Path(path_type=Path),
              help="Missing pixels: a dataset of DATA's shape (or one image's), nonzero = missing.")
@click.option("--mask-box", help="Missing pixels: the box X,Y,W,H in every image.")
@click.option("--candidates", default=20, show_default=True,
              help="Masked: start codes taken from the model's bank of training codes (plus the encoder's).")
@click.option("--steps", default=25, show_default=True, help="Masked: gradient steps refining each start code.")
@click.option("--estimate", type=click.Choice(["mean", "nearest"]), default="mean", show_default=True,
              help="Masked: fit-weighted mean of the refined decodings, or the single best-matching one.")
@click.option("--temperature", default=1.0, show_default=True,
              help="Masked, mean: weights proportional to exp(-err / T), err the squared error on the known pixels.")
@click.option("--original", type=click.Path(path_type=Path), help="The undamaged images, to report PSNR.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def restore(data: Path, output: Path, model_path: Path | None, do_denoise: bool, mask_path: Path | None,
            mask_box: str | None, candidates: int, steps: int, estimate: str, temperature: float,
            original: Path | None, force: bool) -> None:
    """Restore damaged images: denoise them, or fill missing pixels from images on the learned manifold."""
    import numpy as np
    from aezip.atomic import check_output
    from aezip.codec import check_fits
    from aezip.data import open_dataset, write_dataset
    from aezip.metrics import psnr
    from aezip.modelfile import load_model
    from aezip.restore import box_mask, denoise, inpaint

    if sum(map(bool, (do_denoise, mask_path, mask_box))) != 1:
        raise InputError("give exactly one of --denoise, --mask and --mask-box")
    check_output(output, force, inputs=(data, model_path, mask_path, original), folder=output.is_dir())
    dataset = open_dataset(data)
    mf = load_model(model_path)
    check_fits(dataset.image_shape, mf, str(data))
    images = dataset.read_all()
    if do_denoise:
        restored, region = denoise(mf.model, images), np.ones(images.shape, bool)
    else:
        if mask_box:
            missing = box_mask(dataset.image_shape, mask_box)
        else:
            missing = open_dataset(mask_path).read_all() != 0
            if missing.shape[1:] != images.shape[1:] or len(missing) not in (1, len(images)):
                raise InputError(f"{mask_path}: mask of shape {missing.shape} does not fit images {images.shape}")
        if mf.bank is None and candidates > 0:
            click.echo(f"note: {mf.path.name} has no bank of training codes; searching from the encoder's code only")
        restored = inpaint(mf.model, images, missing, mf.bank, candidates=candidates, steps=steps,
                           estimate=estimate, temperature=temperature)
        region = np.broadcast_to(missing, images.shape)
    write_dataset(iter([restored]), restored.shape, dataset.source, output, force=force,
                  inputs=(data, model_path, mask_path, original))
    click.echo(f"wrote {output}: {len(restored)} images restored")
    if original is not None:
        clean = open_dataset(original).read_all()
        if clean.shape != images.shape:
            raise InputError(f"{original}: shape {clean.shape} differs from the data's {images.shape}")
        where = "" if do_denoise else " (damaged region)"
        click.echo(f"PSNR against the originals{where}: damaged {psnr(clean[region], images[region]):.2f} dB, "
                   f"restored {psnr(clean[region], restored[region]):.2f} dB")


@cli.group()
def bench() -> None:
    """Measure the kernels or the codec against the alternatives."""


@bench.command("kernels")
@click.option("--batch", "batches", default="256,4096,65536", show_default=True, help="Batch sizes to sweep.")
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@click.option("--reps", default=20, show_default=True, help="Timed repetitions per row.")
@click.option("--no-compile", is_flag=True, help="Skip the torch.compile rows.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the rows as JSON here.")
def bench_kernels_cmd(batches: str, device: str, reps: int, no_compile: bool, json_path: Path | None) -> None:
    """Time the Triton kernels beside torch eager and torch.compile of the reference."""
    from aezip.kernel_bench import bench_kernels, environment
    from aezip.tensors import resolve_device

    dev = resolve_device(device)
    env = environment(dev)
    rows = bench_kernels(dev, list(_int_list(batches)), reps=reps, compile_ok=not no_compile)
    click.echo(f"device {env['device']} ({env['device_type']}), torch {env['torch']}, triton {env['triton']}, "
               f"commit {str(env['git_commit'])[:10]}, {env['date']}")
    click.echo(f"{'case':<38}{'impl':<15}{'batch':>7}{'median ms':>11}{'p20':>9}{'p80':>9}{'TFLOP/s':>9}"
               f"{'GB/s':>8}{'% peak':>8}")
    for r in rows:
        if "note" in r:
            click.echo(f"{r['case']:<38}{r['impl']:<15}{r['batch']:>7}  {r['note']}")
            continue
        fmt = lambda k, f: f"{r[k]:{f}}" if k in r else "-"  # noqa: E731
        click.echo(f"{r['case']:<38}{r['impl']:<15}{r['batch']:>7}{r['median_s'] * 1e3:>11.3f}"
                   f"{r['p20_s'] * 1e3:>9.3f}{r['p80_s'] * 1e3:>9.3f}{fmt('tflops', '.3f'):>9}{fmt('gb_s', '.1f'):>8}"
                   f"{fmt('pct_peak', '.1f'):>8}")
    if json_path:
        json_path.write_text(json.dumps({"environment": env, "rows": rows}, indent=1))


@bench.command("codec")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-m", "--model", "models", multiple=True, type=click.Path(path_type=Path),
              help="Model file(s) for the aezip rate points [default: the embedded model].")
@click.option("--test-range", default="8000:10000", show_default=True, help="Images to measure on (A:B).")
@click.option("--train-range", default="0:8000", show_default=True, help="Images PCA is fit on (A:B).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write every row as JSON here.")
@click.option("--plot", type=click.Path(path_type=Path), help="Write the rate-distortion plot (PNG) here.")
@click.option("--grid", type=click.Path(path_type=Path), help="Write originals beside reconstructions (PNG) here.")
def bench_codec_cmd(data: Path, models: tuple[Path, ...], test_range: str, train_range: str, json_path: Path | None,
                    plot: Path | None, grid: Path | None) -> None:
    """aezip beside gzip, bz2, xz, zstd, PNG, WebP, JPEG and PCA on the same images, from real file bytes."""
    from aezip.codec import parse_range
    from aezip.data import open_dataset
    from aezip.report import run_codec_report
    from aezip.threads import apply_threads

    apply_threads("encode")   # the encode policy (1 thread here) covers its decodes too
    dataset = open_dataset(data)
    test = parse_range(test_range, dataset.shape[0])
    train_r = parse_range(train_range, dataset.shape[0])
    named = [(Path(m).stem, Path(m)) for m in models] or [("default", None)]
    report = run_codec_report(dataset, test, train_r, named)
    click.echo(f"{report['images']} images {test[0]}..{test[1] - 1}; bits/pixel from file bytes; model bytes apart")
    click.echo(f"{'codec':<16}{'setting':<34}{'bytes':>9}{'bpp':>8}{'PSNR':>8}{'max':>5}{'enc img/s':>11}"
               f"{'dec img/s':>11}{'model B':>9}")
    for r in report["rows"]:
        click.echo(f"{r['codec'][:16]:<16}{r['setting'][:34]:<34}{r['bytes']:>9}{r['bits_per_pixel']:>8.4f}"
                   f"{r['psnr_db']:>8.2f}{r['max_abs_error']:>5}{r['encode_images_per_s']:>11.0f}"
                   f"{r['decode_images_per_s']:>11.0f}{r['model_bytes']:>9}")
    pca = report["pca_at_aezip_rate"]
    if pca["pca"]:
        click.echo(f"at {pca['aezip']['codec']}'s rate ({pca['aezip']['bits_per_pixel']:.4f} bits/pixel): aezip "
                   f"{pca['aezip']['psnr_db']:.2f} dB, best PCA + zstd {pca['pca']['psnr_db']:.2f} dB "
                   f"({pca['pca']['components']} components, step {pca['pca']['step']:g}, "
                   f"{pca['pca']['bits_per_pixel']:.4f} bits/pixel)")
    for k, v in report["bd_rate_percent"].items():
        click.echo(f"BD-rate {k}: " + ("n/a (no common PSNR range)" if v is None else f"{v:+.1f} %"))
    if json_path:
        json_path.write_text(json.dumps(report, indent=1))
    if plot:
        from aezip.plots import rd_plot
        rd_plot(report["rows"], plot, f"{data.name} images {test[0]}-{test[1] - 1}")
    if grid:
        from aezip.report import reconstructions
        from aezip.plots import recon_grid
        original, recons = reconstructions(dataset, test, named, count=16)
        recon_grid(original, recons, grid)


@bench.command("speed")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-m", "--model", "model_path", type=click.Path(path_type=Path), help="Model file [default: embedded].")
@click.option("--images", default=20000, show_default=True, help="Images to time (DATA repeated to this count).")
@click.option("--reps", default=3, show_default=True, help="Timed repetitions (median); lossless and xz run once.")
@THREADS
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write every row as JSON here.")
def bench_speed_cmd(data: Path, model_path: Path | None, images: int, reps: int, threads: int | None,
                    json_path: Path | None) -> None:
    """aezip encode/decode images/s beside xz -9e, zstd -19 and zstd -3 on the same bytes, and as a fraction of
    the GEMM ceiling measured in the same run."""
    import numpy as np
    from aezip.data import open_dataset
    from aezip.speed import run_speed_report

    x = open_dataset(data).read_all()
    x = np.concatenate([x] * -(-images // len(x)))[:images]
    r = run_speed_report(x, reps=reps, model_path=model_path, threads=threads)
    g = r["gemm_gflops"]
    click.echo(f"{r['images']} images {'x'.join(map(str, r['image_shape']))}; GEMM float64 {g['float64']:.1f} "
               f"GFLOP/s, float32 {g['float32']:.1f} GFLOP/s; ceilings: decode {r['ceilings']['decode']:.0f}, "
               f"encode {r['ceilings']['encode']:.0f} images/s")
    click.echo(f"{'codec':<16}{'op':<8}{'where':<15}{'bytes':>10}{'images/s':>12}{'of ceiling':>12}")
    for row in r["rows"]:
        c = row["ceiling_images_per_s"]
        frac = "" if c is None else f"{row['images_per_s'] / c:.0%}"
        click.echo(f"{row['codec']:<16}{row['op']:<8}{row['where']:<15}{row['bytes']:>10}"
                   f"{row['images_per_s']:>12.0f}{frac:>12}")
    if json_path:
        json_path.write_text(json.dumps(r, indent=1))


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so temporary outputs are removed on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group, turning every expected failure into `aezip: error: ...` and exit status 1/2."""
    import logging
    import signal

    logger = logging.getLogger("aezip")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("aezip: note: %(message)s"))
        logger.addHandler(handler)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(args=argv, prog_name="aezip", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"aezip: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aezip: error: aborted", err=True)
        sys.exit(130)
    except AezipError as exc:
        click.echo(f"aezip: error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"aezip: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("aezip: error: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
