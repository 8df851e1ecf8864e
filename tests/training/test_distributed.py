"""DistributedDataParallel with torchrun: 2 CPU processes (gloo) on loopback."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ecgcnn.runtimes.checkpoint import model_from_checkpoint
from ecgcnn.training.run import weights_digest


@pytest.mark.slow
def test_two_process_ddp_trains_identical_weights_and_writes_one_set_of_files(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [str(torchrun)] if torchrun.is_file() else [shutil.which("torchrun") or "torchrun"]
    result = subprocess.run(
        [*command, "--standalone", "--nproc-per-node", "2", "-m", "ecgcnn", "train", "--model", "tcn", "--epochs", "1",
         "--output-dir", str(tmp_path), "--no-progress", "--seed", "5"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    digests = dict(re.findall(r"rank (\d)/2: final weights sha256 ([0-9a-f]{64})", result.stdout))
    assert set(digests) == {"0", "1"}, result.stdout
    assert digests["0"] == digests["1"]
    out = tmp_path / "tcn"
    # the OS lock file (empty, released) may stay; nothing else
    assert sorted(p.name for p in out.iterdir() if p.name != ".ecgcnn.lock") == sorted(
        ["metrics.json", "tcn_best.pth", "tcn_last.pth", "tcn_training_curves.png", "tcn_confusion_matrix.png"])
    assert result.stdout.count("test accuracy") == 1  # only rank 0 scores and writes
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    model, _ = model_from_checkpoint(out / "tcn_best.pth")
    assert weights_digest(model) == digests["0"]
