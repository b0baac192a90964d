#!/usr/bin/env bash
# Line coverage of muq/ over the whole of `make test` (notebooks, pytest and every process they start: CLIs, torchrun
# ranks, DataLoader workers, Jupyter kernels), and pytest's 30 slowest tests. Prints the report; writes
# .coverage-data/report.txt. Coverage slows Python down: its times are not `make test`'s.
set -euo pipefail
cd "$(dirname "$0")/.."
make setup >/dev/null
.venv/bin/python -c "import coverage" 2>/dev/null || .venv/bin/pip install -q "coverage>=7.4"
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
PTH="$SITE/muq_coverage_startup.pth"
echo "import coverage; coverage.process_startup()" > "$PTH"    # any Python started with COVERAGE_PROCESS_START measures itself
trap 'rm -f "$PTH"' EXIT
rm -rf .coverage-data; mkdir -p .coverage-data
COVERAGE_FILE=$PWD/.coverage-data/cov COVERAGE_PROCESS_START=$PWD/.coveragerc make test PYTEST_ARGS="--durations=30" 2>&1 | tee .coverage-data/test.log
COVERAGE_FILE=$PWD/.coverage-data/cov .venv/bin/coverage combine -q --rcfile=.coveragerc
.venv/bin/coverage report --rcfile=.coveragerc | tee .coverage-data/report.txt
