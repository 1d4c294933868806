# zslab: `make run` (the main job: every notebook, offline, with the report) and `make test`.
# Both create the environment first if it is missing (a venv in .venv; no root needed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zslab-installed
RUN_DIR ?= runs/latest
# notebooks run side by side, the cores shared out among their kernels; models train once (a lock per model)
JOBS ?= 2
export ZSLAB_OFFLINE ?= 1

.PHONY: env run test lab benchmark notebooks clean-run

$(STAMP): pyproject.toml requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch/torchvision first, pinned: these builds install from the local package index.
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

env: $(STAMP)
	@bash tools/system_assets.sh

run: env
	$(BIN)/zslab run --all --jobs $(JOBS) --out $(RUN_DIR)

test: env
	$(BIN)/pytest -q

lab: env  ## JupyterLab on the notebooks; kernels run in this environment (--allow-root only when root)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root,)

benchmark: env
	$(BIN)/python benchmarks/tiny_clip.py --seeds 0 1 2

notebooks: env  ## regenerate notebooks/*.ipynb from their reviewed sources notebooks/*.py
	$(BIN)/python tools/make_notebook.py notebooks/*.py

clean-run:
	rm -rf $(RUN_DIR)
