# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
TEST_WORKERS ?= 2
STAMP := $(VENV)/.muq-installed

.PHONY: setup demo test check bench results ablations curve notebooks docs format

$(STAMP): settings.ini setup.py tools/setup.sh
	bash tools/setup.sh
	touch $(STAMP)

setup: $(STAMP)

# the main job on the built-in offline corpus
demo: setup
	bash tools/demo.sh

# every check: notebooks clean and exported, then pytest on two workers (each notebook runs once there, in a real
# Jupyter kernel: tests/test_notebooks.py); any failure fails the command. PYTEST_ARGS adds pytest options.
test: setup
	@t=$$(date +%s); bash tools/check_sync.sh; rc=$$?; echo "[test] check_sync $$(( $$(date +%s) - t )) s"; exit $$rc
	@t=$$(date +%s); $(BIN)/python -m pytest -q -n $(TEST_WORKERS) tests $(PYTEST_ARGS); rc=$$?; echo "[test] pytest $$(( $$(date +%s) - t )) s"; exit $$rc

# the inner loop: what runs in seconds (no notebooks, nothing marked slow); `make test` still runs everything
check: setup
	bash tools/check_sync.sh
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow" tests $(PYTEST_ARGS)

# the evidence. The learning curve: MuQ-tiny from 150 to 38400 updates on 10 hours of music, probed at every budget,
# with a sweep of the recipe and label efficiency (hours on 2 cores; resumable: run it again to continue; ARGS=--quick
# for a smoke run). The target ablations at 2400 updates, and MuQ-small against its baselines.
curve: setup
	nice -n 10 $(BIN)/python -m muq.study curve $(ARGS)
results: setup
	bash tools/results.sh
ablations: setup
	$(BIN)/python -m muq.study ablations $(ARGS)

# execute every notebook in a real kernel, slow cells included, and commit-ready outputs (after `make demo`)
notebooks: setup
	$(BIN)/python tools/run_notebooks.py --slow --write

# the house style of the notebooks' code: ruff format (ruff.toml), then what a formatter leaves over 120 columns
# (docstrings, long strings, trailing comments), then the modules exported again
format: setup
	$(BIN)/ruff format nbs/
	$(BIN)/python tools/wrap_lines.py nbs/*.ipynb
	$(BIN)/ruff format nbs/
	$(BIN)/nbdev_export

# the static site of the chapters (site/index.html), from the committed notebooks
docs: setup
	$(BIN)/python tools/docs.py

# benchmark scripts: they print figures (no pass/fail); speed targets live here, never in tests
bench: setup
	$(BIN)/python -m muq.corpus --preset pretrain
	$(BIN)/python tools/bench_rvq.py
	$(BIN)/python tools/bench_loader.py
	$(BIN)/python tools/bench_encoder.py --preset large --seconds 10 --modes forward --bf16
	$(BIN)/python tools/bench_gpu.py $$($(BIN)/python -c "import torch; print('' if torch.cuda.is_available() else '--tiny')")
