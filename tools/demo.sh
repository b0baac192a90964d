#!/usr/bin/env bash
# `make demo`: the main job on the built-in offline corpus, CPU-sized (tiny preset).
#   1. render the labelled corpus (30 min of music + 300 single notes; reused when present)
#   2. train Mel-RVQ, then MuQ on its frozen tokens
#   3. train the BEST-RQ-style baseline (random-projection targets) with the same budget
#   4. probe both, with the random-init and raw-mel baselines, and print the results table
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY -m muq.corpus --preset pretrain --out data/corpus
$PY -m muq.train --preset tiny --run_dir runs/demo
$PY -m muq.train --stage muq --preset tiny --run_dir runs/demo_rp model.targets=random_projection
$PY -m muq.probe --ckpt runs/demo/muq/final --compare muq_random_projection=runs/demo_rp/muq/final --corpus data/corpus
echo "[demo] model: MuQ.from_pretrained('runs/demo/muq/final'); results: runs/demo/muq/probe/results.md"
