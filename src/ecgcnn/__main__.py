"""The ``ecgcnn`` command and ``python -m ecgcnn`` (also what ``torchrun -m ecgcnn`` runs).

The command line imports only the command it runs (see :mod:`ecgcnn.cli`), so a runtime-only install
(``ecgcnn[litert]`` or ``ecgcnn[onnxruntime]``) can ``predict`` with its format; a command whose extra is missing says
which extra in one line.
"""

import sys

from .cli import main


def run() -> int:
    return main()


if __name__ == "__main__":
    sys.exit(run())
