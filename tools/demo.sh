#!/usr/bin/env bash
# `make demo`: the main job on the built-in offline corpus, CPU-sized (tiny preset). Measured on an idle 2-core machine
# from a fresh clone: see the README's quick start for the time (rendering included).
#   1. render the labelled corpora: 30 min of music to pretrain on; the evaluation corpus (40 min of *other* works and
#      2400 single notes). Each configuration has a folder of its own (python -m muq.corpus prints it).
#   2. train Mel-RVQ, then MuQ-tiny on its frozen tokens for 2400 updates (past the point where it has learned only the
#      marginal of its targets; see the learning curve in chapter 8)
#   3. probe MuQ (the quick protocol of nb 08, MLP probe) beside the same model with random weights and the raw-mel
#      statistics, with paired-bootstrap verdicts (the learning curve, `make curve`, adds the other baselines)
#   4. train MuQ-MuLan (2 seeds) on the corpus captions, held-out tags excluded, on the trained MuQ and on a random MuQ;
#      evaluate both zero-shot on seen and unseen tags
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
t0=$(date +%s); ts=$t0
stage() { local now; now=$(date +%s); echo "[demo] stage $1: $(( now - ts )) s"; ts=$now; }   # per-stage wall times, with the CPU
echo "[demo] CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, bf16 instructions: $($PY -c 'from muq.core import cpu_bf16; print(cpu_bf16() or "none")')"
PRE=$($PY -m muq.corpus --preset pretrain | tail -n 1)
EVAL=$($PY -m muq.corpus --preset demo_eval | tail -n 1)
TRAIN=$PRE/clips_train.jsonl
echo "[demo] pretraining corpus $PRE, evaluation corpus $EVAL ($(( $(date +%s) - t0 )) s)"; stage render
$PY -m muq.train --preset tiny --data $TRAIN --run_dir runs/demo muq.optim.steps=2400 muq.ckpt_every=300 muq.diag_every=300 muq.keep_last=10 \
    data.num_workers=1
stage "Mel-RVQ + MuQ-tiny training"
$PY -m muq.probe --ckpt runs/demo/muq/final --corpus $EVAL --preset quick probes=mlp --skip "chroma_stats,tempogram,label (ceiling)"
stage "MuQ probe"
echo "[demo] MuQ trained and probed ($(( $(date +%s) - t0 )) s)"
for s in 0 1; do
  sfx=$([ $s = 0 ] && echo "" || echo "_seed$s")
  $PY -m muq.train --stage mulan --preset tiny --data $TRAIN --run_dir runs/demo$sfx muq_ckpt=runs/demo/muq/final seed=$s optim.steps=100
  $PY -m muq.train --stage mulan --preset tiny --data $TRAIN --run_dir runs/demo_mulan_random_muq$sfx muq_ckpt=none seed=$s optim.steps=100
done
stage "MuQ-MuLan trainings (4)"
$PY -m muq.mulan --ckpt runs/demo/mulan/final,runs/demo_seed1/mulan/final \
    --compare "mulan_on_random_muq=runs/demo_mulan_random_muq/mulan/final,runs/demo_mulan_random_muq_seed1/mulan/final" --corpus $EVAL
stage "MuQ-MuLan zero-shot"
echo "[demo] $(( ($(date +%s) - t0) / 60 )) min in all"
echo "[demo] MuQ: MuQ.from_pretrained('runs/demo/muq/final'); MuQ-MuLan: MuQMuLan.from_pretrained('runs/demo/mulan/final')"
echo "[demo] tables: runs/demo/muq/probe/results.md, runs/demo/mulan/zeroshot/zeroshot.md"
