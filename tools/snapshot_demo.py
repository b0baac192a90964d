"""Commit what `make demo` measured: nbs/results/demo.json holds the demo's probe and zero-shot tables, their raw
numbers and their provenance (the README's demo tables are generated from it by tools/readme.py).

    .venv/bin/python tools/snapshot_demo.py [--runs runs] [--minutes M] [--earlier OLD.json]
    # after make demo; M: the demo's measured wall time; OLD.json: an earlier demo.json (another machine) whose probe
    # tables are kept beside the new ones as `earlier_run`, so the README can show how far one-seed figures move
"""
import argparse, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from muq import study_report as report

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=str(ROOT / "runs")); ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--earlier", default="", help="an earlier demo.json to keep beside this run (its probe tables and provenance)")
    a = ap.parse_args(); runs = Path(a.runs)
    probe, zs = runs / "demo" / "muq" / "probe", runs / "demo" / "mulan" / "zeroshot"
    z = json.loads((zs / "zeroshot.json").read_text()); doc = report.probe_snapshot(probe)
    doc["markdown"]["zeroshot"] = (zs / "zeroshot.md").read_text().split("\n\n")[0].strip()
    doc.update(zeroshot=z, minutes=a.minutes, training=json.loads((runs / "demo" / "muq" / "summary.json").read_text()),
               data_stats=json.loads((runs / "demo" / "muq" / "data_stats.json").read_text()))
    if a.earlier:
        try: e = json.loads(Path(a.earlier).read_text()); e["probe_provenance"], e["markdown"]["verdicts"]
        except (OSError, ValueError, KeyError) as err: raise SystemExit(f"--earlier {a.earlier}: not a demo.json written by this tool ({err!r})")
        doc["earlier_run"] = dict(git=e["probe_provenance"]["git"], checkpoints=e["probe_provenance"]["checkpoints"],
                                  manifests=e["probe_provenance"]["manifests"], minutes=e.get("minutes"), verdicts=e["verdicts"])
        doc["markdown"].update(earlier_probe_mlp=e["markdown"]["probe_mlp"], earlier_verdicts=e["markdown"]["verdicts"])
    text = json.dumps(doc, indent=1).replace(str(runs.resolve().parent) + "/", "")     # paths relative to the checkout that ran the demo
    out = ROOT / "nbs" / "results" / "demo.json"; out.parent.mkdir(exist_ok=True); out.write_text(text + "\n")
    print(f"wrote {out}")
