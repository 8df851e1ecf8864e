"""The documentation as checked facts: README size, links, the runnable Python example, and figures that are
measured or read from committed files rather than typed."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tomllib

from ecgcnn import load_dataset, load_predictor
from ecgcnn.reporting.markdown import readme_markers
from ecgcnn.runtimes.pretrained import read_manifest

from .conftest import REPO
from .scripts import load_script

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
MAX_README_BYTES = 15 * 1024
SPEC_SUFFIX = {"pytorch": "", "onnx": ".onnx", "tflite-int8-full": ".tflite", "tflite-fp16": ".tflite"}


def _text(path) -> str:
    return path.read_text(encoding="utf-8")


def _outside_code(markdown: str) -> str:
    """The Markdown without fenced code blocks and inline code (links and headings there are not real)."""
    markdown = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", markdown)


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S),
                              re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _fenced_block(markdown: str, heading: str, language: str = "") -> str:
    """The first fenced block (of ``language``) after ``heading``."""
    after = markdown.split(f"\n{heading}\n", 1)[1]
    match = re.search(rf"^```{language}\n(.*?)^```", after, re.M | re.S)
    assert match, f"no ```{language} block after {heading!r}"
    return match.group(1)


def test_readme_is_short():
    size = README.stat().st_size
    assert size <= MAX_README_BYTES, f"README.md is {size:,} bytes; move detail to docs/ (limit {MAX_README_BYTES:,})"


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page):
    text = _text(page)
    links = re.findall(r"\]\(([^)\s]+)\)", _outside_code(text))
    assert links or page.name in ("docker.md",), f"{page}: no links found (is the pattern broken?)"
    for link in links:
        if re.match(r"[a-z][a-z0-9+.-]*:", link):  # https:, mailto:, ...
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.is_file(), f"{page.name}: link {link!r} -> {path} does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(_text(path)), f"{page.name}: link {link!r}: no heading #{anchor} in {path.name}"


def test_readme_links_every_docs_page():
    text = _text(README)
    for page in DOCS:
        assert f"](docs/{page.name}" in text, f"README.md does not link docs/{page.name}"


def test_readme_python_example_runs():
    """The first ```python block after '## Python API' runs as written, in a fresh interpreter, offline."""
    code = _fenced_block(_text(README), "## Python API", "python")
    assert 'load_predictor("pretrained:edge")' in code and "print(" in code
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "the example printed nothing"
    assert "N (normal)" in result.stdout  # class_names printed
    # One label convention: predict's labels compare with the dataset's y_test (the accuracy, not 0.9 %).
    accuracy = float(result.stdout.strip().splitlines()[-2])
    predictor, data = load_predictor("pretrained:edge"), load_dataset()
    assert accuracy == pytest.approx(float(np.mean(predictor.predict_indices(data.x_test) == data.index_test)))
    assert accuracy > 0.9


def test_generated_sections_stand_alone():
    """Each generated block is in docs/results.md once, with its own markers, and holds no other section."""
    text = _text(REPO / "docs" / "results.md")
    sections = ("results", "recipes", "ablation")
    markers = re.findall(r"<!-- ([\w-]+):(start|end) -->", _outside_code(text))
    assert markers == [(name, edge) for name in sections for edge in ("start", "end")]
    for name in sections:  # sync_readme splits at the first occurrence: no copy of a marker anywhere else
        assert all(text.count(marker) == 1 for marker in readme_markers(name)), name
    for page in [README, *DOCS]:
        if page.name != "results.md":
            assert "<!-- results:start -->" not in _text(page), page


def _layers() -> list[str]:
    pyproject = tomllib.loads(_text(REPO / "pyproject.toml"))
    return pyproject["tool"]["importlinter"]["contracts"][0]["layers"]


def test_readme_architecture_is_the_import_linter_layers():
    block = _fenced_block(_text(README), "## Architecture")
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert lines == [" | ".join(m.strip() for m in layer.split("|")) for layer in _layers()]


def test_docs_architecture_table_is_the_import_linter_layers():
    rows = re.findall(r"^\| (\d+) \| (.+?) \| .* \|$", _text(REPO / "docs" / "architecture.md"), re.M)
    layers = [" | ".join(re.findall(r"`([\w.]+)`", cell)) for _, cell in rows]
    assert layers == [" | ".join(m.strip() for m in layer.split("|")) for layer in _layers()]


def test_readme_results_table_is_the_committed_figures():
    """Every row of the README's headline table: the manifest (the shipped file) and results/recipes/results.json."""
    manifest = read_manifest()
    recipes = {(r["model"], r["format"]): r
               for r in json.loads(_text(REPO / "results" / "recipes" / "results.json"))["rows"]}
    table = _text(README).split("| shipped file | format |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    assert rows, "no headline table in README.md"
    for line in rows:
        spec, fmt = re.match(r"\| `pretrained:(\S+?)` \| (\S+) \|", line).groups()
        name = spec.split(".")[0]
        entry = manifest["models"][name]["files"][fmt]
        assert SPEC_SUFFIX[fmt] == spec[len(name):]
        mean = recipes[(name, fmt)]
        expected = (f"| `pretrained:{spec}` | {fmt} | {entry['bytes'] / 1024:,.0f} KiB | "
                    f"{100 * entry['test']['accuracy']:.2f} % | {entry['test']['macro_f1']:.3f} | "
                    f"{100 * mean['accuracy_mean']:.2f} ± {100 * mean['accuracy_std']:.2f} % |")
        assert line == expected


# ------------------------------------------------------------------------------------ model card: measured recall


@pytest.fixture(scope="module")
def measured(dataset):
    """Every shipped file scored on the test split (what `ecgcnn evaluate pretrained:NAME` prints)."""
    return load_script("model_card_table").measure(dataset)


def test_model_card_recall_is_measured(measured):
    """docs/model-card.md's recall table is the script's output: within one beat per class (another CPU may round
    one beat differently), and each percentage is its own count."""
    start, end = readme_markers(load_script("model_card_table").SECTION)
    block = _text(REPO / "docs" / "model-card.md").split(start, 1)[1].split(end, 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(pretrained:\S+)` \| \S+ \|(.*)$", block, re.M)}
    assert set(rows) == {row["spec"] for row in measured}
    for row in measured:
        cells = re.findall(r"([\d.]+) % \((\d+)/(\d+)\)", rows[row["spec"]])
        assert len(cells) == len(row["hits"]), row["spec"]
        for (percent, hits, support), hit, n in zip(cells, row["hits"], row["support"], strict=True):
            assert int(support) == n and abs(int(hits) - hit) <= 1, (row["spec"], hits, support, hit)
            assert percent == f"{100 * int(hits) / int(support):.1f}"
    manifest = read_manifest()["models"]
    for row in measured:  # a manifest packed with recall per class agrees with the measurement too
        recorded = manifest[row["model"]]["files"][row["format"]]["test"].get("per_class_recall")
        if recorded is not None:
            for recall, hit, n in zip(recorded, row["hits"], row["support"], strict=False):
                assert abs(recall * n - hit) <= 1, (row["spec"], recorded)
    never = load_script("model_card_table").never_predicted(measured)
    claims = set(re.findall(r"`pretrained:(\w+)` never predicts class (\d)", block))
    assert claims == {(model, str(label)) for model, labels in never.items() for label in labels}


