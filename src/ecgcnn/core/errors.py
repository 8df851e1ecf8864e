"""User-facing errors: one sentence, exit code 2, no traceback (``--debug`` shows it); optional-extra imports."""

from __future__ import annotations

import importlib
from types import ModuleType


class EcgcnnError(Exception):
    """A problem with the user's input (a file, a flag, a model file). The CLI prints it on one line and exits 2."""

    exit_code = 2


class DataError(EcgcnnError):
    """A data file is missing or malformed."""


class ModelFileError(EcgcnnError):
    """A model file (.pth, .onnx, .tflite) is missing, corrupt or of the wrong kind."""


class ExportError(EcgcnnError):
    """An export step or its numerical verification failed."""


class MissingExtraError(EcgcnnError):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, module: str):
        super().__init__(f"this needs the '{extra}' extra ({module} is not installed): "
                         f"pip install -c constraints.txt 'ecgcnn[{extra}]'")


def optional_import(module: str, extra: str, package: str | None = None) -> ModuleType:
    """Import ``module`` (dotted names allowed) from an optional dependency group, on first use.

    Raises :class:`MissingExtraError` naming ``extra`` and ``package`` (the distribution to install) when the import
    fails; without ``package`` it names the module that is actually missing (a dependency of ``module`` perhaps).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(extra, package or (exc.name or module).split(".")[0]) from exc
