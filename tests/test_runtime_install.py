"""A runtime-only install (`pip install ecgcnn[litert]` / `ecgcnn[onnxruntime]`) predicts without torch.

Each check runs in a fresh interpreter that refuses to import any top-level module outside the standard library,
ecgcnn, and the distributions that pyproject.toml's base dependencies plus that one extra pull in (transitively):
so a new import of torch, scikit-learn or anything else on the prediction path fails here, not on a user's phone.
The command line, which needs the 'train' extra, says so in one line.
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
from ecgcnn.__main__ import TRAIN_EXTRA_MODULES

ROOT = Path(__file__).resolve().parents[1]
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
    """The check above can fail: torch is outside the litert install, so loading a .pth model there must fail."""
    done = _run("from ecgcnn import load_predictor\nload_predictor('pretrained:edge')", _allowed_modules("litert"))
    assert done.returncode != 0 and "No module named 'torch'" in done.stderr


def test_command_line_without_the_train_extra_says_which_extra_in_one_line():
    done = _run("from ecgcnn.__main__ import run\nsys.exit(run())", _allowed_modules("litert"))
    assert done.returncode == 2
    assert done.stderr == ("ecgcnn: error: the command line needs the 'train' extra (torch is not installed): "
                           "pip install 'ecgcnn[train]'\n")
    assert done.stdout == ""


def test_train_extra_modules_match_pyproject():
    """The launcher's list of the 'train' extra's modules is the extra in pyproject.toml, no more, no less."""
    owners = metadata.packages_distributions()
    direct = {Requirement(text).name.lower().replace("_", "-") for text in PROJECT["optional-dependencies"]["train"]}
    for module in TRAIN_EXTRA_MODULES:
        assert any(n.lower().replace("_", "-") in direct for n in owners.get(module, [])), module
    for dist in direct:
        assert any(dist in {n.lower().replace("_", "-") for n in owners.get(m, [])} for m in TRAIN_EXTRA_MODULES), dist