def test_readme_claims_about_the_shipped_models_hold(measured):
    never = load_script("model_card_table").never_predicted(measured)
    for model, label in re.findall(r"`pretrained:(\w+)` never predicts class (\d)", _text(README)):
        assert int(label) in never[model], f"README: pretrained:{model} does predict class {label} now"


def test_readme_dataset_figures_hold(dataset):
    text = " ".join(_text(README).split())
    assert "Only 2 of the 500 training beats are class 5" in text
    assert int((dataset.index_train == 4).sum()) == 2 and len(dataset.index_train) == 500
    assert "4,500 official test beats" in text and len(dataset.index_test) == 4500
    assert dataset.x_train.shape[1] == 140 and "**140 samples**" in text


def test_install_commands_use_the_makefile_extras():
    extras = re.search(r"^EXTRAS\s*\?=\s*(\S+)$", _text(REPO / "Makefile"), re.M).group(1)
    for page in (README, REPO / "docs" / "development.md"):
        quoted = re.findall(r'-e "\.\[([\w,]+)\]"', _text(page))
        assert quoted and all(q == extras for q in quoted), (page.name, quoted, extras)


def test_training_md_robustness_table_is_the_ablation_files():
    """docs/training.md's round-1 table: each row's figures are the row of results/ablation/robust_round1.json
    with that label (a row missing there, or a figure typed differently, fails)."""
    rows = {r["key"]: r for r in json.loads(_text(REPO / "results" / "ablation" / "robust_round1.json"))["rows"]}
    table = _text(REPO / "docs" / "training.md").split("| candidate | official |", 1)[1].split("\n\n", 1)[0]
    keys = {"`edge` (base-cnn-small)": "small", "+ 3 re-cut copies": "small-recut",
            "+ synthetic noise on the copies": "small-recut-noise", "`best` (Hydra)": "hydra",
            "Hydra + 3 re-cut copies": "hydra-recut",
            "**Hydra + 3 noisy re-cut copies = `best-recut`**": "hydra-recut-noise"}
    lines = [line for line in table.splitlines()[2:] if line.startswith("|")]
    assert len(lines) == len(keys)
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        r = rows[keys[cells[0]]]
        figures = [f"{100 * r[k]:.2f} %" for k in ("val_accuracy", "val_recut_accuracy", "val_noisy_accuracy",
                                                   "val_robust_accuracy")] + [f"{r['val_macro_f1']:.3f}"]
        assert [c.strip("*") for c in cells[1:]] == figures, line
    text = _text(REPO / "docs" / "training.md")
    for r in json.loads(_text(REPO / "results" / "ablation" / "robust_round2.json"))["rows"]:
        assert f"{100 * r['val_robust_accuracy']:.2f} %" in text and f"{r['val_macro_f1']:.3f}" in text, r["key"]


