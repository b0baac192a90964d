# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.muq-installed

.PHONY: setup demo test bench

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

# benchmark scripts: they print figures (no pass/fail); speed targets live here, never in tests
bench: setup
	$(BIN)/python -m muq.corpus --preset pretrain --out data/corpus
	$(BIN)/python tools/bench_rvq.py
	$(BIN)/python tools/bench_loader.py data/corpus/clips_train.jsonl
	$(BIN)/python tools/bench_encoder.py --preset large --seconds 10 --modes forward --bf16
	$(BIN)/python tools/bench_gpu.py $$($(BIN)/python -c "import torch; print('' if torch.cuda.is_available() else '--tiny')")
