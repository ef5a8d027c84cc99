# Two commands on a fresh machine:  `make run` (the main job on the bundled model)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
# CPU build by default (CI); a GPU machine can pass e.g. TORCH='torch>=2.4'.
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin

.PHONY: setup run test lint clean proto demo-model

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: setup
	$(BIN)/python examples/make_demo_recording.py out/demo.mp4
	$(BIN)/streamer summarize out/demo.mp4 --chunk-minutes 0.25

# Retrain the bundled demo model from scratch and install it (measured: ~35 min of data, 148 min of training on 2 cores).
demo-model: setup
	$(BIN)/python -m streamer.demo.train --work out/demo-train --install

test: setup
	$(BIN)/ruff check streamer tests examples
	$(BIN)/ruff format --check streamer tests examples
	$(BIN)/mypy
	PYTHONASYNCIODEBUG=1 $(BIN)/python -m pytest -q

# Regenerate the gRPC code from protos/streamer/v1/streamer.proto (grpcio-tools pinned in pyproject.toml).
proto: setup
	$(BIN)/python -m streamer.serve.grpc_codegen

clean:
	rm -rf $(VENV) out .pytest_cache