def test_readme_robustness_table_is_the_stress_results():
    """The README's robustness rows: each shipped file's summary in results/stress/stress.json (written by `make
    stress` from those very files; the file names the shipped specs it measured)."""
    report = json.loads(_text(REPO / "results" / "stress" / "stress.json"))
    by_spec = {m["model_file"]: m["summary"] for m in report["models"]}
    table = _text(README).split("| shipped file | dataset's windows |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    assert rows, "no robustness table in README.md"
    for line in rows:
        spec = "pretrained:" + re.match(r"\| `pretrained:(\S+?)` \|", line).group(1)
        stress = by_spec[spec]
        expected = (f"| `{spec}` | {100 * stress['official_accuracy']:.1f} % | "
                    f"{100 * stress['recut_accuracy']:.1f} % | {100 * stress['noise_12db_worst_accuracy']:.1f} % |")
        assert line == expected


def test_annotate_throughput_block_is_the_committed_measurement():
    """docs/deployment.md quotes results/bench/annotate*.md (written by scripts/bench_annotate.py), not hand copies."""
    text = _text(REPO / "docs" / "deployment.md")
    block = text.split("<!-- annotate-bench:start -->\n", 1)[1].split("<!-- annotate-bench:end -->", 1)[0]
    files = [REPO / "results" / "bench" / name for name in ("annotate.md", "annotate_best.md")]
    assert block == "\n".join(_text(f) for f in files)


def test_command_line_weight_block_is_the_committed_measurement():
    text = _text(REPO / "docs" / "deployment.md")
    block = text.split("<!-- cli-bench:start -->\n", 1)[1].split("<!-- cli-bench:end -->", 1)[0]
    assert block == _text(REPO / "results" / "bench" / "cli.md")


def test_serve_load_block_is_the_committed_measurement():
    text = _text(REPO / "docs" / "deployment.md")
    block = text.split("<!-- serve-bench:start -->\n", 1)[1].split("<!-- serve-bench:end -->", 1)[0]
    assert block == _text(REPO / "results" / "bench" / "serve.md")


def test_robustness_diagnosis_figures_are_the_committed_measurement():
    """training.md and the model card quote results/stress/diagnosis.md (scripts/diagnose_robustness.py): every
    figure is recomputed here from that file's tables."""
    table = _text(REPO / "results" / "stress" / "diagnosis.md")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| model |") and not line.startswith("| windows")]
    pct = lambda cell: float(cell.rstrip(" %"))  # noqa: E731

    def noise_row(model_part: str, condition: str) -> list[float]:
        (row,) = [r for r in rows if model_part in r[0] and r[1:2] == [condition]]
        return [pct(c) for c in row[2:5]]

    start = {r[0]: r[1:] for r in rows if r[0].startswith(("ECG5000", "the same re-cut", "MIT-BIH 208 as"))}
    dataset_start = start["ECG5000 training beats, the dataset's windows"]
    recut_start = start["the same re-cut by annotate's cutter"]
    nearest = {r[0]: [pct(c) for c in r[1:]] for r in rows if r[0] in ("the dataset's windows", "the re-cut windows")}
    nearest_dataset, nearest_recut = nearest["the dataset's windows"], nearest["the re-cut windows"]
    (shares,) = [[pct(c) for c in r[1:6]] for r in rows
                 if r[0] == "`outputs/seed0/best-recut/best-recut_best.pth`" and len(r) == 9]
    annotate, clean, true = noise_row("best-recut", "ma-12dB")
    training = " ".join(_text(REPO / "docs" / "training.md").split())
    expected = [
        f"first sample {recut_start[1]} against {recut_start[0]} for normal beats",
        f"start alike ({dataset_start[1]} and {dataset_start[0]})",
        f"deeper still ({start['MIT-BIH 208 as annotate cuts it'][-1]})",
        f"the nearest neighbour of {nearest_recut[1]:.1f} % of 208's windows is an R-on-T PVC and of "
        f"{nearest_recut[0]:.1f} % a normal beat",
        f"among the dataset's windows, {nearest_dataset[0]:.1f} % are nearest a normal beat",
        f"({shares[0]:.1f} % normal in that run)",
        f"cost `best-recut` {clean - annotate:.1f} points ({annotate:.1f} % -> {clean:.1f} % with them taken out)",
        f"misplaced R-peaks {true - clean:.1f} more",
    ]
    for phrase in expected:
        assert phrase in training, phrase
    annotate, clean, true = noise_row("pretrained:best`", "ma-12dB")
    card = " ".join(_text(REPO / "docs" / "model-card.md").split())
    assert (f"cost `pretrained:best` {clean - annotate:.1f} points ({annotate:.1f} % -> {clean:.1f} % with them "
            f"taken out) and misplaced R-peaks {true - clean:.1f} more") in card


def test_qrs_width_figures_are_the_committed_measurement():
    """training.md's QRS-extent table is diagnosis.md's, and training.md, the model card and README quote its figures
    and the round-3 ablation's (results/ablation/robust_round3.md) as those files have them."""
    table = _text(REPO / "results" / "stress" / "diagnosis.md")
    intro = re.search(r"no model\): (\d+) narrow \(< 100 ms\), (\d+) wide", table)
    width_rows = [line for line in table.splitlines() if line.startswith("| `") and line.count("|") == 5]
    by_model = {r.split("|")[1].strip().strip("`"): [float(c.strip(" %")) for c in r.strip("|").split("|")[1:]]
                for r in width_rows}
    best, edge = by_model["pretrained:best"], by_model["pretrained:edge.tflite"]
    swap = by_model["outputs/seed0-tail-swap/best-recut/best-recut_best.pth"]
    (best_share,) = [float(line.split("|")[2].strip(" %")) for line in table.splitlines()
                     if line.startswith("| `pretrained:best` |") and line.count("|") == 10]
    training_raw = _text(REPO / "docs" / "training.md")
    assert "\n".join(width_rows) in training_raw
    training = " ".join(training_raw.split())
    card = " ".join(_text(REPO / "docs" / "model-card.md").split())
    narrow, wide = intro.group(1), intro.group(2)
    assert f"{narrow} narrow complexes (< 100 ms) and {wide} wide ones (>= 120 ms)" in training
    assert f"{narrow} narrow complexes (< 100 ms) and {wide} wide ones (>= 120 ms)" in card
    assert (f"follows the widths in part ({edge[0]:.1f} % of the narrow complexes called normal, {edge[1]:.1f} % of "
            f"the wide ones); `pretrained:best` does not: it calls {best[1]:.1f} % of the wide complexes normal, so "
            f"its {best_share:.1f} % normal share") in training
    assert (f"calls {edge[0]:.1f} % of the narrow ones normal and {edge[1]:.1f} % of the wide ones. `pretrained:best` "
            f"calls {best[1]:.1f} % of the wide complexes normal") in card
    assert f"plausible-looking {best_share:.1f} % normal share" in card
    assert (f"follows the widths ({swap[0]:.1f} % of the narrow complexes called normal, {swap[1]:.1f} % of the wide "
            f"ones)") in card
    assert (f"call {swap[0]:.1f} % of the narrow complexes normal and {swap[2]:.1f} % of the wide ones ventricular"
            in training)
    assert best[1] > 50  # README: "calls most wide, ventricular complexes normal"
    assert "`pretrained:best` calls most wide, ventricular complexes normal" in " ".join(_text(README).split())
    # round 3 against round 1's winner, as robust_round3.md has them
    round3 = _text(REPO / "results" / "ablation" / "robust_round3.md")
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in round3.splitlines()
             if line.startswith("| +")]
    (base,) = [c for c in cells if "recipe best-recut" in c[0]]
    (tail,) = [c for c in cells if "tail-swapped" in c[0]]
    robust = lambda c: float(c[5].strip(" %"))  # noqa: E731
    f1 = lambda c: float(c[2])  # noqa: E731
    gap, f1_gap = robust(base) - robust(tail), f1(base) - f1(tail)
    assert gap > 1 or f1_gap > 0.02  # "not kept" by the rule fixed before scoring
    assert (f"Robust score {robust(tail):.2f} % against {robust(base):.2f} % ({gap:.2f} pp lower), macro-F1 "
            f"{f1(tail):.3f} against {f1(base):.3f} ({f1_gap:.3f} lower): **not kept**") in training
    assert f"worth {gap:.2f} points on the training patient" in training
    assert f"lost {gap:.2f} points of robust nested-CV accuracy" in card
    edge_rows = [[c.strip() for c in line.strip("|").split("|")] for line in
                 _text(REPO / "results" / "ablation" / "robust_round3_edge.md").splitlines() if line.startswith("| ")]
    (edge_base,) = [c for c in edge_rows if "tail swap" not in c[0] and c[0] != "variant"]
    (edge_tail,) = [c for c in edge_rows if "tail swap" in c[0]]
    assert robust(edge_base) - robust(edge_tail) > 1 or f1(edge_base) - f1(edge_tail) > 0.02 or f1(edge_tail) < 0.5
    assert (f"scored a robust score of {robust(edge_tail):.2f} % against {robust(edge_base):.2f} % and macro-F1 "
            f"{f1(edge_tail):.3f} against {f1(edge_base):.3f}: not kept either") in training


