"""The `aezip` command line, a thin layer over the `aezip` Python API. Errors are one line, `aezip: error: ...`;
exit status 0 ok, 1 error, 2 usage. Help and --version import no torch: commands import what they need."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from aezip import __version__
from aezip.errors import AezipError, InputError, ModelMismatchError, ParameterError
from aezip.options import QUANT_NOISES, RECONSTRUCTION_LOSSES, TrainOptions

from .common import (PATH, STREAM, Report, backend_option, device_option, effort_option, flag_for, force_option,
                     jobs_option,
                     model_option, open_input, output_options, range_option, reporting, resolve_output,
                     threads_option, aez_input, per_sample)


def _int_list(text: str, option: str = "--hidden") -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{option} {text!r}: expected comma-separated integers such as 512,256") from None
    if not values or min(values) < 1:
        raise InputError(f"{option} {text!r}: expected positive integers such as 512,256")
    return values


def _train_option(field: str, *decls: str, **kw):
    """A click option whose default is TrainOptions' own, so the CLI and the library agree."""
    return click.option(*decls, default=getattr(TrainOptions, field), show_default=True, **kw)


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Exit status: 0 success, 1 error (one line on stderr), 2 usage error.")
@click.version_option(__version__, prog_name="aezip")
def cli() -> None:
    """Compress image datasets with a trained sparse autoencoder."""


@cli.command()
@click.argument("data", type=PATH)
@output_options("Model file to write (.aezm).", stream=False)
@range_option
@click.option("--arch", type=click.Choice(("mlp", "conv")), default="mlp", show_default=True,
              help="mlp: the sparse autoencoder (whole-image or tile MLP, every coding mode); conv: a convolutional "
                   "codec with a hyperprior, a ladder of rate points in one model (lossy only; --quality 1..rates).")
@click.option("--rates", metavar="L1,L2,...", help="--arch conv: the rate points' rate-distortion weights, lowest rate "
                                                   "first [default: 0.00012,0.00025,0.0005,0.001,0.002,0.004].")
@click.option("--steps", type=int, help="--arch conv: training steps [default: 5000, unless --seconds].")
@click.option("--seconds", type=float, help="--arch conv: train for this much wall time instead of --steps.")
@click.option("--init", "init", type=PATH, help="--arch conv: start from this conv model (.aezm) to continue it or "
                                               "fine-tune it on DATA; its widths and rate points are kept.")
@click.option("--hidden", help="Encoder widths, e.g. 512,256; the decoder mirrors them [default: picked from DATA].")
@click.option("--latent", type=int, help="Latent dimensions (per tile for a tile model) [default: picked].")
@click.option("--levels", type=int, help="Quantization levels of each latent [default: picked].")
@click.option("--patch", type=int, help="Tile side p of a tile model, which codes images of any size; 0: an MLP over "
                                        "the whole image [default: picked from DATA's shape].")
@click.option("--margin", type=int, help="Tile model: pixels the encoder sees around each tile [default: picked].")
@click.option("--context", type=int,
              help="Tile model: the decoder sees the latents of (2C+1)^2 tiles around each tile [default: picked].")
@_train_option("loss", "--loss", type=click.Choice(RECONSTRUCTION_LOSSES), help="Reconstruction loss.")
@_train_option("rho", "--sparsity", "rho", type=float, help="Sparse-KL target activation rho (0: no penalty).")
@_train_option("beta", "--beta", type=float, help="Weight of the sparse-KL penalty.")
@_train_option("l2", "--l2", type=float, help="Weight of the L2 latent penalty.")
@click.option("--denoise", help="Denoising training: gaussian:SIGMA, mask:P or box:S (intensities in [0, 1]).")
@_train_option("quant_noise", "--quant-noise", type=click.Choice(QUANT_NOISES),
               help="Quantization-aware training: additive uniform noise, or straight-through rounding.")
