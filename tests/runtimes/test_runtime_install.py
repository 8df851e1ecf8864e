"""A runtime-only install (`pip install ecgcnn[litert]` / `ecgcnn[onnxruntime]`) predicts without torch.

Each check runs in a fresh interpreter that refuses to import any top-level module outside the standard library,
ecgcnn, and the distributions that pyproject.toml's base dependencies plus that one extra pull in (transitively):
so a new import of torch, scikit-learn or anything else on the prediction path fails here, not on a user's phone.
The command line runs there for those formats (it imports only the command it runs); a command that needs
another extra says which in one line.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
from packaging.requirements import Requirement

from ecgcnn import load_predictor
from ecgcnn.cli import TRAIN_EXTRA_MODULES

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

BLOCKER = """
import sys
ALLOWED = set({allowed!r})
class Refuse:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in ALLOWED and top not in sys.stdlib_module_names:
            raise ModuleNotFoundError(f"No module named {{top!r}} (not in this install)", name=top)
sys.meta_path.insert(0, Refuse())
"""


def _distributions(requirements: list[str], extras: set[str] = frozenset()) -> set[str]:
    """Names of the distributions these requirements install, transitively (markers evaluated here)."""
    seen: set[str] = set()
    todo = [(text, extras) for text in requirements]
    while todo:
        text, active = todo.pop()
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": extra}) for extra in (active or {""})):
            continue
        name = req.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        todo += [(sub, set(req.extras)) for sub in (metadata.requires(name) or [])]
    return seen


def _allowed_modules(extra: str) -> set[str]:
    dists = _distributions(PROJECT["dependencies"] + PROJECT["optional-dependencies"][extra])
    owners = metadata.packages_distributions()
    modules = {module for module, names in owners.items()
               if any(n.lower().replace("_", "-") in dists for n in names)}
    return modules | {"ecgcnn"}


def _run(code: str, allowed: set[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER.format(allowed=sorted(allowed)) + code],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("extra, model",
                         [("litert", "pretrained:edge.tflite"), ("onnxruntime", "pretrained:edge.onnx")])
def test_runtime_only_install_predicts_without_torch(extra, model):
    allowed = _allowed_modules(extra)
    assert not allowed & TRAIN_EXTRA_MODULES - {"tqdm"}  # tqdm comes with ai-edge-litert; torch etc. must not
    beats = np.random.default_rng(0).normal(size=(16, 140)) * 3 + 1
    expected = load_predictor(model).predict(beats)
    code = (f"import numpy as np\nfrom ecgcnn import load_predictor\n"
            f"beats = np.array({beats.tolist()!r})\n"
            f"print(__import__('json').dumps(load_predictor({model!r}).predict(beats).tolist()))\n"
            f"print('torch' in sys.modules)")
    done = _run(code, allowed)
    assert done.returncode == 0, done.stderr
    labels, torch_loaded = done.stdout.splitlines()[-2:]
    assert json.loads(labels) == expected.tolist()
    assert torch_loaded == "False"


def test_the_blocker_refuses_what_an_extra_does_not_install():
    """The checks here can fail: torch is outside the litert install, so importing it there must fail."""
    done = _run("import torch", _allowed_modules("litert"))
    assert done.returncode != 0 and "No module named 'torch'" in done.stderr


@pytest.mark.parametrize("extra, fmt", [("litert", "tflite"), ("onnxruntime", "onnx")])
def test_bare_pretrained_name_opens_a_format_the_install_can_run(extra, fmt):
    """The README's first API line, load_predictor("pretrained:edge"), works without torch: the shipped file of a
    format the install has a runtime for, the same file as pretrained:edge.<fmt>."""
    code = ("from ecgcnn import load_predictor\np = load_predictor('pretrained:edge')\n"
            "print(p.format, p.path.name)")
    done = _run(code, _allowed_modules(extra))
    assert done.returncode == 0, done.stderr
    explicit = load_predictor(f"pretrained:edge.{fmt}")
    assert done.stdout.split() == [explicit.format, explicit.path.name]


def _cli(args: list[str], allowed: set[str]) -> subprocess.CompletedProcess:
    return _run(f"from ecgcnn.__main__ import run\nsys.argv = ['ecgcnn', *{args!r}]\nsys.exit(run())", allowed)


def test_command_line_runs_in_a_runtime_only_install(tmp_path):
    """--help lists every command, and predict with a .tflite model gives the full install's answers."""
    allowed = _allowed_modules("litert")
    done = _cli(["--help"], allowed)
    assert done.returncode == 0, done.stderr
    assert "predict" in done.stdout and "annotate" in done.stdout
    beats = np.random.default_rng(1).normal(size=(6, 140))
    source = tmp_path / "beats.csv"
    source.write_text("\n".join(",".join(f"{v:.6f}" for v in row) for row in beats) + "\n")
    done = _cli(["predict", "pretrained:edge.tflite", "--input", str(source)], allowed)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.strip().splitlines()[1:]
    expected = load_predictor("pretrained:edge.tflite").predict(np.loadtxt(source, delimiter=","))
    assert [int(row.split(",")[2]) for row in rows] == expected.tolist()


@pytest.mark.parametrize("command", [["train"], ["summary"], ["serve", "pretrained:edge.tflite"]])
def test_a_command_whose_extra_is_missing_says_which_in_one_line(command):
    done = _cli(command, _allowed_modules("litert"))
    assert done.returncode == 2, done.stderr
    extra = "serve" if command[0] == "serve" else "train"
    assert done.stderr.startswith(f"ecgcnn: error: this needs the '{extra}' extra (")
    assert done.stderr.endswith(f"'ecgcnn[{extra}]'\n") and done.stderr.count("\n") == 1
    assert done.stdout == ""


@pytest.mark.parametrize("install, model, extra",
                         [("litert", "pretrained:edge.onnx", "onnxruntime"),
                          ("onnxruntime", "pretrained:edge.tflite", "litert")])
def test_a_model_of_another_runtime_names_that_runtime_only_extra(tmp_path, install, model, extra):
    """The missing runtime is named by its own light extra, not by the export extras that pull in onnx or TensorFlow."""
    source = tmp_path / "beats.csv"
    source.write_text(",".join(["0.5"] * 140) + "\n")
    done = _cli(["predict", model, "--input", str(source)], _allowed_modules(install))
    assert done.returncode == 2
    assert done.stderr.startswith(f"ecgcnn: error: this needs the '{extra}' extra (")
    assert done.stderr.endswith(f"'ecgcnn[{extra}]'\n") and done.stderr.count("\n") == 1


def test_train_extra_modules_match_pyproject():
    """The launcher's list of the 'train' extra's modules is the extra in pyproject.toml, no more, no less."""
    owners = metadata.packages_distributions()
    direct = {Requirement(text).name.lower().replace("_", "-") for text in PROJECT["optional-dependencies"]["train"]}
    for module in TRAIN_EXTRA_MODULES:
        assert any(n.lower().replace("_", "-") in direct for n in owners.get(module, [])), module
    for dist in direct:
        assert any(dist in {n.lower().replace("_", "-") for n in owners.get(m, [])} for m in TRAIN_EXTRA_MODULES), dist
