"""`aezip embed`, `eval probe`, `restore` and `bench`: the autoencoder's other uses and the measurements."""
from __future__ import annotations

from pathlib import Path

import click

from aezip.errors import InputError
from aezip.options import ESTIMATES

from .common import (PATH, Report, backend_option, device_option, effort_option, force_option, model_option,
                     reporting, require_matplotlib, threads_option)


@click.command()
@click.argument("data", type=PATH)
@click.option("-o", "--output", type=PATH, required=True, help="Features file (.npy).")
@model_option()
@click.option("--quantized", is_flag=True, help="The quantized latents, not the float ones: an MLP model's int32 codes, "
                                               "a conv model's rounded latents.")
@backend_option
@force_option
def embed(data: Path, output: Path, model_path: Path | None, quantized: bool, backend: str | None,
          force: bool) -> None:
    """Write the latent features of DATA (N x latent; a conv model: N x its top rate point's latents) for
    downstream models."""
    import numpy as np
    from aezip.files.atomic import atomic_path, check_output
    from aezip.codec import check_fits
    from aezip.files.data import open_dataset
    from aezip.uses.features import embed as embed_features
    from aezip.files.modelfile import load_model

    check_output(output, force, inputs=(data, model_path))
    dataset = open_dataset(data)
    mf = load_model(model_path)
    check_fits(dataset.image_shape, mf, str(data), conv=True)
    feats = embed_features(dataset, mf, quantized=quantized, backend=backend)
    with atomic_path(output, force=force, inputs=(data, model_path)) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, feats)
    click.echo(f"wrote {output}: {feats.shape[0]} x {feats.shape[1]} {feats.dtype} features")


@click.group("eval")
def eval_group() -> None:
    """Evaluate what a model's features are worth."""


SPLIT_HELP = "[default: the last 20 % of DATA held out for testing, the rest to fit]"


@eval_group.command("probe")
@click.argument("data", type=PATH)
@click.option("--labels", type=PATH,
              help="IDX label file or 1-D .npy [default: the class subfolders of an ImageFolder DATA].")
@model_option()
@click.option("--train-range", metavar="A:B", help=f"Images the probe is fit on {SPLIT_HELP}.")
@click.option("--test-range", metavar="A:B", help=f"Images it is tested on {SPLIT_HELP}.")
@reporting
def probe(data: Path, labels: Path, model_path: Path | None, train_range: str | None, test_range: str | None,
          quiet: bool, verbose: int, as_json: bool) -> None:
    """Linear-probe accuracy of aezip features beside raw pixels and PCA of the same size."""
    from aezip.codec import check_fits
    from aezip.files.data import open_dataset
    from aezip.uses.features import probe_report, read_labels
    from aezip.files.modelfile import load_model
    from aezip.options import split_ranges

    report = Report(quiet, verbose, as_json)
    dataset = open_dataset(data)
    report.notes(dataset.notes)
    mf = load_model(model_path)
    check_fits(dataset.image_shape, mf, str(data), conv=True)
    if labels is None and dataset.labels is None:
        raise click.UsageError("give --labels (DATA is not an ImageFolder layout of class subfolders)")
    y = read_labels(labels) if labels is not None else dataset.labels
    if len(y) != dataset.shape[0]:
        raise InputError(f"{labels}: {len(y)} labels for {dataset.shape[0]} images")
    train, test = split_ranges(dataset.shape[0], test_range, train_range)
    r = probe_report(dataset, y, mf, train, test)
    report.result(
        r, f"linear probe: fit on images {train[0]}..{train[1] - 1}, tested on {test[0]}..{test[1] - 1}",
        *(f"{name:<28} accuracy {acc:.4f}" for name, acc in r["accuracy"].items()))


@click.command()
@click.argument("data", type=PATH)
@click.option("-o", "--output", type=PATH, required=True, help="Restored dataset.")
@model_option()
@click.option("--denoise", "do_denoise", is_flag=True, help="Map noisy images to clean ones (a --denoise model).")
@click.option("--mask", "mask_path", type=PATH,
              help="Missing pixels: a dataset of DATA's shape (or one image's), nonzero = missing.")
@click.option("--mask-box", help="Missing pixels: the box X,Y,W,H in every image.")
@click.option("--candidates", default=20, show_default=True,
              help="Masked: start codes taken from the model's bank of training codes (plus the encoder's).")
@click.option("--steps", default=25, show_default=True, help="Masked: gradient steps refining each start code.")
@click.option("--estimate", type=click.Choice(ESTIMATES), default="mean", show_default=True,
              help="Masked: fit-weighted mean of the refined decodings, or the single best-matching one.")
