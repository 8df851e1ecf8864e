"""Reporting and workflow details that once went wrong silently."""

from __future__ import annotations

import pytest

from ecgcnn.bench import run as bench_module
from ecgcnn.core.errors import EcgcnnError
from ecgcnn.reporting.markdown import sync_readme
from ecgcnn.reporting.results import targets_for
from ecgcnn.workflows.ablation import VARIANT_KEYS, run_ablation
from ecgcnn.workflows.pipeline import PipelineConfig

from ..conftest import assert_one_line_error


def test_macs_are_counted_once_per_model(monkeypatch):
    """bench's MACs cache must work: counting builds the model, which is slow for big ones."""
    meta = {"model": "base-cnn", "model_kwargs": {}, "input_length": 140}
    fake = {"model": "base-cnn", "format": "onnx", "peak_rss_mib": 1.0,
            "rows": [{"batch_size": 1, "beats_per_s": 10.0}]}
    monkeypatch.setattr(bench_module, "bench_file", lambda *a, **k: {**fake, "metadata": meta,
                                                                   "rows": list(fake["rows"])})
    monkeypatch.setattr(bench_module.Path, "stat", lambda self: type("S", (), {"st_size": 1})())
    calls = []
    monkeypatch.setattr(bench_module, "macs_for", lambda metadata: calls.append(1) or 1000)
    rows = bench_module.bench(["a.onnx", "b.onnx", "c.tflite"], baseline=False, log=lambda m: None)
    assert len(rows) == 3 and calls == [1]


def test_ablation_refuses_unknown_variants(cli, tmp_path):
    with pytest.raises(EcgcnnError, match=r"--variants best: expected some of plain"):
        run_ablation(variants=["plain", "best"], output_dir=str(tmp_path), results_dir=str(tmp_path))
    result = cli("ablation", "--variants", "plain", "best", "--output-dir", tmp_path)
    assert result.code == 2 and "invalid choice: 'best'" in result.err
    help_text = cli("ablation", "--help").out
    assert all(key in help_text for key in VARIANT_KEYS)


def test_readme_sync_without_markers_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# title\n<!-- results:start -->\nold\n<!-- results:end -->\n")
    with pytest.raises(EcgcnnError, match="no section 'resuls'"):
        sync_readme(readme, "new\n", tmp_path / "results", section="resuls")
    assert "old" in readme.read_text()
    sync_readme(readme, "new\n", tmp_path / "results", section="results")
    assert "new" in readme.read_text() and "old" not in readme.read_text()


def test_pipeline_refuses_a_missing_readme_before_any_work(cli, tmp_path):
    result = cli("pipeline", "--seeds", "0", "--models", "edge", "--readme", tmp_path / "NOPE.md", "--output-dir",
                 tmp_path / "out")
    assert_one_line_error(result, "NOPE.md: file not found")
    assert not (tmp_path / "out").exists()


def test_recipe_runs_do_not_report_none_epochs():
    cfg = PipelineConfig(seeds=[0], models=["best"], epochs=None)
    names = [t["name"] for t in targets_for([], {"total": 60.0}, cfg)]
    assert names and not any("None" in name for name in names)
