"""One way to declare a command: its help (also its description), its examples, the help formatter."""

from __future__ import annotations

import argparse


def add_subcommand(subparsers, name: str, help_text: str, *examples: str,
                   formatter=argparse.ArgumentDefaultsHelpFormatter) -> argparse.ArgumentParser:
    epilog = "example:\n" + "\n".join(f"  {example}" for example in examples)
    return subparsers.add_parser(name, help=help_text, description=help_text, epilog=epilog, formatter_class=formatter)