@click.option("--variable-rate", metavar="Q", type=int,
              help="Train for every --quality from Q to --levels: each sample's quantization noise is that of a "
                   "random level (0: the model's own level only) [default: picked: 2 for tile models, 0 else].")
@click.option("--rate-weight", metavar="W", type=float,
              help="R + lambda D training: add W times the latents' bits under a density learned with them (0: "
                   "off; larger W, fewer bits) [default: picked: 0.05 for tile models, 0 else].")
@_train_option("context_model", "--context-model", is_flag=True,
               help="Also count a context entropy model of the latents (tables conditioned on earlier latents).")
@click.option("--prior", help="A second network on the latents: adversarial[:uniform|bernoulli:RHO].")
@_train_option("prior_weight", "--prior-weight", type=float, help="Weight of the adversarial term.")
@_train_option("shift", "--shift", help="Augment with random translations of up to N pixels.")
@click.option("--augment", help="Also augment with random flips, inversions, channel orders, contrasts and "
                                "magnifications: flip,invert,channels,contrast,zoom or a subset, or none [default: "
                                "picked: flip,invert for tile models, all five in colour; none else].")
@_train_option("weight_decay", "--weight-decay", type=float, help="AdamW weight decay.")
@click.option("--epochs", type=int, help="Training epochs [default: picked from DATA's size].")
@click.option("--batch-size", type=int, help="Images per training step [default: picked: 64, or ~1024 tiles].")
@_train_option("lr", "--lr", type=float, help="Peak learning rate (one-cycle schedule).")
@_train_option("seed", "--seed")
@_train_option("val_split", "--val-split", type=float, help="Fraction of DATA kept apart for validation.")
@click.option("--patience", type=int, help="Early stop after this many epochs without a better validation PSNR "
                                           "[default: picked: 30, or the epochs (no early stop) for tile models].")
@_train_option("pixel_model", "--pixel-model/--no-pixel-model",
               help="Also train the learned pixel models of --max-error coding (lossless included) and, for "
                    "one-channel images, the raster network that --effort max mixes in losslessly.")
@_train_option("decoder_bits", "--decoder-bits", metavar="B", type=int,
               help="Integer decoder weight bits; below 16 the decoder is fine-tuned for them (8: a decode-side "
                    "model ~3x smaller; held-out PSNR -0.02 dB on MNIST, +0.02 / +0.23 dB on gray / RGB photographs; "
                    "16: the integers as trained).")
@device_option
@backend_option
@click.option("--fused-optimizer", is_flag=True,
              help="torch's fused AdamW: faster steps, weights differ in the last bits from the default.")
@threads_option
@force_option
@reporting
def train(data: Path, output: Path | None, image_range: str | None, hidden: str | None, force: bool, quiet: bool,
          verbose: int, as_json: bool, threads: int | None, **options) -> None:
    """Learn a codec on DATA and write it to a model file."""
    from aezip import api
    from aezip.files.atomic import check_output
    from aezip.options import parse_range
    from aezip.files.stream import training_array
    from aezip.threads import apply_threads

    out = resolve_output(output)
    check_output(out, force, inputs=(data,))
    apply_threads("train", threads)
    report = Report(quiet, verbose, as_json)
    dataset = api.open_data(open_input(data))
    report.notes(dataset.notes)
    lo, hi = parse_range(image_range, dataset.shape[0])
    images = training_array(dataset, lo, hi)
    source = {"name": Path(data).name, "range": [lo, hi]}
    arch, rates, steps, seconds, init = (options.pop(k) for k in ("arch", "rates", "steps", "seconds", "init"))
    if arch == "conv":
        model = _train_conv(images, hidden, rates, steps, seconds, init, quiet, source, options)
    else:
        for name, value in (("--rates", rates), ("--steps", steps), ("--seconds", seconds), ("--init", init)):
            if value is not None:
                raise InputError(f"{name} applies to --arch conv only")
        model = api.train(images, hidden=_int_list(hidden) if hidden else None, progress=not quiet,
                          log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)),
                          source=source, **options)
    if model is None:   # a torchrun rank other than 0: rank 0 writes the model
        return
    model.save(out, force=force)
    rates_note = f", {model.config.rates} rate points" if arch == "conv" else ""
    report.result({"path": out, "model_id": model.id, "info": model.info},
                  f"wrote {out} (model id {model.id[:16]}{rates_note})")


