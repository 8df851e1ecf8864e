"""Pipeline, bench and report: a small end-to-end run, failure handling, and docs/results.md kept in sync."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from ecgcnn.core.preprocess import PREPROCESSING
from ecgcnn.models import build_model
from ecgcnn.reporting.markdown import README_END, README_START, readme_block, readme_markers, sync_readme
from ecgcnn.runtimes.checkpoint import save_checkpoint

from ..conftest import REPO


@pytest.mark.slow
def test_pipeline_end_to_end_small(tmp_path, cli):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{README_START}\nSTALE-BLOCK\n{README_END}\n\ntail\n")
    result = cli("pipeline", "--seeds", "0", "--models", "tcn", "--epochs", "1", "--bench-runs", "2",
                 "--bench-warmup", "0", "--batch-sizes", "1", "8", "--output-dir", tmp_path / "out",
                 "--results-dir", tmp_path / "results", "--readme", readme)
    assert result.code == 0, result
    results = tmp_path / "results"
    summary = json.loads((results / "results.json").read_text())
    formats = [row["format"] for row in summary["rows"]]
    assert formats == ["pytorch", "onnx", "tflite-fp32", "tflite-fp16", "tflite-int8", "tflite-int8-full"]
    for row in summary["rows"]:
        assert 0 <= row["accuracy_mean"] <= 1 and row["size_bytes"] > 0
        assert 0.97 <= row["top1_agreement_min"] <= 1.0
        assert row["latency_b1_p50_ms"] > 0 and row["throughput_beats_per_s"] > 0 and row["peak_rss_mib"] > 0
    sizes = {row["format"]: row["size_bytes"] for row in summary["rows"]}
    assert sizes["tflite-fp16"] < 0.65 * sizes["tflite-fp32"] and sizes["tflite-int8"] < 0.4 * sizes["tflite-fp32"]
    assert {"cpu", "logical_cores"} <= set(summary["machine"]) and summary["commit"]
    for plot in ("accuracy_latency_size", "training_curves", "example_beats", "confusion_matrix_tcn"):
        assert (results / "plots" / f"{plot}.png").stat().st_size > 1000
    assert len(list((results / "reports" / "tcn").glob("*_seed0.txt"))) == 6
    markdown = (results / "results.md").read_text()
    assert "| tcn | tflite-int8-full |" in markdown and "Targets" in markdown
    text = readme.read_text()
    assert readme_block(markdown, results) in text and "STALE-BLOCK" not in text and text.endswith("tail\n")


@pytest.mark.slow
def test_failed_stage_is_named_and_the_rest_goes_on(tmp_path, cli):
    out = tmp_path / "out" / "seed0"
    (out / "tcn").mkdir(parents=True)
    (out / "tcn" / "tcn_best.pth").write_bytes(b"garbage")  # reused by --skip-train, then fails to export
    result = cli("pipeline", "--seeds", "0", "--models", "tcn", "base-cnn", "--epochs", "1", "--skip-train",
                 "--bench-runs", "1", "--bench-warmup", "0", "--batch-sizes", "1", "--output-dir", tmp_path / "out",
                 "--results-dir", tmp_path / "results", "--readme", "")
    assert result.code == 1
    assert "export-onnx tcn seed 0 onnx" in result.out and "tcn_best.pth" in result.out
    summary = json.loads((tmp_path / "results" / "results.json").read_text())
    assert {row["model"] for row in summary["rows"]} == {"base-cnn"}
    assert any(f["model"] == "tcn" for f in summary["failures"])


def test_bench_smoke(tmp_path, cli):
    meta = {"model": "tcn", "model_kwargs": {"num_classes": 5, "in_channels": 1, "dropout": 0.3},
            "labels": [1, 2, 3, 4, 5], "input_length": 140, "preprocessing": dict(PREPROCESSING)}
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "tcn.pth", build_model("tcn"), meta)
    result = cli("bench", path, "--runs", "2", "--warmup", "0", "--batch-sizes", "1", "4", "--json",
                 tmp_path / "bench.json")
    assert result.code == 0, result
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [(r["format"], r["batch_size"]) for r in rows] == [("pytorch-eager", 1), ("pytorch-eager", 4),
                                                              ("pytorch", 1), ("pytorch", 4)]
    assert all(r["p50_ms"] > 0 and r["macs_per_beat"] > 10_000_000 and r["peak_rss_mib"] > 10 for r in rows)
    assert "| tcn | pytorch |" in result.out


def test_readme_results_section_is_the_generated_results_md():
    """docs/results.md's results block is what `make results` writes there: results/results.md, links fixed."""
    results_md = REPO / "results" / "results.md"
    if not results_md.is_file():
        pytest.skip("no results/results.md committed yet")
    docs = REPO / "docs" / "results.md"
    block = docs.read_text(encoding="utf-8").split(README_START, 1)[1].split(README_END, 1)[0]
    assert block.strip() == readme_block(results_md.read_text(encoding="utf-8"), REPO / "results", docs).strip()
    for link in Path(REPO).glob("results/plots/*.png"):
        assert f"../results/plots/{link.name}" in block or "confusion_matrix" in link.name
    for link in re.findall(r"\]\(([^)]+\.png)\)", block):
        assert (docs.parent / link).is_file(), link


@pytest.mark.parametrize("section, generated", [("recipes", "results/recipes/results.md"),
                                                ("ablation", "results/ablation/ablation.md")])
def test_readme_recipe_and_ablation_sections_are_generated(section, generated):
    """docs/results.md's best/edge results and ablation table are the committed command outputs, verbatim."""

    start, end = readme_markers(section)
    docs = REPO / "docs" / "results.md"
    block = docs.read_text(encoding="utf-8").split(start, 1)[1].split(end, 1)[0]
    source = REPO / generated
    assert block.strip() == readme_block(source.read_text(encoding="utf-8"), source.parent, docs).strip()
    for link in re.findall(r"\]\(([^)]+\.png)\)", block):
        assert (docs.parent / link).is_file(), link


def test_sync_writes_links_relative_to_the_markdown_file(tmp_path):
    """A section synced into docs/FILE.md links to ../results/...; one in the repository root to results/..."""

    for name, prefix in (("docs/page.md", "../results"), ("README.md", "results")):
        page = tmp_path / name
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"# x\n{README_START}\nold\n{README_END}\n")
        sync_readme(page, "## Results\n\n![a](plots/a.png) [r](reports/r.txt) `reports/`\n", tmp_path / "results")
        text = page.read_text()
        assert "## Results" not in text  # results.md's own title stays out of the page's section
        assert f"![a]({prefix}/plots/a.png) [r]({prefix}/reports/r.txt) `{prefix}/reports/`" in text, text
