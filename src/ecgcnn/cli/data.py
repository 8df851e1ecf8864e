"""``ecgcnn data download|info``: the dataset's files and where they come from."""

from __future__ import annotations

import argparse

import numpy as np

from ..data import ucr
from ._parser import add_actions, add_data_dir, add_subcommand

EXAMPLES = ("ecgcnn data info",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = add_actions(parser, "data_command", "ACTION")
    d = add_subcommand(actions, "download", "fetch and verify the official ECG5000 archive into the user cache",
                       ("ecgcnn data download",))
    d.add_argument("--url", default=None, help="archive URL (default: the UCR/UEA archive's ECG5000.zip)")
    d.add_argument("--dest", default=None, help="destination directory (default: ~/.cache/ecgcnn/ECG5000)")
    d = add_subcommand(actions, "info", "show where the data comes from and its class counts", ("ecgcnn data info",))
    add_data_dir(d)


def run(args) -> int:
    if args.data_command == "download":
        destination = ucr.download_archive(args.url or ucr.ARCHIVE_URL, args.dest)
        print(f"verified ECG5000 (shape, class counts, checksums) -> {destination}")
        print(f"use it with: ecgcnn train --data-dir {destination}")
        return 0
    dataset = ucr.load_dataset(args.data_dir)
    print(f"source: {dataset.source}")
    for split, y in (("train", dataset.index_train), ("test", dataset.index_test)):
        counts = np.bincount(y, minlength=len(ucr.ORIGINAL_LABELS)).tolist()
        print(f"{split}: {len(y)} beats of {ucr.INPUT_LENGTH} samples, class counts {counts}")
    return 0