CONV_OPTIONS = frozenset({"batch_size", "lr", "seed", "augment", "device"})   # what --arch conv reads besides its own


def _train_conv(images, hidden: str | None, rates: str | None, steps: int | None, seconds: float | None,
                init: Path | None, quiet: bool, source: dict, options: dict):
    """`aezip train --arch conv`: the MLP's options are refused where given, the conv codec trained."""
    from aezip import api
    from aezip.options import parse_augment
    ctx = click.get_current_context()
    given = [k for k in ("hidden", *options) if k not in CONV_OPTIONS
             and ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise InputError(f"--{given[0].replace('_', '-')} applies to --arch mlp only")
    if steps is not None and seconds is not None:
        raise InputError("give --steps or --seconds, not both")
    if steps is not None and steps < 1 or seconds is not None and seconds <= 0:
        raise InputError("--steps and --seconds must be positive")
    try:
        lambdas = tuple(float(v) for v in rates.split(",")) if rates else None
    except ValueError:
        raise InputError(f"--rates {rates!r}: expected comma-separated numbers such as 0.0005,0.002") from None
    augment = options["augment"]
    lr = options["lr"] if ctx.get_parameter_source("lr") == click.core.ParameterSource.COMMANDLINE else None
    return api.train_conv(images, lambdas=lambdas, steps=steps or 0, seconds=seconds,
                          batch_size=options["batch_size"], lr=lr, seed=int(options["seed"]),
                          augment=None if augment is None else parse_augment(augment),
                          device=options["device"], log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)),
                          source=source, init=init)


@cli.command()
@click.argument("data", type=PATH)
@output_options(".aez file to write.")
@model_option()
@click.option("--max-error", type=int, default=None, help="Bound every pixel's error by E gray levels (0: lossless).")
@click.option("--quality", type=int, default=None, metavar="Q",
              help="Latent levels 2..L (L: the model's levels, the default); lower is smaller and coarser.")
@click.option("--psnr", type=float, default=None, metavar="DB",
              help="Write the smallest file whose PSNR reaches DB, of any --quality or --max-error (tries each by "
                   "bisection: up to ~15 encodes; inf: lossless).")
@click.option("--per-chunk", is_flag=True,
              help="With --psnr, --arch conv models: let each chunk (--chunk-size, default 64 images) take its own rate "
                   "point or error bound, the mix that reaches DB in the fewest bytes (codes every chunk at every "
                   "setting).")
@click.option("--chunk-size", type=int, default=None,
              help="Images per chunk, the unit of random access [default: 1024, fewer for large images].")
@range_option
@click.option("--key", help="The image array of a .npz holding several.")
@click.option("--embed-model", is_flag=True,
              help="Put the decode-side model into the file, so it decodes without the model file.")
@effort_option
@click.option("--adapt", type=int, default=0, metavar="STEPS",
              help="--arch conv models: first fine-tune the encoder on the first chunk's images for STEPS steps "
                   "(~500: smaller files for pictures unlike the model's training set; the model file is "
                   "unchanged, and so is the decoder unless --adapt-decoder).")
@click.option("--adapt-decoder", is_flag=True,
              help="With --adapt: also fine-tune the decoder's biases; the file carries them (a few hundred bytes, "
                   "counted in its size) and still decodes with the same model.")
@jobs_option
@click.option("--shard", "shard_spec", metavar="K/N|auto", help="Write only part K of N (auto: torchrun's "
              "RANK/WORLD_SIZE); {k} and {n} in -o are replaced. Join the parts with `aezip merge`.")
