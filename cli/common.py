"""What every `aezip` command shares: option decorators defined once, where reports go (a line, JSON, or stderr
when the data itself goes to stdout), progress bars, and the flag that names each library parameter.

Nothing here imports torch: `aezip --help` and every command's help stay fast."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from aezip.errors import InputError
from aezip.options import BACKENDS, DEVICES, EFFORTS

STREAM = "-"   # a path of "-" is standard input (for inputs) or standard output (for outputs)

# Library parameter -> the option that sets it, where the two are not spelled alike.
FLAGS = {"rho": "--sparsity", "image_range": "--range", "model": "-m/--model", "out": "-o/--output",
         "key": "--key", "mask_box": "--mask-box"}


def flag_for(param: str) -> str:
    """The command-line spelling of a library parameter."""
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def _decorate(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


PATH = click.Path(path_type=Path)


def model_option(help: str = "Model file [default: the embedded model].", multiple: bool = False) -> Callable:
    return click.option("-m", "--model", "model_path" if not multiple else "models", type=PATH, multiple=multiple,
                        help=help)


force_option = click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
device_option = click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                             help="Where the network runs.")
backend_option = click.option("--backend", type=click.Choice(BACKENDS), default=None,
                              help="Kernel backend [default: AEZIP_BACKEND or auto].")
effort_option = click.option("--effort", type=click.Choice(EFFORTS), default="best", show_default=True,
                              help="best: try the pixel coders under --max-error, the mixing coder without latents "
                                   "included (photographs); fast: skip the learned pixel models and the mixing "
                                   "coders (several times faster, possibly larger); max: best, the mixing coder "
                                   "with latents and the latent quality it codes best with, and a search of the "
                                   "latent codes for ones that decode closer (0.5-2 dB more at the same rate, "
                                   "25-300x slower to encode).")
range_option = click.option("--range", "image_range", metavar="A:B", help="Only images A..B-1.")
jobs_option = click.option("--jobs", default=1, show_default=True, metavar="N",
                           help="Code chunks in N processes (the same bytes as one).")
threads_option = click.option("--threads", type=int, default=None,
                              help="CPU threads [default: OMP_NUM_THREADS, else the cores idle now, up to 4; "
                                   "training up to 2]. Files are the same bytes with any count; a trained model can "
                                   "differ in its last bits.")
reporting = _decorate(
    click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary (errors still print)."),
    click.option("-v", "--verbose", count=True, help="Say more: the model, the backend, the images used."),
    click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout."),
)


def output_options(help: str, stream: bool = True) -> Callable:
    """-o/--output (and, where the output can be a stream, -c/--stdout, the same as -o -)."""
    opts = [click.option("-o", "--output", type=PATH, help=help + (" '-' is stdout." if stream else ""))]
    if stream:
        opts.append(click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write the output to stdout."))
    return _decorate(*opts)


def resolve_output(output: Path | None, to_stdout: bool = False) -> Path | None:
    """The output path, or None for stdout; exactly one of -o and -c is needed."""
    if to_stdout and output is not None:
        raise click.UsageError("give -o/--output or -c/--stdout, not both")
    if to_stdout or str(output) == STREAM:
        return None
    if output is None:
        raise click.UsageError("missing option -o/--output (or -c/--stdout)")
    return output


class Report:
    """Where a command's messages go: human lines, or one JSON object with --json; stderr when the data itself
    goes to stdout; nothing but errors with --quiet."""

    def __init__(self, quiet: bool = False, verbose: int = 0, as_json: bool = False,
                 data_on_stdout: bool = False) -> None:
        if as_json and data_on_stdout:
            raise click.UsageError("--json prints to stdout, where the data goes; write the data with -o FILE")
        self.quiet, self.verbose, self.as_json, self.err = quiet, verbose, as_json, data_on_stdout

    def line(self, text: str) -> None:
        """A summary line (not with --quiet or --json)."""
        if not self.quiet and not self.as_json:
            click.echo(text, err=self.err)

    def notes(self, notes: list[str]) -> None:
        """What reading the data changed (converted modes, arrays kept aside): on stderr, unless --quiet."""
        for text in notes:
            if not self.quiet:
                click.echo(f"aezip: note: {text}", err=True)

    def detail(self, text: str, level: int = 1) -> None:
        """A line printed with -v (on stderr, so that stdout stays the report)."""
        if self.verbose >= level and not self.quiet:
            click.echo(text, err=True)

    def result(self, obj: Any, *lines: str) -> None:
        """The command's result: JSON with --json, else its summary lines."""
        if self.as_json:
            click.echo(json.dumps(obj, indent=1, sort_keys=True, default=_json_default))
        else:
            for text in lines:
                self.line(text)

    @contextlib.contextmanager
    def progress(self, total: int | None, what: str, unit: str = "img") -> Iterator[Callable[[int], None]]:
        """A progress bar on stderr (shown on a terminal, never with --quiet); yields its update function."""
        from tqdm import tqdm

        bar = tqdm(total=total, desc=what, unit=unit, disable=True if self.quiet else None, leave=False,
                   dynamic_ncols=True, file=sys.stderr)
        try:
            yield bar.update
        finally:
            bar.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def open_input(data: Path):
    """Standard input's bytes for '-', else the path."""
    if str(data) == STREAM:
        return sys.stdin.buffer
    return data


def require_matplotlib(*paths: Path | None) -> None:
    """Plots need matplotlib: say so before any work starts."""
    import importlib.util

    wanted = [p for p in paths if p is not None]
    if wanted and importlib.util.find_spec("matplotlib") is None:
        raise InputError(f"writing {wanted[0]} needs matplotlib; install it with `pip install matplotlib` "
                               "(or `pip install -e \".[bench]\"`)")


def per_sample(channels: int, bits: float) -> str:
    """' (B bits/sample)' beside bits/pixel where a pixel has several samples."""
    return f" ({bits:.4f} bits/sample)" if channels and channels > 1 else ""


def aez_input(file: Path):
    """The .aez input: a path, or stdin's bytes for '-' (random access needs them all)."""
    src = open_input(file)
    return src.read() if src is sys.stdin.buffer else src
