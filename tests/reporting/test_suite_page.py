"""The bake-off page (results/suite/suite.md, written by scripts/suite_report.py from the per-dataset JSONs).

The summary's figures are recomputed here without the script: ranks with SciPy's ``rankdata`` (ties share their mean
rank), the Nemenyi critical difference from SciPy's studentised range distribution (Demšar 2006), and the full-INT8
counts straight from the JSONs. A small hand-made bake-off whose answer is known checks ties and wins.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata, studentized_range

from ..scripts import load_script

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "results" / "suite"
SYSTEMS = {"ecgcnn best": ("ours", "best"), "ecgcnn edge": ("ours", "edge"), "aeon Hydra": ("peers", "aeon-hydra"),
           "aeon MiniRocket": ("peers", "aeon-minirocket")}
# The candidate section: the candidate recipe (accuracy only, results/suite/candidates) in place of edge.
CANDIDATE_SYSTEMS = {"ecgcnn hydra-minirocket": ("candidates", "hydra-minirocket"), "ecgcnn best": ("ours", "best"),
                     "aeon Hydra": ("peers", "aeon-hydra"), "aeon MiniRocket": ("peers", "aeon-minirocket")}
CANDIDATE_SECTION = "## A candidate for `best`: hydra-minirocket"


@pytest.fixture(scope="module")
def report():
    return load_script("suite_report")


def _accuracies(folder: Path, systems: dict = SYSTEMS) -> dict[str, dict[str, float]]:
    """dataset -> system -> test accuracy, for every run the JSON holds (also the finished runs of a dataset whose
    process timed out or failed)."""
    table: dict[str, dict[str, float]] = {}
    for side in ("ours", "peers", "candidates"):
        for path in sorted((folder / side).glob("*.json")):
            entry = json.loads(path.read_text())
            for column, (where, run) in systems.items():
                fmt = "aeon" if where == "peers" else "pytorch"
                acc = entry.get("runs", {}).get(run, {}).get("files", {}).get(fmt, {}).get("accuracy")
                if where == side and acc is not None:
                    table.setdefault(path.stem, {})[column] = acc
    return table


def _summary_rows(page: str) -> dict[str, tuple[float, float, float]]:
    block = page.split("| system | mean accuracy | mean rank | wins (ties shared) |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in block.splitlines()[2:]:
        name, acc, rank, wins = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name] = (float(acc.rstrip(" %")), float(rank), float(wins))
    return rows


def test_the_committed_page_is_what_the_script_makes_of_the_committed_results(report):
    assert (SUITE / "suite.md").read_text(encoding="utf-8") == report.render(
        report.load(SUITE / "ours"), report.load(SUITE / "peers"), report.load(SUITE / "candidates"))


@pytest.mark.parametrize("section", ["main", "candidate"])
def test_the_summary_is_the_mean_accuracy_and_mean_rank_over_datasets_every_system_finished(section):
    page = (SUITE / "suite.md").read_text(encoding="utf-8")
    systems = SYSTEMS
    if section == "candidate":
        if CANDIDATE_SECTION not in page:
            assert not list((SUITE / "candidates").glob("*.json"))  # the section exists wherever results do
            return
        page, systems = page.split(CANDIDATE_SECTION, 1)[1], CANDIDATE_SYSTEMS
    else:
        page = page.split(CANDIDATE_SECTION, 1)[0]
    table = _accuracies(SUITE, systems)
    complete = sorted(name for name, row in table.items() if len(row) == len(systems))
    matrix = np.array([[table[name][s] for s in systems] for name in complete])
    ranks = np.array([rankdata(-row) for row in matrix])  # rank 1 = most accurate, ties share their mean rank
    best = ranks == ranks.min(axis=1, keepdims=True)
    wins = (best / best.sum(axis=1, keepdims=True)).sum(axis=0)
    assert f" Summary over the {len(complete)} datasets every system finished" in page
    rows = _summary_rows(page)
    assert list(rows) == [list(systems)[j] for j in np.argsort(ranks.mean(axis=0), kind="stable")]
    for j, system in enumerate(systems):
        assert rows[system] == (round(100 * matrix[:, j].mean(), 2), round(ranks[:, j].mean(), 2), round(wins[j], 1))
    k, n = len(systems), len(complete)
    cd = studentized_range.ppf(0.95, k, math.inf) / math.sqrt(2) * math.sqrt(k * (k + 1) / (6 * n))
    quoted = float(re.search(r"k = 4, N = \d+\): \*\*([\d.]+)\*\* ranks", page).group(1))
    assert abs(quoted - cd) <= 0.006  # the page rounds to 2 decimals; Demšar's table to 3


def test_the_int8_counts_are_the_files_within_the_gates_in_the_json():
    page = (SUITE / "suite.md").read_text(encoding="utf-8")
    counts, largest, two_inputs = {}, 0, {}
    for recipe in ("best", "edge"):
        trained = passed = 0
        for path in sorted((SUITE / "ours").glob("*.json")):
            files = json.loads(path.read_text()).get("runs", {}).get(recipe, {}).get("files", {})
            trained += bool(files)
            if "tflite-int8-full" in files:
                passed += 1
                if files["tflite-int8-full"].get("inputs") == 2:
                    two_inputs[(path.stem, recipe)] = files["tflite-int8-full"]["accuracy"]
                if recipe == "edge":
                    largest = max(largest, files["tflite-int8-full"]["bytes"])
        counts[recipe] = (passed, trained)
    best_two = sum(recipe == "best" for _, recipe in two_inputs)
    assert (f"`best` on {counts['best'][0]} of the {counts['best'][1]} datasets it trained on"
            + (f" ({best_two} of them with the beat's first difference as a second input)" if best_two else "")
            + f", `edge` on {counts['edge'][0]} of the {counts['edge'][1]} datasets it trained on; the largest `edge` "
            f"file is {largest:,} bytes.") in page
    assert not any(recipe == "edge" for _, recipe in two_inputs)  # a CNN has no difference branch
    rows = {line.split(" | ")[0][2:]: line for line in page.splitlines() if line.startswith("| ")}
    assert page.count(" † |") == len(two_inputs)
    for (name, _), accuracy in two_inputs.items():
        assert f"| {100 * accuracy:.2f} † |" in rows[name]


def _write(folder: Path, name: str, side: str, runs: dict[str, float], status: str = "done") -> None:
    (folder / side).mkdir(parents=True, exist_ok=True)
    fmt = "pytorch" if side == "ours" else "aeon"
    entry = {"dataset": name, "status": status, "runs": {run: {"files": {fmt: {"accuracy": acc, "bytes": 1}}}
                                                         for run, acc in runs.items()}}
    if side == "ours":
        entry.update(train_beats=10, test_beats=10, length=8, classes=2)
    (folder / side / f"{name}.json").write_text(json.dumps(entry))


def test_a_known_bake_off_ties_and_an_unfinished_dataset(report, tmp_path):
    # A: best 0.9, edge 0.5, hydra 0.9, minirocket 0.8 -> ranks 1.5, 4, 1.5, 3; B: all 0.7 -> 2.5 each;
    # C: the peers never finished -> left out of the summary, listed with its reason.
    _write(tmp_path, "A", "ours", {"best": 0.9, "edge": 0.5})
    _write(tmp_path, "A", "peers", {"aeon-hydra": 0.9, "aeon-minirocket": 0.8})
    _write(tmp_path, "B", "ours", {"best": 0.7, "edge": 0.7})
    _write(tmp_path, "B", "peers", {"aeon-hydra": 0.7, "aeon-minirocket": 0.7})
    _write(tmp_path, "C", "ours", {"best": 1.0, "edge": 1.0})
    (tmp_path / "peers" / "C.json").write_text(json.dumps({"dataset": "C", "status": "timed out", "reason": "slow"}))
    page = report.render(report.load(tmp_path / "ours"), report.load(tmp_path / "peers"))
    assert "## Summary over the 2 datasets every system finished" in page
    wins = {"ecgcnn best": 0.5 + 0.25, "aeon Hydra": 0.5 + 0.25, "aeon MiniRocket": 0.25, "ecgcnn edge": 0.25}
    assert _summary_rows(page) == {"ecgcnn best": (80.0, 2.0, float(f"{wins['ecgcnn best']:.1f}")),
                                   "aeon Hydra": (80.0, 2.0, float(f"{wins['aeon Hydra']:.1f}")),
                                   "aeon MiniRocket": (75.0, 2.75, float(f"{wins['aeon MiniRocket']:.1f}")),
                                   "ecgcnn edge": (60.0, 3.25, float(f"{wins['ecgcnn edge']:.1f}"))}
    assert "- C, aeon: timed out — slow" in page


def test_the_finished_runs_of_a_process_that_failed_count(report, tmp_path):
    # A's ecgcnn process was killed after both recipes were trained and scored (as FordA's export once was, out of
    # memory): its accuracies count, and the page says why the rest is missing.
    _write(tmp_path, "A", "ours", {"best": 0.9, "edge": 0.6}, status="failed")
    entry = json.loads((tmp_path / "ours" / "A.json").read_text())
    entry["reason"] = "killed by SIGKILL (out of memory?)"
    (tmp_path / "ours" / "A.json").write_text(json.dumps(entry))
    _write(tmp_path, "A", "peers", {"aeon-hydra": 0.8, "aeon-minirocket": 0.7})
    page = report.render(report.load(tmp_path / "ours"), report.load(tmp_path / "peers"))
    assert "## Summary over the 1 datasets every system finished" in page
    assert _summary_rows(page)["ecgcnn best"] == (90.0, 1.0, 1.0)
    assert "- A, ecgcnn: failed — killed by SIGKILL (out of memory?)" in page
