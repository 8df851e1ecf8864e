"""Command line: ``parser`` (arguments), ``commands`` (parse → library → print), and :func:`main`.

User errors print one line and exit 2; any other failure prints one line with a ``--debug`` hint and exits 1;
``--debug`` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import sys

from ..core.errors import EcgcnnError
from .commands import COMMANDS
from .parser import build_parser, normalize_argv

__all__ = ["main", "build_parser", "normalize_argv", "COMMANDS"]


def main(argv: list[str] | None = None) -> int:
    argv, debug = normalize_argv(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    args.debug = debug
    try:
        return COMMANDS[args.command](args)
    except EcgcnnError as exc:
        if debug:
            raise
        print(f"ecgcnn: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ecgcnn: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the boundary: one line, not a traceback
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"ecgcnn: unexpected error: {type(exc).__name__}: {first[:200]} (run again with --debug for the "
              f"traceback)", file=sys.stderr)
        return 1
