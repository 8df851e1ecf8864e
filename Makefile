# Two entry points (see README "Quickstart"):
#   make run   - set up .venv and run the main job
#   make test  - set up .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
EXTRAS ?= dev,onnx,tflite
BIN    := $(VENV)/bin

.PHONY: setup run test clean

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

clean:
	rm -rf $(VENV) outputs
