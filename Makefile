# Two entry points (see README "Quickstart"):
#   make run   - set up .venv and run the main job
#   make test  - set up .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
EXTRAS ?= dev,onnx,tflite,serve
BIN    := $(VENV)/bin

.PHONY: setup run test results clean

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

# Regenerate the committed results/ and the generated blocks of docs/results.md (explicit; `make run` never does).
# Reuses the checkpoints under outputs/seed<N>/ and trains them first where missing (hours on a small CPU).
results: setup
	$(BIN)/ecgcnn pipeline --seeds 0 1 2 --skip-train --results-dir results --readme docs/results.md
	$(BIN)/ecgcnn pipeline --models best edge --seeds 0 1 2 --skip-train --results-dir results/recipes --readme docs/results.md --readme-section recipes

clean:
	rm -rf $(VENV) outputs
