"""`aezip model`: what can be made from a model file."""
from __future__ import annotations

from pathlib import Path

import click

from .common import PATH, Report, force_option, output_options, reporting, resolve_output


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
    from aezip.atomic import check_output
    from aezip.decodemodel import save_decoder
    from aezip.modelfile import load_model

    out = resolve_output(output)
    check_output(out, force, inputs=(model,))
    mf = load_model(model)
    size = save_decoder(mf, out, force=force)
    full = model.stat().st_size
    Report(quiet, verbose, as_json).result(
        {"output": str(out), "model_id": mf.id, "bytes": size, "model_bytes": full},
        f"wrote {out}: {size} bytes ({size / full:.1%} of {model.name}'s {full}); decodes files of model {mf.id[:16]}")
