"""Error types that the CLI turns into one-line `aezip: error: ...` messages."""


class AezipError(Exception):
    """Any failure the user can act on; the message is one line naming the problem."""


class InputError(AezipError):
    """A dataset or model input is missing, unreadable, of an unknown format or inconsistent."""


class FormatError(AezipError):
    """A .aez or model file is damaged, truncated, of an unknown version, or not what it claims to be."""


class ModelMismatchError(AezipError):
    """A .aez file is decoded with a model other than the one that wrote it, or data does not fit a model."""


class OutputExistsError(AezipError):
    """The output exists and --force was not given."""


class BackendError(AezipError, RuntimeError):
    """The requested kernel backend cannot run here; the message says why."""


class ParameterError(InputError, ValueError):
    """A function argument is out of range or malformed; `param` names it as the library spells it (the CLI
    names the matching option instead)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param} {message}")
        self.param = param
        self.detail = message
