#!/usr/bin/env bash
# `make results`: the evidence that pretraining helps (or not), reproducible from a fresh clone.
#   1. the 10-hour pretraining corpus of the learning curve and the evaluation corpus (disjoint by work), both built in
#   2. Mel-RVQ (small preset), then MuQ-small on its tokens and MuQ-small on random-projection targets, same budget
#   3. both probed, with the random-weight, raw-mel, chroma, tempogram and label-ceiling baselines, paired-bootstrap verdicts
#   4. nbs/results/results.json: the tables, their provenance, and each run's masked CE against its targets' unigram floor
# The budget: 2400 updates of 8 x 6 s crops (32 hours of audio seen, some four passes over the corpus), where the learning
# curve's MuQ-tiny has long left the marginal of its targets (MuQ-small still loses key to its random weights there:
# by 28 points at 900 updates, by 30 at 2400, while gaining tempo and note instrument). MuQ-small trains at about
# 48 audio-s/s on 2 CPU cores: some 42 minutes a run, with the probe (about 30 minutes) some 2 hours in all.
# `--quick`: the same pipeline at toy sizes in a few minutes (what CI runs;
# its numbers mean nothing; its results file stays in the run folder).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ "${1:-}" = "--quick" ]; then
  PRESET=tiny; OUT=runs/results_quick; MIN=2; EVAL="minutes=5 notes=150"; RVQ=10; STEPS=10; PROBE="--preset quick --tasks instrument,tempo,pitch"; SMALL="data.batch_size=4"
  RESULTS=$OUT/results.json
else
  PRESET=small; OUT=runs/results; MIN=600; EVAL=""; RVQ=300; STEPS=2400; PROBE=""; SMALL=""; RESULTS=nbs/results/results.json
fi
t0=$(date +%s)
PRE=$($PY -m muq.corpus --preset pretrain minutes=$MIN | tail -n 1)            # each configuration in a folder of its own
EVALDIR=$($PY -m muq.corpus --preset eval $EVAL | tail -n 1)
TRAIN=$PRE/clips_train.jsonl
$PY -m muq.train --stage rvq --preset $PRESET --data $TRAIN --run_dir $OUT/mel_rvq optim.steps=$RVQ $SMALL
$PY -m muq.train --stage muq --preset $PRESET --data $TRAIN --run_dir $OUT/mel_rvq optim.steps=$STEPS $SMALL
$PY -m muq.train --stage muq --preset $PRESET --data $TRAIN --run_dir $OUT/random_projection optim.steps=$STEPS model.targets=random_projection $SMALL
$PY -m muq.probe --ckpt $OUT/mel_rvq/muq/final --compare muq_random_projection=$OUT/random_projection/muq/final \
    --corpus $EVALDIR --cache $OUT/probe $PROBE
$PY tools/snapshot_results.py --out $OUT --results $RESULTS --minutes $(( ($(date +%s) - t0) / 60 ))
echo "[results] $(( ($(date +%s) - t0) / 60 )) min; tables: $OUT/probe/results.md, $RESULTS"
