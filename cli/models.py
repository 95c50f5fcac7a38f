"""`aezip model`: what can be made from a model file: its decode-side model, a coarser integer decoder, a low-rate
sibling."""
from __future__ import annotations

from pathlib import Path

import click

from aezip.errors import InputError
from aezip.options import FINETUNE_EPOCHS, FINETUNE_SPARSITY, LOW_RATE_EPOCHS, LOW_RATE_QUALITIES

from .common import (PATH, Report, force_option, open_input, output_options, range_option, reporting,
                     resolve_output, threads_option)


@click.group("model")
def model_group() -> None:
    """Work with model files."""


@model_group.command("export-decoder")
@click.argument("model", type=PATH)
@output_options("Decode-side model file to write (.aezd).", stream=False)
@force_option
@reporting
def export_decoder(model: Path, output: Path | None, force: bool, quiet: bool, verbose: int, as_json: bool) -> None:
    """Write the decode-side model of MODEL: all that decoding its files needs (-m takes it), not encoding."""
    from aezip.files.atomic import check_output
    from aezip.files.decodemodel import save_decoder
    from aezip.files.modelfile import load_model

    out = resolve_output(output)
    check_output(out, force, inputs=(model,))
    mf = load_model(model)
    size = save_decoder(mf, out, force=force)
    full = model.stat().st_size
    Report(quiet, verbose, as_json).result(
        {"output": str(out), "model_id": mf.id, "bytes": size, "model_bytes": full},
        f"wrote {out}: {size} bytes ({size / full:.1%} of {model.name}'s {full}); decodes files of model {mf.id[:16]}")


@model_group.command("requantize")
@click.argument("model", type=PATH)
@output_options("Model file to write (.aezm).", stream=False)
@click.option("--weight-bits", type=int, required=True,
              help="Signed bits of the integer decoder's weights (16: the integers aezip train makes).")
@click.option("--finetune", "data", type=PATH,
              help="Training images of the model's shape: fine-tune the decoder for those bits first (wins back the "
                   "PSNR that rounding loses at 7-8 bits).")
@range_option
@click.option("--epochs", type=int, default=None, help=f"Fine-tuning epochs [default: {FINETUNE_EPOCHS}].")
@click.option("--sparsity", type=float, default=None,
              help=f"Fine-tuning's L1 weight on the decoder weights: smaller stored integers [default: "
                   f"{FINETUNE_SPARSITY:g}].")
@threads_option
@force_option
@reporting
def requantize_cmd(model: Path, output: Path | None, weight_bits: int, data: Path | None, image_range: str | None,
                   epochs: int | None, sparsity: float | None, threads: int | None, force: bool, quiet: bool,
                   verbose: int, as_json: bool) -> None:
    """Write MODEL with a coarser integer decoder: a new model whose decode-side part is smaller."""
    from aezip.files.atomic import check_output
    from aezip.files.decodemodel import decoder_bytes
    from aezip.files.modelfile import load_model
    from aezip.coding.requantize import requantize

    out = resolve_output(output)
    check_output(out, force, inputs=(model, data))
    if data is None and (image_range or epochs is not None or sparsity is not None):
        raise InputError("--range, --epochs and --sparsity go with --finetune DATA")
    images = None if data is None else _training_images(data, image_range, threads)
    report = Report(quiet, verbose, as_json)
    new = requantize(load_model(model), weight_bits, images, epochs=epochs, sparsity=sparsity,
                     log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)))
    new.save(out, force=force)
    size = len(decoder_bytes(new, max_error_parts=False))
    report.result(
        {"output": str(out), "model_id": new.id, "weight_bits": weight_bits, "decode_side_lossy_bytes": size},
        f"wrote {out} (model id {new.id[:16]}): {weight_bits}-bit decoder weights, lossy decode side {size} bytes")


@model_group.command("low-rate")
@click.argument("model", type=PATH)
@output_options("Model file to write (.aezm).", stream=False)
@click.option("--data", type=PATH, required=True, help="The model's training images: the decoder is tuned on them.")
@range_option
@click.option("--qualities", default=",".join(map(str, LOW_RATE_QUALITIES)), show_default=True,
              help="The --quality levels to tune the decoder for, comma-separated.")
@click.option("--epochs", type=int, default=None, help=f"Tuning epochs [default: {LOW_RATE_EPOCHS}].")
@threads_option
@force_option
@reporting
def low_rate_cmd(model: Path, output: Path | None, data: Path, image_range: str | None, qualities: str,
                 epochs: int | None, threads: int | None, force: bool, quiet: bool, verbose: int,
                 as_json: bool) -> None:
    """Write MODEL's low-rate sibling: its decoder tuned for coarse --quality levels (encode those with it)."""
    from aezip.coding.lowrate import low_rate_model
    from aezip.files.atomic import check_output
    from aezip.files.modelfile import load_model

    out = resolve_output(output)
    check_output(out, force, inputs=(model, data))
    try:
        levels = tuple(int(q) for q in qualities.split(","))
    except ValueError:
        raise InputError(f"--qualities {qualities!r}: expected comma-separated integers such as 2,3,4,6") from None
    if epochs is not None and epochs < 1:
        raise InputError(f"--epochs {epochs}: must be at least 1")
    mf = load_model(model)
    new = low_rate_model(mf, _training_images(data, image_range, threads), levels, epochs=epochs,
                         log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)))
    new.save(out, force=force)
    Report(quiet, verbose, as_json).result(
        {"output": str(out), "model_id": new.id, "from_model": mf.id, "qualities": list(levels)},
        f"wrote {out} (model id {new.id[:16]}): {model.name}'s decoder tuned for --quality "
        f"{','.join(map(str, levels))}; encode those levels with it")


def _training_images(data: Path, image_range: str | None, threads: int | None):
    """The training images of DATA's --range, read with the training thread setting."""
    from aezip import api
    from aezip.files.stream import training_array
    from aezip.options import parse_range
    from aezip.threads import apply_threads

    apply_threads("train", threads)
    dataset = api.open_data(open_input(data))
    lo, hi = parse_range(image_range, dataset.shape[0])
    return training_array(dataset, lo, hi)
