"""Does adapting the encoder help, and does it help more from pretrained weights? (nb 08b)

For each task of the built-in evaluation corpus (key, instrument family, style), fine-tune MuQ-tiny in the three
modes — a head on frozen features, LoRA adapters, the whole encoder — starting from the demo's pretrained MuQ and
from random weights of the same shape, for several seeds; select each run on its validation metric and score it on
the test split. Resumable (finished runs are reused). Results: nbs/results/finetune.json (tables in its `markdown`).

    .venv/bin/python tools/finetune_study.py [--seeds 3] [--steps 150] [--tasks key,instrument,style] [--quick]
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import numpy as np
from muq.core import atomic_write_text, provenance
from muq.corpus import builtin_corpus

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {'key': 'key', 'instrument': 'family', 'style': 'collection'}
MODES = ('freeze', 'lora', 'full')

def run(out, task, mode, init, seed, a, ev, ckpt) -> dict:
    d = out / task / f"{init}_{mode}" / f"seed{seed}"; rep = d / "finetune" / "report.json"
    if not rep.exists():
        start = ckpt if init == "pretrained" else str(random_ckpt(out, ckpt, seed))
        cmd = [sys.executable, "-m", "muq.finetune", "--ckpt", start, "--data", str(ev / "clips_train.jsonl"),
               "--valid", str(ev / "clips_valid.jsonl"), "--test", str(ev / "clips_test.jsonl"), "--label", FIELDS[task], "--mode", mode,
               "--run_dir", str(d), f"seed={seed}", f"optim.steps={a.steps}", f"eval_every={max(10, a.steps // 3)}", "data.num_workers=1",
               "data.crop_seconds=5.0", "eval_window=10.0"]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode: sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return json.loads(rep.read_text())

def random_ckpt(out: Path, ckpt: str, seed: int) -> Path:
    "The pretrained checkpoint's architecture with random weights (drawn with `seed`), saved once."
    import torch
    from muq import MuQ
    p = out / "random_init" / f"seed{seed}"
    if not (p / "model.safetensors").exists():
        cfg = MuQ.from_pretrained(ckpt).config; torch.manual_seed(seed); MuQ(cfg).save_pretrained(p)
    return p

def table(res, tasks) -> str:
    "Start x mode: the test metric x100, mean ± std over seeds, per task."
    meta = {t: next(r for r in res if r["task"] == t) for t in tasks}
    head = "| start | mode | " + " | ".join(f"{t} ({meta[t]['metric']}, {meta[t]['n_test']} test clips)" for t in tasks) + " |"
    lines = [head, "|" + "---|" * (len(tasks) + 2)]
    for init in ("pretrained", "random"):
        for mode in MODES:
            cell = lambda t: (lambda v: f"{np.mean(v):.1f} ± {np.std(v):.1f}" if v else "–")(
                [100 * r["value"] for r in res if (r["init"], r["mode"], r["task"]) == (init, mode, t)])
            lines.append(f"| {init} | {mode} | " + " | ".join(cell(t) for t in tasks) + " |")
    return "\n".join(lines)

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
                    rows.append(dict(task=task, init=init, mode=mode, seed=seed, value=iv["value"], lo=iv["lo"], hi=iv["hi"], metric=iv["metric"], n_test=r["n_test"]))
                print(f"[finetune_study] {task} {init} {mode}: {np.mean([x['value'] for x in rows[-a.seeds:]]):.3f} ({time.time() - t0:.0f} s)", flush=True)
    doc = dict(rows=rows, seeds=a.seeds, steps=a.steps, tasks=tasks, corpus=ev.name, markdown={"table": table(rows, tasks)},
               minutes=round((time.time() - t0) / 60, 1), provenance=provenance(manifests=[ev / f"clips_{s}.jsonl" for s in ("train", "valid", "test")],
                                                                               checkpoints=[a.ckpt], seeds=list(range(a.seeds))))
    res = Path(a.results) if a.results else (out / "finetune.json" if a.quick else ROOT / "nbs" / "results" / "finetune.json")
    res.parent.mkdir(parents=True, exist_ok=True); atomic_write_text(json.dumps(doc, indent=1) + "\n", res)
    print(doc["markdown"].get("table", "")); print(f"[finetune_study] {len(rows)} runs in {doc['minutes']} min -> {res}")