@device_option
@backend_option
@threads_option
@force_option
@reporting
def encode(data: Path, output: Path | None, to_stdout: bool, model_path: Path | None, max_error: int | None,
           quality: int | None, psnr: float | None, per_chunk: bool, chunk_size: int | None, image_range: str | None,
           key: str | None,
           embed_model: bool, effort: str, adapt: int, adapt_decoder: bool, jobs: int, shard_spec: str | None,
           device: str, backend: str | None, threads: int | None, force: bool, quiet: bool, verbose: int,
           as_json: bool) -> None:
    """Write the dataset DATA ('-': a .npy or IDX on stdin) into one .aez file (or one part of it)."""
    from aezip import api
    from aezip.options import parse_range
    from aezip.files.shards import parse_shard, shard_output
    from aezip.threads import apply_threads

    apply_threads("encode", threads)
    shard = parse_shard(shard_spec) if shard_spec else None
    if shard and output is not None:
        named = shard_output(output, shard)
        if shard_spec == "auto" and shard[1] > 1 and named == output:
            raise InputError("--shard auto: put {k} in -o (e.g. -o part-{k}-of-{n}.aez) so that ranks write "
                             "different files")
        output = named
    out = resolve_output(output, to_stdout)
    report = Report(quiet, verbose, as_json, data_on_stdout=out is None)
    if out is not None:
        from aezip.files.atomic import check_output
        check_output(out, force, inputs=(data, model_path))
    dataset = api.open_data(open_input(data), key=key)
    report.notes(dataset.notes)
    model = api.load_model(model_path)
    lo, hi = parse_range(image_range, dataset.shape[0])
    report.detail(f"model {model.id[:16]} ({model.path}); images {lo}..{hi - 1} of {dataset.shape[0]}")
    try:
        with report.progress(hi - lo if psnr is None or per_chunk else None, "encode") as progress:   # --psnr: trials
            r = api.encode(dataset, out or sys.stdout.buffer, model, max_error=max_error, chunk_size=chunk_size,
                           image_range=image_range, backend=backend, device=device, force=force, progress=progress,
                           jobs=jobs, shard=shard, quality=quality, embed_model=embed_model, effort=effort,
                           psnr=psnr, adapt=adapt, adapt_decoder=adapt_decoder, per_chunk=per_chunk,
                           log=report.detail)
    except ModelMismatchError as exc:
        if model_path is None:
            raise ModelMismatchError(f"{exc}; the embedded model is for MNIST-like 28x28 digits: train one for "
                                     f"these images with `aezip train {data} -o model.aezm`, then encode with "
                                     "-m model.aezm") from None
        raise
    report.result({**r.to_dict(), "output": str(out or STREAM), "model_id": model.id},
                  f"wrote {out or 'stdout'}: {r.images} images, {r.file_bytes} bytes"
                  f"{f' ({r.model_bytes} of them the embedded model)' if r.model_bytes else ''}, "
                  f"{r.bits_per_pixel:.4f} bits/pixel{per_sample(r.channels, r.bits_per_sample)}, "
                  f"PSNR {r.psnr_db:.2f} dB, max error {r.max_abs_error}, {r.images / r.seconds:.0f} images/s"
                  f"{f'; picked {r.picked} of {r.trials} settings tried' if r.picked else ''}")


