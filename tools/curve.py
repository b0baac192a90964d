"""The learning curve of MuQ on the built-in corpus (`make curve`): where pretraining starts to beat random weights.

  1. a 10-hour pretraining corpus (pool 'pretrain') and the full evaluation corpus (pool 'eval', disjoint by work)
  2. one Mel-RVQ (the tiny recipe) on the pretraining corpus
  3. MuQ-tiny trained to each budget of a geometric grid of updates (each its own run, warmup and linear decay to
     its budget, as the released recipe at that length), on Mel-RVQ targets and on random-projection targets,
     with two pretraining seeds at the cheap budgets
  4. every checkpoint probed with chapter 8's quick protocol (weighted-layer MLP and linear probes, and a linear
     probe per layer) beside the same architecture with random weights (two draws: the 0-update point), the raw-mel,
     chroma and tempogram statistics, the label ceiling, and bags of the Mel-RVQ and random-projection codes
  5. paired-bootstrap verdicts at every budget, label efficiency at the largest budget, the training diagnostics
     (masked cross-entropy per codebook against the unigram floor of its targets), and the provenance of it all

Everything resumes: trainings continue from their run folders and finished probes are reused, so the study can be
stopped at any point and started again with the same command (at low priority: `nice -n 10 make curve`).
Output: nbs/results/curve.json (committed), from which the README table and the chapters' figures are made.
`--quick`: the same pipeline at toy sizes (what the tests run; its numbers mean nothing).
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import numpy as np, torch
from muq.core import atomic_write_text, provenance, weights_digest, file_digest
from muq.corpus import builtin_corpus
from muq.data import read_manifest
from muq.model import MuQ
from muq import probe as P

ROOT = Path(__file__).resolve().parents[1]; PY = sys.executable
FULL = dict(budgets=(150, 600, 2400, 9600, 38400), seeds_upto=2400, rp_upto=9600, pretrain=dict(minutes=600), eval={},
            rvq_steps=150, tasks=tuple(P.TASKS), layer_tasks=('key', 'pitch'), per_class=(5, 20, 0), draws=5)
QUICK = dict(budgets=(2, 4), seeds_upto=2, rp_upto=4, pretrain=dict(minutes=2), eval=dict(minutes=5, notes=150),
             rvq_steps=5, tasks=('key', 'instrument'), layer_tasks=('key',), per_class=(2, 0), draws=2)
LAYER_SETTINGS = ['per_layer=true', 'probes=linear']   # the key study: a linear probe on every layer, for the tasks that lose

def log(msg): print(f"[curve] {msg}", flush=True)

def sh(*args):
    "A training (or corpus) command in a process of its own; its output goes to the study's log."
    r = subprocess.run([PY, "-m", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    if r.returncode: sys.exit(f"failed: {' '.join(map(str, args))}\n{r.stderr[-3000:]}")
    return r.stdout

def plan(S) -> list[tuple]:
    "(condition, updates, seed) of every training, cheap budgets first (so partial results come early)."
    runs = []
    for b in S['budgets']:
        for seed in ((0, 1) if b <= S['seeds_upto'] else (0,)): runs.append(('mel_rvq', b, seed))
        if b <= S['rp_upto']: runs.append(('random_projection', b, 0))
    return runs

def train(out, train_manifest, S, cond, updates, seed) -> Path:
    "Train (or resume, or reuse) MuQ-tiny for `updates` on the condition's targets; the final checkpoint's folder."
    run = out / cond / f"u{updates}" / f"seed{seed}"
    if not (run / "muq" / "summary.json").exists():
        t0 = time.time()
        sh("muq.train", "--stage", "muq", "--preset", "tiny", "--data", train_manifest, "--run_dir", run, f"seed={seed}",
           f"optim.steps={updates}", f"model.targets={cond}", f"rvq_ckpt={out / 'rvq' / 'rvq' / 'rvq.safetensors'}",
           "data.num_workers=1", f"ckpt_every={min(1000, max(50, updates // 8))}", f"diag_every={max(50, updates // 4)}")
        log(f"{cond} {updates} updates seed {seed}: trained in {time.time() - t0:.0f} s")
    return run / "muq" / "final"

def save_outs(outs: dict) -> list:
    "The weighted-MLP test outputs of a probe run, as JSON (for the paired bootstrap later)."
    return [dict(encoder=e, task=t, kind=k, y=np.asarray(y).tolist(), outs=[np.asarray(o).tolist() for o in os_], classes=c)
            for (e, t), (k, y, os_, c) in outs.items()]

def load_outs(rows: list) -> dict:
    return {(r['encoder'], r['task']): (r['kind'], np.asarray(r['y']), [np.asarray(o) for o in r['outs']], r['classes']) for r in rows}

def probed(path: Path, encoders: dict, eval_dir, S, cfg, cache, key: str) -> dict:
    "Probe results of `encoders` (rows and outputs; per-layer rows for S['layer_tasks']), from `path` when computed for the same `key`."
    if path.exists():
        old = json.loads(path.read_text())
        if old.get('key') == key: return old
    rows, outs = P.probe(encoders, eval_dir, list(S['tasks']), cfg, cache)
    deep = {k: v for k, v in encoders.items() if v[0] != 'label'}
    lrows, _ = P.probe(deep, eval_dir, list(S['layer_tasks']), cfg.override(LAYER_SETTINGS), cache)
    res = dict(key=key, rows=rows + [r for r in lrows if r['layer'] != 'weighted'], outs=save_outs(outs)); atomic_write_text(json.dumps(res), path)
    return res

def muq_encoder(m: MuQ):
    return lambda items, **kw: P.muq_features(m, items, **kw)

def code_encoder(m: MuQ):
    "Bags of target codes: per codebook, the histogram of the clip's codes (n_items, 1, k * codebook_size)."
    K, k = m.config.codebook_size, m.config.n_codebooks
    @torch.no_grad()
    def f(items, window=5.0, max_windows=1, batch_size=8, **_):
        n, batches = P._windows(items, window, max_windows, batch_size, 'codes')
        feats, count = torch.zeros(n, 1, k * K), torch.zeros(n)
        for b in batches:
            if not len(b['wav']): continue
            codes = m.tokenize(b['wav'])                                              # (b, k, t)
            t = (b['length'] // (b['wav'].shape[1] // codes.shape[-1])).clamp(max=codes.shape[-1])
            h = torch.zeros(len(codes), k, K)
            for i in range(len(codes)): h[i].scatter_add_(1, codes[i, :, : t[i]], torch.ones(k, int(t[i])))
            feats.index_add_(0, b['idx'], (h / t.clamp_min(1)[:, None, None]).reshape(len(codes), 1, -1))
            count.index_add_(0, b['idx'], torch.ones(len(codes)))
        return feats / count.clamp_min(1)[:, None, None]
    return f

def label_efficiency(enc_names, eval_dir, S, cfg, cache, keys) -> list:
    "Linear-probe test scores with `n` labelled examples per class (0 = all), over random draws of the training set."
    rows = []
    for task in [t for t in S['tasks'] if P.TASKS[t][2] in ('multiclass', 'key')]:
        items, y, kind, n_out, classes = P.task_data(eval_dir, task)
        for name in enc_names:
            X = {s: P.cached_features(name, None, items[s], keys[(name, task, s)], cache) for s in items}
            Xn = P.normalize_features(X, 'zscore')
            for n in S['per_class']:
                for d in range(S['draws'] if n else 1):
                    rng = np.random.default_rng([d, n]); pick = []
                    for c in np.unique(y['train']):
                        idx = np.flatnonzero(y['train'] == c); pick += list(rng.permutation(idx)[: n or len(idx)])
                    pick = np.sort(pick)
                    Xs = {**Xn, 'train': Xn['train'][pick]}; ys = {**y, 'train': y['train'][pick]}
                    r = P.fit_probe(Xs, ys, kind, n_out, hidden=0, classes=classes, seed=d, l2s=cfg.l2s)
                    rows.append(dict(encoder=name, task=task, per_class=n, draw=d, n_train=len(pick), score=100 * r[P.PRIMARY[kind]]))
        log(f"label efficiency: {task} done")
    return rows

def feature_keys(encoders, eval_dir, S, cfg):
    "The feature-cache key of every (encoder, task, split), as muq.probe computes it."
    keys = {}
    for task in S['tasks']:
        items = P.task_data(eval_dir, task)[0]; pool = P.TASKS[task][3]
        for name, (fn, key) in encoders.items():
            for s in items:
                keys[(name, task, s)] = P.feature_key(key, items[s], cfg.window, cfg.max_windows, pool)
    return keys

def training_row(run_final: Path, cond, updates, seed) -> dict:
    "The last logged masked CE and accuracy per codebook, and the unigram floor of the run's targets."
    run = run_final.parent; last = json.loads((run / 'summary.json').read_text()).get('last_log') or {}
    floor = json.loads((run / 'data_stats.json').read_text()) if (run / 'data_stats.json').exists() else {}
    per = lambda pre: [v for k, v in sorted(((k, v) for k, v in {**last, **floor}.items() if k.startswith(pre)), key=lambda kv: int(kv[0].rsplit('_', 1)[1]))]
    return dict(condition=cond, updates=updates, seed=seed, ce=last.get('loss'), acc=last.get('acc'),
                ce_per_codebook=per('ce_per_codebook_'), acc_per_codebook=per('acc_per_codebook_'),
                unigram_entropy=per('unigram_entropy_'), majority_acc=per('majority_acc_'))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="toy sizes, a few minutes: the pipeline, not the numbers")
    ap.add_argument("--out", default="", help="study folder (default runs/curve, runs/curve_quick with --quick)")
    ap.add_argument("--results", default="", help="the results file (default nbs/results/curve.json; with --quick: <out>/curve.json)")
    ap.add_argument("--max_updates", type=int, default=0, help="train and probe only the budgets up to this many updates (0 = all)")
    a = ap.parse_args()
    S = QUICK if a.quick else FULL; t0 = time.time()
    out = ROOT / (a.out or ("runs/curve_quick" if a.quick else "runs/curve")); out.mkdir(parents=True, exist_ok=True)
    results = Path(a.results) if a.results else (out / "curve.json" if a.quick else ROOT / "nbs" / "results" / "curve.json")
    pre = builtin_corpus('pretrain', verbose=False, **S['pretrain']); ev = builtin_corpus('eval', verbose=False, **S['eval'])
    train_manifest = pre / "clips_train.jsonl"; items = read_manifest(train_manifest)
    hours = sum(i['num_samples'] / i['sample_rate'] for i in items) / 3600
    log(f"pretraining corpus {pre.name}: {len(items)} clips, {hours:.1f} h; evaluation corpus {ev.name}")
    if not (out / "rvq" / "rvq" / "summary.json").exists():
        sh("muq.train", "--stage", "rvq", "--preset", "tiny", "--data", train_manifest, "--run_dir", out / "rvq",
           f"optim.steps={S['rvq_steps']}", *(["data.batch_size=8"] if a.quick else []))
    runs = [r for r in plan(S) if not a.max_updates or r[1] <= a.max_updates]
    finals = {r: train(out, train_manifest, S, *r) for r in runs}
    # probes: the baselines once, then every checkpoint against them
    cfg = P.ProbeConfig.preset('quick'); cache = out / "features"
    arch = MuQ.from_pretrained(next(iter(finals.values()))).config
    rp = MuQ.from_pretrained(next(f for (c, *_), f in finals.items() if c == 'random_projection'))
    base = {}
    for s in (0, 1):
        torch.manual_seed(s); base[f'random_init_seed{s}'] = (muq_encoder(MuQ(arch).eval()), file_digest(extra=f'random{s}' + json.dumps(arch.to_dict())))
    mrvq = MuQ.from_pretrained(finals[runs[0]])
    base.update({'mel_stats': (P.mel_features, 'mel'), 'chroma_stats': (P.chroma_features, 'chroma'), 'tempogram': (P.tempo_features, 'tempogram'),
                 'label (ceiling)': ('label', 'label'),
                 'mel_rvq_codes': (code_encoder(mrvq), 'codes' + weights_digest(finals[runs[0]])),
                 'random_projection_codes': (code_encoder(rp), 'codes' + weights_digest(next(f for (c, *_), f in finals.items() if c == 'random_projection')))})
    bres = probed(out / "probe_baselines.json", base, ev, S, cfg, cache, key=json.dumps(sorted((k, v[1]) for k, v in base.items())))
    log(f"baselines probed ({time.time() - t0:.0f} s)")
    res = {}
    for (cond, u, seed), f in finals.items():
        m = MuQ.from_pretrained(f); key = weights_digest(f)
        res[(cond, u, seed)] = probed(f.parent / "curve_probe.json", {'muq': (muq_encoder(m), key)}, ev, S, cfg, cache, key)
    log(f"{len(res)} checkpoints probed ({time.time() - t0:.0f} s)")
    # the table: one row per (condition, updates, seed, task) for the weighted-layer MLP probe (the verdicts' probe),
    # the linear probes beside it, and the per-layer linear probes
    rows, layers = [], []
    aud = lambda u: None if u is None else round(u * 4 * 4.0 / 3600, 3)    # tiny recipe: 4 crops of 4 s per update
    def add(cond, u, seed, rs, enc):
        for r in rs:
            if r['encoder'] != enc or r['metric'] != P.PRIMARY[P.TASKS[r['task']][2]]: continue
            row = dict(condition=cond, updates=u, audio_hours=aud(u), seed=seed, task=r['task'], probe=r['probe'], layer=r['layer'],
                       score=100 * r['mean'], valid=100 * r['valid'], n_train=r['n_train'], n_valid=r['n_valid'], n_test=r['n_test'])
            (rows if r['layer'] == 'weighted' or enc in ('mel_stats', 'chroma_stats', 'tempogram', 'label (ceiling)', 'mel_rvq_codes', 'random_projection_codes') else layers).append(row)
    for s in (0, 1): add('random_init', 0, s, bres['rows'], f'random_init_seed{s}')
    for b in ('mel_stats', 'chroma_stats', 'tempogram', 'label (ceiling)', 'mel_rvq_codes', 'random_projection_codes'): add(b, None, 0, bres['rows'], b)
    for (cond, u, seed), r in res.items(): add(cond, u, seed, r['rows'], 'muq')
    # verdicts: seed 0 of each condition at each budget against random weights (seed 0) and against the raw mel
    outs = load_outs(bres['outs']); verdicts = []
    for (cond, u, seed), r in res.items():
        if seed: continue
        o = {**outs, **{(f'{cond}@{u}', t): v for (e, t), v in load_outs(r['outs']).items()}}
        for ref, name in (('random_init_seed0', 'random_init'), ('mel_stats', 'mel_stats')):
            for t in S['tasks']:
                if (f'{cond}@{u}', t) in o and (ref, t) in o:
                    v = P.compare(o, f'{cond}@{u}', ref, t, cfg.bootstrap)
                    cmp = f"{'muq' if cond == 'mel_rvq' else cond}_vs_{name}"
                    verdicts.append(dict(updates=u, comparison=cmp, task=t, diff=100 * v['diff'], lo=100 * v['lo'], hi=100 * v['hi'],
                                         verdict=v['verdict'], n_test=v['n_test']))
    # label efficiency at the largest budget trained, pretrained (seed 0) against random weights (seed 0)
    top = max(u for (c, u, s) in finals if c == 'mel_rvq'); fbig = finals[('mel_rvq', top, 0)]
    encs = {'muq': (None, weights_digest(fbig)), 'random_init_seed0': base['random_init_seed0']}
    le = label_efficiency(list(encs), ev, S, cfg, cache, feature_keys(encs, ev, S, cfg))
    for r in le: r['updates'] = top if r['encoder'] == 'muq' else 0
    training = [training_row(f, *r) for r, f in finals.items()]
    manifests = [train_manifest] + sorted(ev.glob('*_*.jsonl'))
    doc = dict(study="MuQ-tiny learning curve on the built-in corpus", pretrain_corpus=dict(folder=pre.name, clips=len(items), hours=round(hours, 2)),
               eval_corpus=ev.name, recipe="tiny preset (4 crops x 4 s per update, lr 1e-3, 20 warmup updates, linear decay to the budget)",
               probe=dict(preset='quick', layer_settings=LAYER_SETTINGS, layer_tasks=S['layer_tasks'], verdict_probe='mlp, weighted layers',
                          bootstrap=cfg.bootstrap),
               rows=rows, layers=layers, verdicts=verdicts, label_efficiency=le, training=training,
               minutes=round((time.time() - t0) / 60, 1),
               provenance=provenance(manifests=manifests, checkpoints=list(finals.values()), seeds=sorted({s for *_, s in finals}),
                                     rvq=file_digest(out / 'rvq' / 'rvq' / 'rvq.safetensors')))
    results.parent.mkdir(parents=True, exist_ok=True); atomic_write_text(json.dumps(doc, indent=1) + "\n", results)
    log(f"{len(rows)} rows, {len(verdicts)} verdicts, {len(le)} label-efficiency rows in {doc['minutes']} min -> {results}")

if __name__ == "__main__":
    main()