def test_familiarity_figures_are_the_committed_measurement():
    """annotate.md quotes the familiarity verdict on MIT-BIH 208 from results/stress/diagnosis.md; README and the
    model card say the record is called unlike the training beats, which the file must show."""
    table = _text(REPO / "results" / "stress" / "diagnosis.md")
    (row,) = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
              if line.startswith("| `pretrained:best` |") and line.count("|") == 10]
    ratio, limit, flagged = row[6], row[7], row[8]
    assert float(ratio.rstrip("x")) > float(limit.rstrip("x"))  # what README and the model card claim
    annotate = " ".join(_text(REPO / "docs" / "annotate.md").split())
    assert (f"on MIT-BIH 208, `pretrained:best`'s ratio is {ratio} against a limit of {limit}, so the record is called "
            f"unlike the training beats, while the per-beat flag marks {flagged} of its beats") in annotate
    (best,) = [m for m in json.loads(_text(REPO / "results" / "stress" / "stress.json"))["models"]
               if m["model_file"] == "pretrained:best"]
    rows = {r["condition"]: r.get("familiarity") for r in best["rows"]}
    verdicts = [(rows[c]["residual_ratio"], rows[c]["familiar"]) for c in ("recut-250", "ma-12dB", "em-12dB",
                                                                             "rr-0.5-2")]
    assert [v for _, v in verdicts] == [True, False, False, False]
    assert rows["bw-6dB"]["familiar"] is True  # "not to baseline wander, even at 6 dB"
    recut, muscle, motion, slow = (f"{r:.2f}x" for r, _ in verdicts)
    assert (f"test beats re-cut at 250 Hz sit at {recut} (like the training beats); with NSTDB muscle artifact and "
            f"electrode motion at 12 dB at {muscle} and {motion}, and with RR intervals up to 2 s at {slow} (unlike)"
            ) in annotate


