"""Does adapting the encoder help, and does it help more from pretrained weights? (nb 08b)

For each task of the built-in evaluation corpus (key, instrument family, style), fine-tune MuQ-tiny in the three
modes — a head on frozen features, LoRA adapters, the whole encoder — starting from the demo's pretrained MuQ and
from random weights of the same shape, for several seeds; select each run on its validation metric and score it on
the test split. Beside them, chapter 8's quick probe of the same two starts on the same splits (an MLP fitted to
convergence on z-scored frozen features): what a head on frozen features reaches when it is not held to the budget.
Resumable (finished runs are reused). Results: nbs/results/finetune.json (tables in its `markdown`).

    .venv/bin/python tools/finetune_study.py [--seeds 3] [--steps 150] [--tasks key,instrument,style] [--quick]
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import numpy as np
from muq.core import atomic_write_text, provenance
from muq.corpus import builtin_corpus
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {'key': 'key', 'instrument': 'family', 'style': 'collection'}
MODES = ('freeze', 'lora', 'full')

def run(out, task, mode, init, seed, a, ev, ckpt) -> dict:
    d = out / task / f"{init}_{mode}" / f"seed{seed}"; rep = d / "finetune" / "report.json"
    if rep.exists() and (done := json.loads((d / "finetune" / "config.json").read_text())["optim"]["steps"]) != a.steps:
        sys.exit(f"{d}: trained for {done} updates, not --steps {a.steps}; give another --out")
    if not rep.exists():
        start = ckpt if init == "pretrained" else str(random_ckpt(out, ckpt, seed))
        cmd = [sys.executable, "-m", "muq.finetune", "--ckpt", start, "--data", str(ev / "clips_train.jsonl"),
               "--valid", str(ev / "clips_valid.jsonl"), "--test", str(ev / "clips_test.jsonl"), "--label", FIELDS[task], "--mode", mode,
               "--run_dir", str(d), f"seed={seed}", f"optim.steps={a.steps}", f"eval_every={max(10, a.steps // 3)}", "data.num_workers=1",
               "data.crop_seconds=5.0", "eval_window=10.0"]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode: sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return json.loads(rep.read_text())

def wall_seconds(d: Path) -> float:
    "Wall time of a run's last invocation: its config is written when it starts, its report when it ends (reused runs keep theirs)."
    f = d / "finetune"
    return round((f / "report.json").stat().st_mtime - (f / "config.json").stat().st_mtime, 1)

def moved(start: Path, best: Path) -> float:
    "How far fine-tuning moved the encoder: |w_best - w_start| / |w_start| over its trained weights (BatchNorm statistics left out)."
    from safetensors.torch import load_file
    a, b = load_file(str(start / "model.safetensors")), load_file(str(best / "model.safetensors"))
    pairs = [(a[k].double(), b["muq." + k].double()) for k in a if "muq." + k in b and a[k].is_floating_point()
             and not k.startswith(("model.rvq.", "model.linear.", "model.recon_proj.")) and "running_" not in k and "inv_freq" not in k]
    return float(sum(((y - x) ** 2).sum() for x, y in pairs) ** 0.5 / sum((x ** 2).sum() for x, _ in pairs) ** 0.5)

def random_ckpt(out: Path, ckpt: str, seed: int) -> Path:
    "The pretrained checkpoint's architecture with random weights (drawn with `seed`), saved once."
    import torch
    from muq import MuQ
    p = out / "random_init" / f"seed{seed}"
    if not (p / "model.safetensors").exists():
        cfg = MuQ.from_pretrained(ckpt).config; torch.manual_seed(seed); MuQ(cfg).save_pretrained(p)
    return p

def probe_anchor(out: Path, ckpt: str, ev: Path, tasks, seed: int = 0) -> list:
    "Chapter 8's quick probe (an MLP fitted to convergence on z-scored frozen features) of the same two starts on the same splits."
    import csv
    cache = out / "probe"
    if not (cache / "results.csv").exists():
        cmd = [sys.executable, "-m", "muq.probe", "--ckpt", ckpt, "--corpus", str(ev), "--tasks", ",".join(tasks), "--no-baselines",
               "--compare", f"random={random_ckpt(out, ckpt, seed)}", "--preset", "quick", "--overrides", "probes=mlp", "--cache", str(cache)]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode: sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    from muq.probe import PRIMARY, TASKS                  # each task's headline metric, as the probe's own tables use it
    rows = list(csv.DictReader(open(cache / "results.csv")))
    return [dict(task=r["task"], init="pretrained" if r["encoder"] == "muq" else "random", value=float(r["mean"]), metric=r["metric"])
            for r in rows if r["task"] in tasks and r["encoder"] in ("muq", "random") and r["layer"] == "weighted" and r["probe"] == "mlp"
            and r["metric"] == PRIMARY[TASKS[r["task"]][2]]]

def table(res, tasks, anchor=()) -> str:
    "Start x mode: the test metric x100, mean ± std over seeds, per task."
    meta = {t: next(r for r in res if r["task"] == t) for t in tasks}
    head = "| start | mode | " + " | ".join(f"{t} ({meta[t]['metric']}, {meta[t]['n_test']} test clips)" for t in tasks) + " |"
    lines = [head, "|" + "---|" * (len(tasks) + 2)]
    for init in ("pretrained", "random"):
        for mode in MODES:
            cell = lambda t: (lambda v: f"{np.mean(v):.1f} ± {np.std(v):.1f}" if v else "–")(
                [100 * r["value"] for r in res if (r["init"], r["mode"], r["task"]) == (init, mode, t)])
            lines.append(f"| {init} | {mode} | " + " | ".join(cell(t) for t in tasks) + " |")
    for init in ("pretrained", "random"):
        if any(r["init"] == init for r in anchor):
            lines.append(f"| {init} | probe (chapter 8, one fit) | " + " | ".join(next((f"{100 * r['value']:.1f}" for r in anchor if (r["init"], r["task"]) == (init, t)), "–")
                                                                  for t in tasks) + " |")
    return "\n".join(lines)

def gains(res, tasks) -> str:
    "Differences of means x100 ± the combined std over seeds; called only beyond it (the ablations' convention)."
    v = lambda init, mode, t: [100 * r["value"] for r in res if (r["init"], r["mode"], r["task"]) == (init, mode, t)]
    cell = report.seed_call
    rows = [(f"{init}: {m} vs freeze", lambda t, init=init, m=m: cell(v(init, m, t), v(init, "freeze", t)))
            for init in ("pretrained", "random") for m in ("lora", "full")]
    rows += [(f"{m}: pretrained vs random", lambda t, m=m: cell(v("pretrained", m, t), v("random", m, t))) for m in MODES]
    lines = ["| comparison | " + " | ".join(tasks) + " |", "|" + "---|" * (len(tasks) + 1)]
    return "\n".join(lines + [f"| {name} | " + " | ".join(f(t) for t in tasks) + " |" for name, f in rows])

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3); ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--tasks", default="key,instrument,style"); ap.add_argument("--ckpt", default=str(ROOT / "runs" / "demo" / "muq" / "final"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "finetune_study")); ap.add_argument("--quick", action="store_true")
    ap.add_argument("--results", default="")
    a = ap.parse_args(); t0 = time.time(); tasks = a.tasks.split(",")
    if a.quick: a.seeds, a.steps, tasks = 1, 4, ["instrument"]
    ev = builtin_corpus("eval", verbose=False, **(dict(minutes=5, notes=20) if a.quick else {}))
    out = Path(a.out); rows = []
    for task in tasks:
        for init in ("pretrained", "random"):
            for mode in MODES:
                for seed in range(a.seeds):
                    r = run(out, task, mode, init, seed, a, ev, a.ckpt); iv = r["interval"]
                    rows.append(dict(task=task, init=init, mode=mode, seed=seed, value=iv["value"], lo=iv["lo"], hi=iv["hi"],
                                     metric=iv["metric"], n_test=r["n_test"], wall_s=wall_seconds(out / task / f"{init}_{mode}" / f"seed{seed}"),
                                     git=r["provenance"]["git"]))          # the code that trained and tested this run
                    if mode == "full":                  # the only mode whose encoder weights change
                        d = out / task / f"{init}_{mode}" / f"seed{seed}" / "finetune"
                        rows[-1]["moved"] = moved(Path(a.ckpt) if init == "pretrained" else random_ckpt(out, a.ckpt, seed), d / "best")
                print(f"[finetune_study] {task} {init} {mode}: {np.mean([x['value'] for x in rows[-a.seeds:]]):.3f} ({time.time() - t0:.0f} s)", flush=True)
    anchor = [] if a.quick else probe_anchor(out, a.ckpt, ev, tasks)
    doc = dict(rows=rows, probe=anchor, seeds=a.seeds, steps=a.steps, tasks=tasks, corpus=ev.name,
               markdown={"table": table(rows, tasks, anchor), "gains": gains(rows, tasks)},
               minutes_this_invocation=round((time.time() - t0) / 60, 1), wall_minutes_of_runs=round(sum(r["wall_s"] for r in rows) / 60, 1),
               provenance=provenance(manifests=[ev / f"clips_{s}.jsonl" for s in ("train", "valid", "test")],
                                                                               checkpoints=[a.ckpt] + [random_ckpt(out, a.ckpt, s) for s in range(a.seeds)],
                                                                               seeds=list(range(a.seeds))))
    res = Path(a.results) if a.results else (out / "finetune.json" if a.quick else ROOT / "nbs" / "results" / "finetune.json")
    res.parent.mkdir(parents=True, exist_ok=True); atomic_write_text(report.results_json(doc) + "\n", res)
    print(doc["markdown"].get("table", ""))
    print(f"[finetune_study] {len(rows)} runs ({doc['wall_minutes_of_runs']} min of training and testing in all, "
          f"{doc['minutes_this_invocation']} min in this invocation; finished runs are reused) -> {res}")
