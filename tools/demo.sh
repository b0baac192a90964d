#!/usr/bin/env bash
# `make demo`: the main job on the built-in offline corpus, CPU-sized (tiny preset): about 30 minutes on 2 cores the
# first time (rendering included), less when the corpora exist.
#   1. render the labelled corpora: 30 min of music to pretrain on; the evaluation corpus (40 min of *other* works and
#      2400 single notes; reused when present)
#   2. train Mel-RVQ, then MuQ on its frozen tokens; MuQ on random-projection targets with the same budget
#   3. probe both (the quick protocol of nb 08), with the random-weight, raw-mel, chroma, tempogram and label-ceiling rows
#   4. train MuQ-MuLan on the corpus captions (and on a random MuQ, the baseline); evaluate both zero-shot
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TRAIN=data/corpus/clips_train.jsonl
$PY -m muq.corpus --preset pretrain --out data/corpus
$PY -m muq.corpus --preset eval --out data/eval minutes=40
$PY -m muq.train --preset tiny --data $TRAIN --run_dir runs/demo keep_last=10 muq.ckpt_every=25
$PY -m muq.train --stage muq --preset tiny --data $TRAIN --run_dir runs/demo_rp model.targets=random_projection
$PY -m muq.probe --ckpt runs/demo/muq/final --compare muq_random_projection=runs/demo_rp/muq/final --corpus data/eval --preset quick
$PY -m muq.train --stage mulan --preset tiny --data $TRAIN --run_dir runs/demo
$PY -m muq.train --stage mulan --preset tiny --data $TRAIN --run_dir runs/demo_mulan_random_muq muq_ckpt=none
$PY -m muq.mulan --ckpt runs/demo/mulan/final --compare "mulan_on_random_muq=runs/demo_mulan_random_muq/mulan/final" --corpus data/eval
echo "[demo] MuQ: MuQ.from_pretrained('runs/demo/muq/final'); MuQ-MuLan: MuQMuLan.from_pretrained('runs/demo/mulan/final')"
echo "[demo] tables: runs/demo/muq/probe/results.md, runs/demo/mulan/zeroshot/zeroshot.md"