def test_annotate_throughput_prose_quotes_the_committed_tables():
    """The figures under the annotate tables in docs/deployment.md are the tables' own cells (results/bench/)."""
    prose = " ".join(_text(REPO / "docs" / "deployment.md").split("<!-- annotate-bench:end -->", 1)[1]
                     .split("### Many records", 1)[0].split())

    def cells(name: str, model: str) -> list[str]:
        rows = [line for line in _text(REPO / "results" / "bench" / name).splitlines()
                if line.startswith(f"| `{model}` |")]
        return [[c.strip() for c in row.strip("|").split("|")] for row in rows]

    default = cells("annotate.md", "pretrained:edge.tflite")[0]
    best = cells("annotate_best.md", "pretrained:best.onnx")[0]
    assert f"`pretrained:edge.tflite`: {default[3]} for one record, {default[6]} with `--jobs 2`" in prose
    assert f"(`.onnx`: {best[3]} for one record, {best[6]} with `--jobs 2`)" in prose
    before, after = cells("annotate_scipy_signal.md", "pretrained:edge.tflite")
    assert f"from {before[3]} to {after[3]} beats/s for one record and from {before[4]} to {after[4]} MB" in prose
    peaks = [float(row[i]) for name in ("annotate.md", "annotate_best.md")
             for model in ("pretrained:edge", "pretrained:edge.onnx", "pretrained:edge.tflite", "pretrained:best",
                           "pretrained:best.onnx", "pretrained:best.tflite")
             for row in cells(name, model) for i in (4, 7)]
    assert peaks and max(peaks) <= 500 and "at most 500 MB per worker for every shipped file" in prose
    assert float(default[6].replace(",", "")) >= 20_000 and float(best[3].replace(",", "")) < 3_000


