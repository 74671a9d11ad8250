# Two entry points: `make run` (index a sample corpus end to end) and `make test`.
# Each creates the virtual environment when it is missing.
VENV ?= .venv
PYTHON ?= python3
# A CPU build of torch; set TORCH_SPEC to another requirement (or "" to keep an installed torch).
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: run test lint ui dagster venv weaviate-server clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	test -z "$(TORCH_SPEC)" || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# The pinned Weaviate server, built once per machine from its Go module into
# ~/.cache/weaviate-indexer (or downloaded where Go is missing); instant when it is there.
weaviate-server: venv
	$(BIN)/weaviate-indexer weaviate install

run: venv weaviate-server
	HF_HUB_OFFLINE=1 $(BIN)/weaviate-indexer demo

test: venv weaviate-server
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest --durations=15

# `dagster dev` recommends the `dg` command line, which wants another project layout; the
# webserver and daemon it starts are the same.
DEV_WARNING := ignore:Function `dev_command` is superseded

# The Dagster UI on http://127.0.0.1:3000, with the project's deploy/local/dagster.yaml.
ui: venv weaviate-server
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(BIN)/weaviate-indexer instance --replace-settings
	test -n "$$WEAVIATE_URL" || HF_HUB_OFFLINE=1 $(BIN)/weaviate-indexer weaviate start
	DAGSTER_HOME=$(CURDIR)/.dagster_home HF_HUB_OFFLINE=1 PYTHONWARNINGS='$(DEV_WARNING)' \
		$(BIN)/dagster dev -w workspace.yaml

# Dagster's own command line on the project's instance and code, for example
# `make dagster ARGS="sensor start corpus_changes"` or `make dagster ARGS="run list"`.
dagster: venv
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(BIN)/weaviate-indexer instance
	DAGSTER_HOME=$(CURDIR)/.dagster_home HF_HUB_OFFLINE=1 $(BIN)/dagster $(ARGS) $(if $(filter sensor schedule job asset,$(firstword $(ARGS))),-w workspace.yaml)

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .data
