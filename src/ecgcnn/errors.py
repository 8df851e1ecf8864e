"""User-facing errors: one sentence, exit code 2, no traceback (``--debug`` shows it)."""


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
