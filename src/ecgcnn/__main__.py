"""``python -m ecgcnn`` (also what ``torchrun -m ecgcnn`` runs)."""

import sys

from .cli import main

sys.exit(main())
