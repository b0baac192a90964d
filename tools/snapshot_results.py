"""Commit what `make results` measured: nbs/results/results.json holds the probe's tables, the paired-bootstrap
verdicts, their provenance, and each MuQ run's masked cross-entropy against the unigram entropy of its targets (is it
past the marginal?), so the README's `make results` tables come from a file that records what produced them.

    .venv/bin/python tools/snapshot_results.py [--out runs/results] [--results nbs/results/results.json] [--minutes M]
"""
import argparse, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from muq import study_report as report
from muq.study_results import training_row                     # masked CE and accuracy against the targets' unigram floor and majority code

RUNS = {"muq": "mel_rvq", "muq_random_projection": "random_projection"}      # the probe's encoder name -> run folder

def snapshot(out: Path, minutes=None) -> dict:
    "The results file's content for the `make results` run in `out`."
    doc = report.probe_snapshot(out / "probe")
    finals = {name: out / run / "muq" / "final" for name, run in RUNS.items()}
    for name, f in finals.items():
        if not (f.parent / "summary.json").exists(): raise SystemExit(f"{f.parent}: no finished MuQ run (summary.json); run make results first")
    cfg = json.loads((finals["muq"].parent / "config.json").read_text())
    steps = cfg["optim"]["steps"]
    doc.update(steps=steps, crop_seconds=cfg["data"]["crop_seconds"], batch_size=cfg["data"]["batch_size"],
               encoder=dict(d_model=cfg["model"]["encoder"]["d_model"], n_layers=cfg["model"]["encoder"]["n_layers"]),
               pretrain_manifest=Path(cfg["data"]["manifest"]).parent.name, minutes=minutes,
               training=[training_row(f, name, steps, 0) for name, f in finals.items()])
    doc["markdown"]["training"] = report.training_table(doc)
    return doc

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "runs" / "results"), help="the run folder of make results")
    ap.add_argument("--results", default=str(ROOT / "nbs" / "results" / "results.json"))
    ap.add_argument("--minutes", type=float, default=None, help="the measured wall time of make results")
    a = ap.parse_args()
    text = report.results_json(snapshot(Path(a.out), a.minutes))
    res = Path(a.results); res.parent.mkdir(parents=True, exist_ok=True); res.write_text(text + "\n")
    print(f"[snapshot_results] wrote {res}")
