# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.muq-installed

.PHONY: setup demo test clean-check export-check nbtest pytest bench

$(STAMP): settings.ini setup.py tools/setup.sh
	bash tools/setup.sh
	touch $(STAMP)

setup: $(STAMP)

# the main job on the built-in offline corpus
demo: setup
	bash tools/demo.sh

# the checks nbdev's own CI runs, in order; any failure fails the command
test: setup
	bash tools/check_sync.sh
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python tools/bench_frontend.py
