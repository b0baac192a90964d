"""The target ablations of MuQ at toy scale, end to end, from a fresh clone (`make ablations`):

  1. targets: random projection (8 frozen quantisers) vs a single VQ (1 codebook of 8x the codes) vs Mel-RVQ with 1, 2, 4, 8 codebooks
  2. iteration: Mel-RVQ iteration 1 vs iteration 2 on RVQ codes of iteration 1's own latents (layer chosen by the
     per-layer probe), from scratch and initialised from iteration 1

Every condition trains MuQ-tiny with the same budget on the same data, for 2 seeds, and is probed with chapter 8's
linear probe on the evaluation corpus (key, instrument, tags, pitch, note instrument; one 5 s window per clip), beside
the same model with random weights. The budget is 2400 updates on the learning curve's 10-hour corpus (`make curve`):
at 150 updates a model has learned little more than the marginal of its targets, and the conditions cannot differ.
Training time: about 10 minutes per condition and seed on 2 CPU cores (`--conditions` picks a subset).
Re-running reuses every finished training, target store and probe, so an interrupted study resumes where it stopped.
Results: nbs/results/ablations.json (the README's and chapter 7b's tables: scores, each condition against random
weights and against Mel-RVQ-8, each run's masked CE against its targets' unigram floor), runs/ablations/results.json
and results.md. `--quick`: a smoke run of the same pipeline (a few minutes), written under --out only.
"""
import argparse, csv, json, subprocess, sys, time
from pathlib import Path
import numpy as np, torch
from muq.core import atomic_write_text, provenance
from muq.corpus import builtin_corpus
from muq.model import MuQ
from muq.probe import PRIMARY, TASKS
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report
from curve import training_row                                  # masked CE and accuracy against the targets' unigram floor

ROOT = Path(__file__).resolve().parents[1]; PY = sys.executable
REUSED = []                                                     # steps an earlier run had finished