@cli.command()
@click.argument("file", type=PATH)
@output_options("Where to write the dataset (a folder for image datasets).")
@model_option("The model that wrote FILE [default: the embedded model].")
@range_option
@jobs_option
@threads_option
@force_option
@reporting
def decode(file: Path, output: Path | None, to_stdout: bool, model_path: Path | None, image_range: str | None,
           jobs: int, force: bool, quiet: bool, verbose: int, as_json: bool, threads: int | None) -> None:
    """Give back the dataset stored in FILE ('-': stdin), in the format it came in (-o NAME.npy: a .npy array)."""
    from aezip import api
    from aezip.codec import check_header
    from aezip.files.container import ContainerReader
    from aezip.options import parse_range
    from aezip.threads import apply_threads

    apply_threads("decode", threads)
    out = resolve_output(output, to_stdout)
    report = Report(quiet, verbose, as_json, data_on_stdout=out is None)
    if out is not None:
        from aezip.files.atomic import check_output
        check_output(out, force, inputs=(file, model_path), folder=out.is_dir())
    src = aez_input(file)
    with ContainerReader(src) as reader:
        h = check_header(reader)
        lo, hi = parse_range(image_range, h["shape"][0])
    report.detail(f"model {h['model_id'][:16]}; images {lo}..{hi - 1} of {h['shape'][0]}, "
                  f"{'lossy' if h['max_error'] is None else 'max error ' + str(h['max_error'])}")
    with report.progress(hi - lo, "decode") as progress:
        r = api.decode(src, out or sys.stdout.buffer, model_path, image_range=image_range, force=force,
                       progress=progress, jobs=jobs)
    report.result({**r.to_dict(), "output": str(out or STREAM)},
                  f"wrote {out or 'stdout'}: {r.images} images, {r.images / r.seconds:.0f} images/s")


@cli.command()
@click.argument("parts", nargs=-1, required=True, type=PATH)
@output_options(".aez file to write.", stream=False)
@force_option
@reporting
def merge(parts: tuple[Path, ...], output: Path | None, force: bool, quiet: bool, verbose: int,
          as_json: bool) -> None:
    """Join the parts written by `encode --shard K/N` (any order, all N of them) into one .aez file."""
    from aezip.files.atomic import check_output
    from aezip.files.shards import merge_parts

    out = resolve_output(output)
    if out is None:
        raise click.UsageError("merge writes a file: give -o PATH")
    check_output(out, force, inputs=parts)
    images = merge_parts(list(parts), out, force=force)
    Report(quiet, verbose, as_json).result({"output": str(out), "images": images, "parts": len(parts)},
                                           f"wrote {out}: {images} images from {len(parts)} parts")


@cli.command("test")
@click.argument("file", type=PATH)
@model_option("The model that wrote FILE [default: the embedded model].")
@reporting
def test_cmd(file: Path, model_path: Path | None, quiet: bool, verbose: int, as_json: bool) -> None:
    """Decode every chunk of FILE and check every checksum, writing nothing."""
    from aezip import api

    report = Report(quiet, verbose, as_json)
    src = aez_input(file)
    with report.progress(None, "test") as progress:
        r = api.verify(src, model_path, progress)
    report.result({**r.to_dict(), "ok": True}, f"{file}: ok ({r.images} images decoded and checked)")


@cli.command()
@click.option("--workdir", type=PATH, help="Keep the files here [default: a temporary folder].")
def demo(workdir: Path | None) -> None:
    """Encode the shipped MNIST sample with the embedded model, decode it, and compare with xz and zstd."""
    from aezip.bench.demo import run_demo
    from aezip.threads import apply_threads

    apply_threads("encode")   # the encode policy covers its decodes too
    for line in run_demo(workdir):
        click.echo(line)


from .info import info  # noqa: E402
from .models import model_group  # noqa: E402
from .uses import bench, embed, eval_group, restore  # noqa: E402  (the other commands, in their own module)

cli.add_command(info)
cli.add_command(model_group)
cli.add_command(embed)
cli.add_command(eval_group)
cli.add_command(restore)
cli.add_command(bench)


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
    except ParameterError as exc:
        click.echo(f"aezip: error: {flag_for(exc.param)} {exc.detail}", err=True)
        sys.exit(1)
    except AezipError as exc:
        click.echo(f"aezip: error: {exc}", err=True)
        sys.exit(1)
    except BrokenPipeError:
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
