"""Shared fixtures. Everything is local: the packaged official ECG5000 files, temp directories, loopback servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgcnn.cli import main
from ecgcnn.data.dataset import load_dataset

REPO = Path(__file__).resolve().parents[1]

# Keep the two cores for one process at a time and make CPU results repeatable.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def dataset():
    return load_dataset()


def write_ucr(path: Path, x: np.ndarray, y_labels: np.ndarray, delimiter: str = " ") -> Path:
    """Write beats in UCR layout (label first). ``y_labels`` are original labels (1..5)."""
    with open(path, "w", encoding="utf-8") as fh:
        for label, row in zip(y_labels, x, strict=True):
            fh.write(delimiter.join([f"{float(label):.7e}"] + [repr(float(v)) for v in row]) + "\n")
    return path


@pytest.fixture(scope="session")
def official_tables():
    """The official files as float64 tables (label column first), exactly as released."""
    from ecgcnn.data.tables import read_numeric_table  # noqa: PLC0415
    from ecgcnn.data.ucr import packaged_data_dir  # noqa: PLC0415

    directory = packaged_data_dir()
    return {split: read_numeric_table(directory / f"ECG5000_{split.upper()}.tsv", "\t")[0]
            for split in ("train", "test")}


@pytest.fixture(scope="session")
def txt_data_dir(tmp_path_factory, official_tables):
    """The official data rewritten in the seed's whitespace-separated .txt layout (values round-trip exactly)."""
    directory = tmp_path_factory.mktemp("ECG5000_txt")
    for split, table in official_tables.items():
        write_ucr(directory / f"ECG5000_{split.upper()}.txt", table[:, 1:], table[:, 0])
    return directory


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"CliResult(code={self.code}, out={self.out[-500:]!r}, err={self.err[-500:]!r})"


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns exit code, stdout and stderr."""

    def run(*argv) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_subprocess(*argv, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m ecgcnn`` as a user would (fresh process, real exit code)."""
    return subprocess.run([sys.executable, "-m", "ecgcnn", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def assert_one_line_error(result, *fragments):
    """Exit code 2, a single 'ecgcnn: error:' line on stderr containing every fragment, no traceback."""
    assert result.code == 2, result
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def kill_after_checkpoint(args, output_dir: Path, log_marker: str, last: Path, saved) -> None:
    """Start ``ecgcnn *args``, wait for the log line containing ``log_marker`` and for ``last`` to hold a training
    state for which ``saved(state)`` is true (the epoch line is printed just before the file is written), then
    SIGKILL the process: an interruption at a known point."""
    import signal  # noqa: PLC0415
    import time  # noqa: PLC0415

    from ecgcnn.core.errors import ModelFileError  # noqa: PLC0415
    from ecgcnn.runtimes.checkpoint import read_checkpoint  # noqa: PLC0415

    process = subprocess.Popen([sys.executable, "-m", "ecgcnn", *map(str, args), "--output-dir", str(output_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if log_marker in line:
            break
    deadline = time.time() + 60
    seen = False
    while time.time() < deadline and not seen:
        try:
            seen = bool(saved(read_checkpoint(last)["training_state"]))
        except ModelFileError:  # not written yet (the atomic rename makes a half-written file impossible)
            pass
        if not seen:
            time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert seen, f"{last} never held the expected training state before the deadline"