def test_the_cnn_row_spread_across_machines_is_the_committed_measurement():
    """training.md's spread of edge-recut's nested-CV row (round 2, round 3 on two threads, round 3 on one) is
    computed here from the three committed ablation tables."""
    def row(name: str) -> list[str]:
        lines = [line for line in _text(REPO / "results" / "ablation" / name).splitlines()
                 if line.startswith("| base-cnn-small + 3 re-cut copies, noise SNR 6-30 dB, class balance 1.0")]
        (line,) = lines
        return [c.strip() for c in line.strip("|").split("|")]

    rows = [row(name) for name in ("robust_round2.md", "robust_round3_edge.md", "robust_round3_edge_threads1.md")]
    pct = lambda cell: float(cell.rstrip(" %"))  # noqa: E731
    robust, f1 = [pct(r[5]) for r in rows], [float(r[2]) for r in rows]
    one = rows[2]
    training = " ".join(_text(REPO / "docs" / "training.md").split())
    assert (f"scored {one[1]}, macro-F1 {one[2]}, re-cut {one[3]}, + noise {one[4]}, robust {one[5]}: neither round "
            "2's figures nor round 3's (two threads)") in training
    assert len({tuple(r[1:6]) for r in rows}) == 3  # three different rows
    assert (f"robust score by up to {max(robust) - min(robust):.2f} points and its macro-F1 by up to "
            f"{max(f1) - min(f1):.3f}") in training
    assert min(f1) < 0.50 < max(f1)  # "the floor of 0.50 sits inside that spread"
