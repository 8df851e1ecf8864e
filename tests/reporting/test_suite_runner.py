"""The bake-off's bookkeeping (scripts/suite_runner.py, scripts/suite.py): what a dataset's JSON says when its
process dies, and what a rerun of some recipes writes into the kept JSON. Real child processes, made here."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ..scripts import load_script

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.fast



def test_a_dataset_process_killed_by_the_kernel_keeps_its_finished_runs_and_says_so(tmp_path):
    """The child writes its partial result, then is killed by SIGKILL, as the out-of-memory killer does (it prints
    nothing about it)."""
    runner = load_script("suite_runner")
    child = tmp_path / "child.py"
    child.write_text(textwrap.dedent("""
        import json, os, signal, sys
        partial = sys.argv[sys.argv.index("--partial") + 1]
        with open(partial, "w") as f:
            json.dump({"dataset": "X", "system": "ecgcnn", "runs": {"best": {"files": {"pytorch": {}}}}}, f)
        print("working on the export", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    out = tmp_path / "out"
    out.mkdir()
    runner.run_all(str(child), ["X"], out, 60.0, "ecgcnn")
    result = json.loads((out / "X.json").read_text())
    assert result["status"] == "failed" and result["reason"] == "killed by SIGKILL (out of memory?)"
    assert result["runs"] == {"best": {"files": {"pytorch": {}}}}
    assert not (out / "X.partial").exists()


def test_a_rerun_of_every_recipe_that_failed_replaces_the_runs_and_the_status(tmp_path):
    suite = load_script("suite")
    unfinished = suite.UNFINISHED_EXPORT
    kept, fresh = tmp_path / "A.json", tmp_path / "fresh.json"
    kept.write_text(json.dumps({"dataset": "A", "status": "timed out", "reason": "not finished within 900 s",
                                "wall_s": 900.0, "runs": {"best": {"files": {}, "failures": [unfinished]},
                                                          "edge": {"files": {}, "failures": [unfinished]}}}))
    trained = {"pytorch": {"accuracy": 0.9}}
    fresh.write_text(json.dumps({"dataset": "A", "status": "failed", "reason": "killed by SIGKILL (out of memory?)",
                                 "wall_s": 1133.2, "runs": {"best": {"files": trained, "failures": [unfinished]},
                                                            "edge": {"files": trained, "failures": []}}}))
    suite.replace_runs(kept, fresh, ("best", "edge"))
    result = json.loads(kept.read_text())
    assert (result["status"], result["reason"], result["wall_s"]) == ("failed", "killed by SIGKILL (out of memory?)",
                                                                      1133.2)
    # best stopped in its export: it says why; edge had finished everything
    assert result["runs"]["best"]["failures"] == [unfinished, "failed: killed by SIGKILL (out of memory?)"]
    assert result["runs"]["edge"]["failures"] == []
    assert not fresh.exists()


def test_a_rerun_of_one_recipe_keeps_the_others_and_the_datasets_status(tmp_path):
    suite = load_script("suite")
    kept, fresh = tmp_path / "A.json", tmp_path / "fresh.json"
    edge = {"files": {"pytorch": {"accuracy": 0.7}}, "failures": []}
    kept.write_text(json.dumps({"dataset": "A", "status": "done", "wall_s": 50.0,
                                "runs": {"best": {"files": {}, "failures": ["x"]}, "edge": edge}}))
    fresh.write_text(json.dumps({"dataset": "A", "status": "timed out", "reason": "not finished within 10 s",
                                 "wall_s": 10.0, "runs": {}}))
    suite.replace_runs(kept, fresh, ("best",))
    result = json.loads(kept.read_text())
    assert result["status"] == "done" and result["wall_s"] == 50.0 and result["runs"]["edge"] == edge
    assert result["runs"]["best"]["files"] == {}
    assert result["runs"]["best"]["failures"] == ["timed out: not finished within 10 s"]