def sh(*args):
    r = subprocess.run([PY, "-m", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    if r.returncode: sys.exit(f"failed: {' '.join(map(str, args))}\n{r.stderr[-3000:]}")
    if "already complete" in r.stdout: REUSED.append(args)
    return r.stdout

def probe(ck, cache, *args):
    "chapter 8's probe of checkpoint `ck` into `cache`, skipped when its results are newer than the checkpoint's weights."
    done, w = Path(cache) / "results.csv", Path(ck) / "model.safetensors"
    if done.exists() and w.exists() and done.stat().st_mtime > w.stat().st_mtime:
        print(f"[ablations] {cache}: probed already", flush=True); REUSED.append(cache)
    else: sh("muq.probe", "--ckpt", ck, "--cache", cache, "--no-baselines", *args)
    return done

def conditions(K):
    "name -> (targets, n_codebooks, codebook_size) of the first question."
    return {"random_projection": ("random_projection", 8, K), "single_vq": ("mel_rvq", 1, 8 * K),
            **{f"mel_rvq_{k}": ("mel_rvq", k, K) for k in (1, 2, 4, 8)}}

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true"); ap.add_argument("--seeds", type=int, default=2); ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--out", default="", help="results folder (default runs/ablations, runs/ablations_quick with --quick)")
    ap.add_argument("--conditions", default="", help="comma-separated subset of the target conditions (default: all)")
    ap.add_argument("--minutes", type=float, default=600, help="the pretraining corpus (the learning curve's 10 hours by default)")
    ap.add_argument("--results", default="", help="the committed results file (default nbs/results/ablations.json; none with --quick)")
    a = ap.parse_args()
    if a.quick: a.seeds, a.steps, a.minutes = 1, 4, 2
    a.out = a.out or ("runs/ablations_quick" if a.quick else "runs/ablations")
    out, t0, K = ROOT / a.out, time.time(), 256
    data = builtin_corpus("pretrain", verbose=False, minutes=a.minutes)            # one folder per configuration
    a.eval = str(builtin_corpus("eval", verbose=False, **(dict(minutes=5, notes=150) if a.quick else {})))
    train = f"{data}/clips_train.jsonl"
    # style and tempo are left out of the study to keep it inside its budget
    probe_set = ["--corpus", a.eval, "--tasks", "key,instrument,pitch" if a.quick else "key,instrument,tags,pitch,note_instrument", "--preset", "quick" if a.quick else "default",
                 "per_layer=true", "probes=linear", "seeds=1", "norms=zscore,whiten", "max_windows=1"]   # one 5 s window per clip
    rvq_steps = 5 if a.quick else 150
    models = {}                                                 # condition -> checkpoints (one per seed)
    todo = {n: c for n, c in conditions(K).items() if not a.conditions or n in a.conditions.split(',') or n == 'mel_rvq_8'}   # iteration 1 is always needed
    for name, (targets, k, size) in todo.items():
        run = out / name; common = ["--preset", "tiny", "--data", train, f"model.rvq.n_codebooks={k}", f"model.rvq.codebook_size={size}", "data.num_workers=1"]
        if targets == "mel_rvq" and not (run / "rvq" / "rvq.safetensors").exists():
            sh("muq.train", "--stage", "rvq", *common, "--run_dir", run, f"optim.steps={rvq_steps}", *(["data.batch_size=8"] if a.quick else []))
        for s in range(a.seeds):
            sr = out / name / f"seed{s}"
            sh("muq.train", "--stage", "muq", *common, "--run_dir", sr, f"seed={s}", f"optim.steps={a.steps}", f"model.targets={targets}",
               f"rvq_ckpt={run / 'rvq' / 'rvq.safetensors'}")
            models.setdefault(name, []).append(sr / "muq" / "final")
        print(f"[ablations] {name}: {a.seeds} seeds trained, {time.time() - t0:.0f} s", flush=True)
    # the layer for iteration 2: the best per-layer linear probe of iteration 1 (seed 0) on the *validation* split,
    # each task's primary metric averaged over tasks (the test split is kept for the table)
    it1 = models["mel_rvq_8"]
    prim = lambda r: r["metric"] == PRIMARY[TASKS[r["task"]][2]]
    by_layer = {}
    for r in csv.DictReader(open(probe(it1[0], out / "probe_it1", *probe_set))):
        if r["encoder"] == "muq" and r["probe"] == "linear" and r["layer"] != "weighted" and prim(r):
            by_layer.setdefault(int(r["layer"]), []).append(float(r["valid"]))
    layer_scores = {l: float(np.mean(v)) for l, v in by_layer.items()}; layer = max(layer_scores, key=layer_scores.get)
    print(f"[ablations] iteration 2 quantises layer {layer} (per-layer linear probe, validation means: "
          f"{ {l: round(v, 3) for l, v in layer_scores.items()} })", flush=True)
    for s in range(a.seeds):
        store = out / "targets" / f"seed{s}_layer{layer}"
        sh("muq.targets", "--ckpt", it1[s], "--layer", layer, "--data", train, "--out", store, "--n_codebooks", 8, "--codebook_size", K,
           "--window", 10, "--fit_steps", 20 if a.quick else 500)
        for name, init in (("iter2_scratch", []), ("iter2_from_iter1", [f"init_ckpt={it1[s]}"])):
            sr = out / name / f"seed{s}"; old = sr / "muq" / "config.json"
            was = json.loads(old.read_text())["data"]["targets_dir"] if old.exists() else str(store)
            if Path(was) != store: sys.exit(f"{sr}: trained on {was}, not on {store} (iteration 1's layer choice changed); delete {out / name} to train it again")
            sh("muq.train", "--stage", "muq", "--preset", "tiny", "--data", train, "--run_dir", sr, f"seed={s}", f"optim.steps={a.steps}",
               "model.targets=precomputed", f"data.targets_dir={store}", f"model.rvq.codebook_size={K}", "data.num_workers=1", *init)
            models.setdefault(name, []).append(sr / "muq" / "final")
    print(f"[ablations] iteration 2 trained, {time.time() - t0:.0f} s", flush=True)
    # the reference every condition has to beat: the same model with random weights, one draw per seed
    for s in range(a.seeds):
        d = out / "random_init" / f"seed{s}" / "muq" / "final"
        if not (d / "model.safetensors").exists():
            cfg = MuQ.from_pretrained(it1[s]).config; torch.manual_seed(s); MuQ(cfg).save_pretrained(d)
        models.setdefault("random_init", []).append(d)
    results = {}
    for name, cks in models.items():
        for s, ck in enumerate(cks):
            for r in csv.DictReader(open(probe(ck, ck.parent / "probe", *probe_set, "per_layer=false"))):  # the table reads the weighted layer only
                if r["probe"] == "linear" and r["layer"] == "weighted" and prim(r):
                    results.setdefault(name, {}).setdefault(r["task"], []).append(float(r["mean"]))
        print(f"[ablations] {name} probed, {time.time() - t0:.0f} s", flush=True)
    rows = [dict(condition=n, seed=s, task=t, score=100 * v[s]) for n, by_task in results.items() for t, v in by_task.items() for s in range(len(v))]
    training = [training_row(ck, n, a.steps, s) for n, cks in models.items() if n != "random_init" for s, ck in enumerate(cks)]
    summary = dict(seeds=a.seeds, steps=a.steps, pretrain_corpus=Path(data).name, eval_corpus=Path(a.eval).name, layer=layer,
                   layer_scores=layer_scores, minutes=round((time.time() - t0) / 60, 1), reused=len(REUSED), results=results, rows=rows,
                   training=training,
                   provenance=provenance(manifests=[train] + [f"{a.eval}/{s}_test.jsonl" for s in ("clips", "notes")],
                                         checkpoints=[c for cs in models.values() for c in cs], seeds=list(range(a.seeds))))
    summary["markdown"] = {"table": report.ablation_table(summary), "vs_random_init": report.ablation_versus(summary, "random_init"),
                           "vs_mel_rvq_8": report.ablation_versus(summary, "mel_rvq_8"), "training": report.training_table(summary)}
    text = report.results_json(summary)
    out.mkdir(parents=True, exist_ok=True); atomic_write_text(text, out / "results.json")
    res = Path(a.results) if a.results else None if a.quick else ROOT / "nbs" / "results" / "ablations.json"
    if res: atomic_write_text(text + "\n", res)
    md = [f"Weighted-layer linear probe (x100, mean ± std over {a.seeds} pretraining seeds; MuQ-tiny, {a.steps} updates each; "
          f"iteration 2 quantises layer {layer}):", "", summary["markdown"]["table"], "", summary["markdown"]["vs_random_init"], "",
          summary["markdown"]["vs_mel_rvq_8"], "", "Each run's masked cross-entropy against the unigram entropy of its targets (seed 0):", "",
          summary["markdown"]["training"]]
    atomic_write_text("\n".join(md) + "\n", out / "results.md"); print("\n".join(md))
    print(f"[ablations] {summary['minutes']} min" + (f" ({len(REUSED)} trainings and probes reused from an earlier run)" if REUSED else "")
          + f" -> {out}/results.md" + (f", {res}" if res else ""))

if __name__ == "__main__":
    main()
