#!/usr/bin/env bash
# `make demo`: the main job on the built-in offline corpus.
#   1. render the labelled corpus (30 min of music + 300 single notes; reused when present)
#   2. train Mel-RVQ, then MuQ on its frozen tokens (tiny preset, CPU-sized)
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m muq.corpus --out data/corpus
.venv/bin/python -m muq.train --preset tiny --run_dir runs/demo
echo "[demo] load the model with: MuQ.from_pretrained('runs/demo/muq/final')"