@click.option("--temperature", default=1.0, show_default=True,
              help="Masked, mean: weights proportional to exp(-err / T), err the squared error on the known pixels.")
@click.option("--original", type=PATH, help="The undamaged images, to report PSNR.")
@force_option
@reporting
def restore(data: Path, output: Path, model_path: Path | None, do_denoise: bool, mask_path: Path | None,
            mask_box: str | None, candidates: int, steps: int, estimate: str, temperature: float,
            original: Path | None, force: bool, quiet: bool, verbose: int, as_json: bool) -> None:
    """Restore damaged images: denoise them, or fill missing pixels from images on the learned manifold."""
    import numpy as np
    from aezip.files.atomic import check_output
    from aezip.codec import check_fits
    from aezip.files.data import open_dataset, write_dataset
    from aezip.metrics import psnr
    from aezip.files.modelfile import load_model
    from aezip.conv.model import is_conv
    from aezip.uses.restore import denoise, inpaint, inpaint_conv, missing_pixels

    if sum(map(bool, (do_denoise, mask_path, mask_box))) != 1:
        raise click.UsageError("give exactly one of --denoise, --mask and --mask-box")
    report = Report(quiet, verbose, as_json)
    check_output(output, force, inputs=(data, model_path, mask_path, original), folder=output.is_dir())
    dataset = open_dataset(data)
    mf = load_model(model_path)
    conv = is_conv(mf)
    if conv:
        if do_denoise:
            raise InputError("--denoise needs an MLP model trained with --denoise; a convolutional model fills "
                             "masked pixels (--mask, --mask-box)")
        given = [f"--{n}" for n in ("candidates", "estimate", "temperature")
                 if click.get_current_context().get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise InputError(f"{', '.join(given)}: the MLP models' bank search; a convolutional model takes --steps")
    check_fits(dataset.image_shape, mf, str(data), conv=conv)
    images = dataset.read_all()
    if do_denoise:
        restored, region = denoise(mf.model, images), np.ones(images.shape, bool)
    else:
        mask = open_dataset(mask_path).read_all() if mask_path else None
        missing = missing_pixels(images.shape, mask=mask, mask_box=mask_box)
        if conv:
            restored = inpaint_conv(mf, images, missing, steps=steps)
        else:
            if mf.bank is None and candidates > 0:
                report.line(f"note: {mf.path.name} has no bank of training codes; searching from the encoder's "
                            "code only")
            restored = inpaint(mf.model, images, missing, mf.bank, candidates=candidates, steps=steps,
                               estimate=estimate, temperature=temperature)
        region = np.broadcast_to(missing, images.shape)
    write_dataset(iter([restored]), restored.shape, dataset.source, output, force=force,
                  inputs=(data, model_path, mask_path, original))
    result: dict = {"output": str(output), "images": len(restored)}
    lines = [f"wrote {output}: {len(restored)} images restored"]
    if original is not None:
        clean = open_dataset(original).read_all()
        if clean.shape != images.shape:
            raise InputError(f"{original}: shape {clean.shape} differs from the data's {images.shape}")
        where = "" if do_denoise else " (damaged region)"
        result["psnr_db"] = {"damaged": psnr(clean[region], images[region]),
                             "restored": psnr(clean[region], restored[region])}
        lines.append(f"PSNR against the originals{where}: damaged {result['psnr_db']['damaged']:.2f} dB, "
                     f"restored {result['psnr_db']['restored']:.2f} dB")
    report.result(result, *lines)


@click.group()
def bench() -> None:
    """Measure the kernels or the codec against the alternatives."""


def _write_json(path: Path | None, obj: dict) -> None:
    if path:
        import json
        path.write_text(json.dumps(obj, indent=1))


@bench.command("kernels")
@click.option("--batch", "batches", default="256,4096,65536", show_default=True, help="Batch sizes to sweep.")
@device_option
@click.option("--reps", default=20, show_default=True, help="Timed repetitions per row.")
@click.option("--no-compile", is_flag=True, help="Skip the torch.compile rows.")
@click.option("-o", "--output", "json_path", type=PATH, help="Also write the rows as JSON to this file.")
@reporting
def bench_kernels_cmd(batches: str, device: str, reps: int, no_compile: bool, json_path: Path | None, quiet: bool,
                      verbose: int, as_json: bool) -> None:
    """Time the Triton kernels beside torch eager and torch.compile of the reference."""
    from aezip.bench.kernel_bench import bench_kernels, environment
    from aezip.tensors import resolve_device

    from .main import _int_list

    dev = resolve_device(device)
    env = environment(dev)
    rows = bench_kernels(dev, list(_int_list(batches, "--batch")), reps=reps, compile_ok=not no_compile)
    lines = [f"device {env['device']} ({env['device_type']}), torch {env['torch']}, triton {env['triton']} "
             f"(tl.dot {env['dot_precision']}), "
             f"commit {str(env['git_commit'])[:10]}, {env['date']}",
             f"{'case':<38}{'impl':<15}{'batch':>7}{'median ms':>11}{'p20':>9}{'p80':>9}{'TFLOP/s':>9}"
             f"{'GB/s':>8}{'% peak':>8}  config"]
    for r in rows:
        if "note" in r:
            lines.append(f"{r['case']:<38}{r['impl']:<15}{r['batch']:>7}  {r['note']}")
            continue
        fmt = lambda k, f: f"{r[k]:{f}}" if k in r else "-"  # noqa: E731
        lines.append(f"{r['case']:<38}{r['impl']:<15}{r['batch']:>7}{r['median_s'] * 1e3:>11.3f}"
                     f"{r['p20_s'] * 1e3:>9.3f}{r['p80_s'] * 1e3:>9.3f}{fmt('tflops', '.3f'):>9}"
                     f"{fmt('gb_s', '.1f'):>8}{fmt('pct_peak', '.1f'):>8}  {r.get('config') or ''}".rstrip())
    result = {"environment": env, "rows": rows}
    Report(quiet, verbose, as_json).result(result, *lines)
    _write_json(json_path, result)


@bench.command("codec")
@click.argument("data", type=PATH)
@model_option("Model file(s) for the aezip rate points [default: the embedded model].", multiple=True)
@click.option("--test-range", metavar="A:B", help=f"Images to measure on {SPLIT_HELP}.")
@click.option("--train-range", metavar="A:B", help=f"Images PCA is fit on {SPLIT_HELP}.")
@click.option("-o", "--output", "json_path", type=PATH, help="Also write every row as JSON to this file.")
@click.option("--plot", type=PATH, help="Write the rate-distortion plot (PNG) here (needs matplotlib).")
@click.option("--grid", type=PATH, help="Write originals beside reconstructions (PNG) here (needs matplotlib).")
@effort_option
@click.option("--adapt", type=int, default=0, metavar="STEPS",
              help="Encode with convolutional models' encoders adapted for STEPS steps (aezip encode --adapt).")
@click.option("--adapt-decoder", is_flag=True, help="With --adapt: their decoders' biases too (aezip encode "
                                                     "--adapt-decoder).")
@reporting
def bench_codec_cmd(data: Path, models: tuple[Path, ...], test_range: str | None, train_range: str | None,
                    json_path: Path | None, plot: Path | None, grid: Path | None, effort: str, adapt: int,
                    adapt_decoder: bool, quiet: bool, verbose: int, as_json: bool) -> None:
    """aezip beside gzip, bz2, xz, zstd, PNG, WebP, JPEG and PCA on the same images, from real file bytes."""
    require_matplotlib(plot, grid)
    from aezip.files.data import open_dataset
    from aezip.options import split_ranges
    from aezip.bench.report import run_codec_report
    from aezip.threads import apply_threads

    apply_threads("encode")   # the encode policy covers its decodes too
    report = Report(quiet, verbose, as_json)
    dataset = open_dataset(data)
    report.notes(dataset.notes)
    train_r, test = split_ranges(dataset.shape[0], test_range, train_range)
    named = [(Path(m).stem, Path(m)) for m in models] or [("default", None)]
    with report.progress(None, "bench codec", unit="codec") as progress:
        result = run_codec_report(dataset, test, train_r, named, progress=progress, effort=effort, adapt=adapt,
                                  adapt_decoder=adapt_decoder)
    pca = result["pca_at_aezip_rate"]
    lines = [f"{result['images']} images {test[0]}..{test[1] - 1} measured (PCA fit on {train_r[0]}.."
             f"{train_r[1] - 1}); bits/pixel from file bytes; model bytes apart: +model = with the model file "
             "(aezip: .aezm), +dec = with the decode-side model (what --embed-model adds)",
             f"{'codec':<16}{'setting':<34}{'bytes':>9}{'bpp':>8}{'PSNR':>8}{'max':>5}{'enc img/s':>11}"
             f"{'dec img/s':>11}{'model B':>9}{'+model':>9}{'dec B':>8}{'+dec':>8}"]
    for r in result["rows"]:
        dec = r["decoder_bytes"] is not None
        lines.append(f"{r['codec'][:16]:<16}{r['setting'][:34]:<34}{r['bytes']:>9}{r['bits_per_pixel']:>8.4f}"
                     f"{r['psnr_db']:>8.2f}{r['max_abs_error']:>5}{r['encode_images_per_s']:>11.0f}"
                     f"{r['decode_images_per_s']:>11.0f}{r['model_bytes']:>9}{r['bits_per_pixel_with_model']:>9.4f}"
                     f"{r['decoder_bytes'] if dec else '-':>8}"
                     f"{format(r['bits_per_pixel_with_decoder'], '.4f') if dec else '-':>8}")
    if pca["pca"]:
        lines.append(f"at {pca['aezip']['codec']}'s rate ({pca['aezip']['bits_per_pixel']:.4f} bits/pixel): aezip "
                     f"{pca['aezip']['psnr_db']:.2f} dB, best PCA + zstd {pca['pca']['psnr_db']:.2f} dB "
                     f"({pca['pca']['components']} components, step {pca['pca']['step']:g}, "
                     f"{pca['pca']['bits_per_pixel']:.4f} bits/pixel)")
    lines.append("BD-rate (negative: aezip needs fewer bits at equal PSNR; piecewise cubic, and in brackets "
                 "Bjontegaard's cubic fit):")
    for k, v in result["bd_rate_percent"].items():
        lines.append(f"  {k}: " + ("n/a (no common PSNR range)" if v["pchip"] is None else
                                   f"{v['pchip']:+.1f} % ({v['cubic']:+.1f} %)"))
    lines.append("PSNR at equal rate (each point's PSNR minus the baseline's at that rate, linear in log rate between "
                 "the baseline's efficient points; points outside its rates are not compared):")
    for k, v in result["psnr_gap_db"].items():
        lines.append(f"  {k}: " + ("n/a (no point inside its rates)" if not v["inside"] else
                                   f"{v['min_db']:+.2f} to {v['max_db']:+.2f} dB over {v['inside']} of "
                                   f"{len(v['points'])} points"))
    report.result(result, *lines)
    _write_json(json_path, result)
    if plot:
        from aezip.bench.plots import rd_plot
        rd_plot(result["rows"], plot, f"{data.name} images {test[0]}-{test[1] - 1}")
    if grid:
        from aezip.bench.plots import recon_grid
        from aezip.bench.report import reconstructions
        original, recons = reconstructions(dataset, test, named, count=16)
        recon_grid(original, recons, grid)


@bench.command("speed")
@click.argument("data", type=PATH)
@model_option()
@click.option("--images", default=20000, show_default=True, help="Images to time (DATA repeated to this count).")
@click.option("--reps", default=3, show_default=True, help="Timed repetitions (median); xz -9e compresses once.")
@threads_option
@click.option("-o", "--output", "json_path", type=PATH, help="Also write every row as JSON to this file.")
@reporting
def bench_speed_cmd(data: Path, model_path: Path | None, images: int, reps: int, threads: int | None,
                    json_path: Path | None, quiet: bool, verbose: int, as_json: bool) -> None:
    """aezip encode/decode images/s beside xz -9e, zstd -19 and zstd -3 on the same bytes, and as a fraction of
    the GEMM ceiling measured in the same run."""
    import numpy as np
    from aezip.files.data import open_dataset
    from aezip.bench.speed import run_speed_report

    report = Report(quiet, verbose, as_json)
    x = open_dataset(data).read_all()
    x = np.concatenate([x] * -(-images // len(x)))[:images]
    r = run_speed_report(x, reps=reps, model_path=model_path, threads=threads)
    g = r["gemm_gflops"]
    lines = [f"{r['images']} images {'x'.join(map(str, r['image_shape']))}, {r['threads']} thread(s); GEMM float64 "
             f"{g['float64']:.1f} GFLOP/s, float32 {g['float32']:.1f} GFLOP/s a core; ceilings: decode "
             f"{r['ceilings']['decode']:.0f}, "
             f"encode {r['ceilings']['encode']:.0f} images/s",
             f"{'codec':<16}{'op':<8}{'where':<15}{'bytes':>10}{'images/s':>12}{'of ceiling':>12}"]
    for row in r["rows"]:
        c = row["ceiling_images_per_s"]
        frac = "" if c is None else f"{row['images_per_s'] / c:.0%}"
        lines.append(f"{row['codec']:<16}{row['op']:<8}{row['where']:<15}{row['bytes']:>10}"
                     f"{row['images_per_s']:>12.0f}{frac:>12}")
    report.result(r, *lines)
    _write_json(json_path, r)
