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
`--recipe optim.lr=3.3e-4`: the whole curve with the recipe changed (every MuQ training gets the settings; the
tokenizer does not), in a study folder and results file of its own (runs/curve_<recipe>, nbs/results/curve_<recipe>.json).
"""
import argparse, json, re, subprocess, sys, time
from pathlib import Path
import numpy as np, torch
from muq.core import atomic_write_text, provenance, weights_digest, file_digest
from muq.corpus import builtin_corpus
from muq.data import read_manifest
from muq.model import MuQ
from muq import probe as P
from muq import frames as FR
sys.path.insert(0, str(Path(__file__).resolve().parent))
import report                                                   # the results file's text

ROOT = Path(__file__).resolve().parents[1]; PY = sys.executable
FULL = dict(budgets=(150, 600, 2400, 9600, 38400), seeds_upto=600, rp_upto=9600, pretrain=dict(minutes=600), eval={},
            rvq_steps=150, tasks=tuple(P.TASKS), layer_tasks=('key', 'pitch'), per_class=(5, 20, 0), draws=5,
            frame_tasks=FR.FRAME_TASKS)
QUICK = dict(budgets=(2, 4), seeds_upto=2, rp_upto=4, pretrain=dict(minutes=2), eval=dict(minutes=5, notes=150),
             rvq_steps=5, tasks=('key', 'instrument'), layer_tasks=('key',), per_class=(2, 0), draws=2, frame_tasks=('chord',))
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
           "data.num_workers=1", f"ckpt_every={min(1000, max(50, updates // 8))}", f"diag_every={max(50, updates // 4)}", *S['recipe'])
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
    rows, outs = P.probe(encoders, eval_dir, list(S['tasks']), cfg, cache_dir=cache)
    deep = {k: v for k, v in encoders.items() if v[0] != 'label'}
    lrows, _ = P.probe(deep, eval_dir, list(S['layer_tasks']), cfg.override(LAYER_SETTINGS), cache_dir=cache)
    res = dict(key=key, rows=rows + [r for r in lrows if r['layer'] != 'weighted'], outs=save_outs(outs)); atomic_write_text(json.dumps(res), path)
    return res

FRAME_STRIDE = 2          # the frame probes fit every other training frame (neighbours are near copies); every frame is scored
_FRAME_DATA = {}

def frame_data(eval_dir):
    "Clip items and frame labels (chapter 8c) of the evaluation corpus, once per process."
    if eval_dir not in _FRAME_DATA:
        items = {s: read_manifest(eval_dir / f'clips_{s}.jsonl') for s in ('train', 'valid', 'test')}
        _FRAME_DATA[eval_dir] = items, {s: FR.clip_labels(eval_dir, v) for s, v in items.items()}
    return _FRAME_DATA[eval_dir]

def frame_probed(path: Path, encoders: dict, eval_dir, tasks, key: str) -> dict:
    "Frame-task rows of `encoders` {name: items -> per-clip frame features}, with per-clip test scores; from `path` when computed for `key`."
    if path.exists():
        old = json.loads(path.read_text())
        if old.get('key') == key: return old
    items, labels = frame_data(eval_dir); T = len(labels['train'][0]['beat']); rows = []
    for name, fn in encoders.items():
        feats = {s: [f[:T] for f in fn(v)] for s, v in items.items()}
        for task in tasks:
            r = FR.fit_frame_probe(feats, labels, task, stride=FRAME_STRIDE)
            rows.append(dict(encoder=name, task=task, probe='linear', layer='weighted', score=100 * float(np.nanmean(r['test'])),
                             valid=100 * float(np.nanmean(r['valid'])), n_train=len(items['train']), n_valid=len(items['valid']),
                             n_test=len(items['test']), per_clip=[None if np.isnan(x) else float(x) for x in r['test']]))
    res = dict(key=key, rows=rows); atomic_write_text(json.dumps(res), path)
    return res

def frame_verdict(a: dict, b: dict, u, cmp) -> dict:
    "Paired bootstrap over test clips of two frame-task rows (x100)."
    arr = lambda r: np.array([np.nan if x is None else x for x in r['per_clip']], float)
    v = FR.paired_clips(arr(a), arr(b))
    return dict(updates=u, comparison=cmp, task=a['task'], diff=v['diff'], lo=v['lo'], hi=v['hi'], verdict=v['verdict'], n_test=v['n'])

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

def compare(new: dict, old: dict) -> tuple[int, int, float]:
    "Scores present in both runs: how many are equal (to 1e-6), how many there are, the largest difference."
    both = [k for k in new if k in old]
    return sum(abs(new[k] - old[k]) < 1e-6 for k in both), len(both), max([abs(new[k] - old[k]) for k in both] or [0.0])

def training_row(run_final: Path, cond, updates, seed) -> dict:
    "The last logged masked CE and accuracy per codebook, and the unigram floor of the run's targets."
    run = run_final.parent; last = json.loads((run / 'summary.json').read_text()).get('last_log') or {}
    floor = json.loads((run / 'data_stats.json').read_text()) if (run / 'data_stats.json').exists() else {}
    per = lambda pre: [v for k, v in sorted(((k, v) for k, v in {**last, **floor}.items() if k.startswith(pre)), key=lambda kv: int(kv[0].rsplit('_', 1)[1]))]
    one = lambda k: per(k + '_') or ([last[k]] if isinstance(last.get(k), (int, float)) else [])   # one codebook: no index
    return dict(condition=cond, updates=updates, seed=seed, ce=last.get('loss'), acc=last.get('acc'),
                ce_per_codebook=one('ce_per_codebook'), acc_per_codebook=one('acc_per_codebook'),
                unigram_entropy=per('unigram_entropy_'), majority_acc=per('majority_acc_'))

SWEEP = {                                           # the recipe's settings varied at one budget, each judged on the probe
    'precise_bn': 'precise_bn', 'lr_x1/3': ['optim.lr=3.3e-4'], 'lr_x3': ['optim.lr=3e-3'], 'mask_p0.4': ['model.mask_prob=0.4'],
    'mask_p0.8': ['model.mask_prob=0.8'], 'warmup_10pct': ['optim.warmup=240'], 'rvq_600_steps': 'rvq600'}
QUICK_SWEEP = {'lr_x3': ['optim.lr=3e-3'], 'precise_bn': 'precise_bn'}

@torch.no_grad()
def precise_bn(model: MuQ, items, batches: int = 32, batch_size: int = 8, seconds: float = 4.0) -> MuQ:
    "`model` with its BatchNorm statistics re-estimated on clean crops (Wu & Johnson 2021, 'precise BN'), everything else as trained."
    from muq.data import CropDataset, make_loader
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    model.eval()
    for m in bns: m.reset_running_stats(); m.momentum = None; m.train()          # a cumulative average over the batches below
    loader = make_loader(CropDataset(items, seconds, seed=123), batch_size, num_workers=0, persistent_workers=False, rank=0, world_size=1)
    for _, b in zip(range(batches), loader):
        if len(b['wav']): model.model.encode(b['wav'])
    for m in bns: m.momentum = 0.1
    return model.eval()

class Study:
    "The curve's trainings, probes and results file, rewritten after every point so a stopped study still reports what it has."
    def __init__(self, a):
        self.S = QUICK if a.quick else FULL; self.quick, self.t0 = a.quick, time.time()
        recipe = [x.strip() for x in a.recipe.split(',') if x.strip()]
        bad = [x for x in recipe if not re.fullmatch(r'[\w.]+=\S+', x)]
        if bad: sys.exit(f"--recipe {a.recipe!r}: {bad} not key=value (settings of muq.train, e.g. optim.lr=3.3e-4)")
        self.S = {**self.S, 'recipe': recipe}; tag = ('_' + re.sub(r'[^\w.-]+', '_', '_'.join(recipe))) if recipe else ''
        self.out = ROOT / (a.out or (f"runs/curve_quick{tag}" if a.quick else f"runs/curve{tag}")); self.out.mkdir(parents=True, exist_ok=True)
        self.results = Path(a.results) if a.results else (self.out / "curve.json" if a.quick else ROOT / "nbs" / "results" / f"curve{tag}.json")
        mark = self.out / "recipe.json"                           # a study folder holds the runs of one recipe only
        had = json.loads(mark.read_text()) if mark.exists() else [] if any(self.out.glob('*/u*/seed*/muq')) else recipe   # unmarked runs: the recipe's own
        if had != recipe: sys.exit(f"--recipe {a.recipe!r}: {self.out} holds the runs of recipe changes {had}; choose another --out")
        atomic_write_text(json.dumps(recipe) + "\n", mark)
        self.pre = builtin_corpus('pretrain', verbose=False, **self.S['pretrain']); self.ev = builtin_corpus('eval', verbose=False, **self.S['eval'])
        self.train_manifest = self.pre / "clips_train.jsonl"; self.items = read_manifest(self.train_manifest)
        self.hours = sum(i['num_samples'] / i['sample_rate'] for i in self.items) / 3600
        self.cfg = P.ProbeConfig.preset('quick'); self.cache = self.out / "features"
        self.finals, self.res, self.sweep, self.bres, self.base, self.fres, self.fbres = {}, {}, {}, None, {}, {}, None
        self.verdicts, self.keep = {}, bool(a.budgets)
        self.keep_sweep = bool(a.budgets or a.sweep)              # settings (and seeds) of the sweep not run this time stay
        self.old = json.loads(self.results.read_text()) if self.results.exists() else {}   # as it was before this run: what --budgets keeps
        log(f"pretraining corpus {self.pre.name}: {len(self.items)} clips of its train split, {self.hours:.1f} h; evaluation corpus {self.ev.name}")

    def rvq(self, name='rvq', steps=None) -> Path:
        run = self.out / name
        if not (run / "rvq" / "summary.json").exists():
            sh("muq.train", "--stage", "rvq", "--preset", "tiny", "--data", self.train_manifest, "--run_dir", run,
               f"optim.steps={steps or self.S['rvq_steps']}", *(["data.batch_size=8"] if self.quick else []))
        return run / "rvq" / "rvq.safetensors"

    def probe_baselines(self):
        "Random weights (two draws), raw mel, chroma, tempogram, the label ceiling, and bags of both kinds of target codes."
        f_m, f_r = self.finals[('mel_rvq', self.S['budgets'][0], 0)], self.finals.get(('random_projection', self.S['budgets'][0], 0))
        arch = MuQ.from_pretrained(f_m).config; rand = {}
        for s in (0, 1):
            torch.manual_seed(s); rand[s] = MuQ(arch).eval()
            self.base[f'random_init_seed{s}'] = (muq_encoder(rand[s]), file_digest(extra=f'random{s}' + json.dumps(arch.to_dict())))
        self.base.update({'mel_stats': (P.mel_features, 'mel'), 'chroma_stats': (P.chroma_features, 'chroma'), 'tempogram': (P.tempo_features, 'tempogram'),
                          'label (ceiling)': ('label', 'label'),
                          'mel_rvq_codes': (code_encoder(MuQ.from_pretrained(f_m)), 'codes' + weights_digest(f_m))})
        if f_r is not None: self.base['random_projection_codes'] = (code_encoder(MuQ.from_pretrained(f_r)), 'codes' + weights_digest(f_r))
        self.bres = probed(self.out / "probe_baselines.json", self.base, self.ev, self.S, self.cfg, self.cache,
                           key=json.dumps(sorted((k, v[1]) for k, v in self.base.items())))
        if self.S['frame_tasks']:                                 # random weights and the local raw mel on the frame tasks
            fenc = {f'random_init_seed{s}': (lambda m: lambda it: FR.muq_frame_features(m, it))(rand[s]) for s in (0, 1)}
            fenc['mel_stats'] = FR.mel_frame_features
            self.fbres = frame_probed(self.out / "frame_baselines.json", fenc, self.ev, self.S['frame_tasks'],
                                      key=json.dumps([self.base[f'random_init_seed{s}'][1] for s in (0, 1)] + ['mel_local', FRAME_STRIDE, list(self.S['frame_tasks'])]))
        log(f"baselines probed ({time.time() - self.t0:.0f} s)")

    def point(self, cond, u, seed):
        f = self.finals[(cond, u, seed)] = train(self.out, self.train_manifest, self.S, cond, u, seed)
        b0 = self.S['budgets'][0]
        if self.bres is None and ('mel_rvq', b0, 0) in self.finals and (('random_projection', b0, 0) in self.finals or self.S['rp_upto'] < b0):
            self.probe_baselines()
        if self.bres is not None:
            for k in [k for k in self.finals if k not in self.res]:
                fk = self.finals[k]; self.res[k] = probed(fk.parent / "curve_probe.json", {'muq': (muq_encoder(MuQ.from_pretrained(fk)), weights_digest(fk))},
                                                         self.ev, self.S, self.cfg, self.cache, weights_digest(fk))
                if self.S['frame_tasks']:
                    m = MuQ.from_pretrained(fk)
                    self.fres[k] = frame_probed(fk.parent / "curve_frames.json", {'muq': lambda it: FR.muq_frame_features(m, it)}, self.ev,
                                                self.S['frame_tasks'], json.dumps([weights_digest(fk), FRAME_STRIDE, list(self.S['frame_tasks'])]))
            self.write()

    def sweep_point(self, name, change, seed=0):
        "One setting of the sweep at the sweep budget, pretraining seed `seed`, trained (or re-estimated) and probed."
        u = self.S['budgets'][min(2, len(self.S['budgets']) - 1)]; base = self.finals[('mel_rvq', u, seed)]
        run = self.out / "sweep" / (name.replace('/', '_') + (f"_seed{seed}" if seed else "")); final = run / "muq" / "final"
        if change == 'precise_bn':
            if not (final / "model.safetensors").exists(): precise_bn(MuQ.from_pretrained(base), self.items).save_pretrained(final)
        elif not (run / "muq" / "summary.json").exists():
            extra = [f"rvq_ckpt={self.rvq('rvq600', 4 * self.S['rvq_steps'])}"] if change == 'rvq600' else [f"rvq_ckpt={self.out / 'rvq' / 'rvq' / 'rvq.safetensors'}", *change]
            sh("muq.train", "--stage", "muq", "--preset", "tiny", "--data", self.train_manifest, "--run_dir", run, f"seed={seed}", f"optim.steps={u}",
               "data.num_workers=1", f"ckpt_every={min(1000, max(50, u // 8))}", *self.S['recipe'], *extra)
        self.sweep[(name, seed)] = (u, final, probed(run / "curve_probe.json", {'muq': (muq_encoder(MuQ.from_pretrained(final)), weights_digest(final))},
                                                self.ev, self.S, self.cfg, self.cache, weights_digest(final)))
        log(f"sweep {name} seed {seed}: probed ({time.time() - self.t0:.0f} s)"); self.write()

    def verdict(self, o, a, b, t, u, cmp):
        "One paired-bootstrap verdict, computed once per process (every `write` asks again for the earlier points')."
        key = (a, b, t, u, cmp)
        if key not in self.verdicts: self.verdicts[key] = P.compare(o, a, b, t, self.cfg.bootstrap)
        v = self.verdicts[key]
        return dict(updates=u, comparison=cmp, task=t, diff=100 * v['diff'], lo=100 * v['lo'], hi=100 * v['hi'], verdict=v['verdict'], n_test=v['n_test'])

    def write(self, le=None):
        "curve.json from everything measured so far."
        S, rows, layers = self.S, [], []
        aud = lambda u: None if u is None else round(u * 4 * 4.0 / 3600, 3)    # tiny recipe: 4 crops of 4 s per update
        def add(cond, u, seed, rs, enc, into=None):
            for r in rs:
                if r['encoder'] != enc or r['metric'] != P.PRIMARY[P.TASKS[r['task']][2]]: continue
                row = dict(condition=cond, updates=u, audio_hours=aud(u), seed=seed, task=r['task'], probe=r['probe'], layer=r['layer'],
                           score=100 * r['mean'], valid=100 * r['valid'], n_train=r['n_train'], n_valid=r['n_valid'], n_test=r['n_test'])
                (into if into is not None else rows if r['layer'] == 'weighted' or u is None else layers).append(row)
        for s in (0, 1): add('random_init', 0, s, self.bres['rows'], f'random_init_seed{s}')
        for b in ('mel_stats', 'chroma_stats', 'tempogram', 'label (ceiling)', 'mel_rvq_codes', 'random_projection_codes'): add(b, None, 0, self.bres['rows'], b)
        for (cond, u, seed), r in sorted(self.res.items()): add(cond, u, seed, r['rows'], 'muq')
        fbase = {r['encoder'] + '|' + r['task']: r for r in (self.fbres or {}).get('rows', [])}
        frow = lambda cond, u, seed, r: dict(condition=cond, updates=u, audio_hours=aud(u), seed=seed, **{k: r[k] for k in
                                             ('task', 'probe', 'layer', 'score', 'valid', 'n_train', 'n_valid', 'n_test')})
        for r in fbase.values():
            e = r['encoder']; rows.append(frow('mel_stats', None, 0, r) if e == 'mel_stats' else frow('random_init', 0, int(e[-1]), r))
        fverdicts = []
        for (cond, u, seed), fr in sorted(self.fres.items()):
            for r in fr['rows']:
                rows.append(frow(cond, u, seed, r))
                if seed: continue
                name = 'muq' if cond == 'mel_rvq' else cond
                for ref, tag in (('random_init_seed0', 'random_init'), ('mel_stats', 'mel_stats')):
                    if f"{ref}|{r['task']}" in fbase: fverdicts.append(frame_verdict(r, fbase[f"{ref}|{r['task']}"], u, f'{name}_vs_{tag}'))
        outs = load_outs(self.bres['outs']); verdicts, sweep_rows = [], []
        for (cond, u, seed), r in sorted(self.res.items()):                   # seed 0 of each condition against random weights and raw mel
            if seed: continue
            o = {**outs, **{(f'{cond}@{u}', t): v for (e, t), v in load_outs(r['outs']).items()}}
            for ref, name in (('random_init_seed0', 'random_init'), ('mel_stats', 'mel_stats')):
                verdicts += [self.verdict(o, f'{cond}@{u}', ref, t, u, f"{'muq' if cond == 'mel_rvq' else cond}_vs_{name}") for t in S['tasks']
                             if (f'{cond}@{u}', t) in o and (ref, t) in o]
            if cond == 'random_projection' and ('mel_rvq', u, 0) in self.res:
                o.update({(f'mel_rvq@{u}', t): v for (e, t), v in load_outs(self.res[('mel_rvq', u, 0)]['outs']).items()})
                verdicts += [self.verdict(o, f'mel_rvq@{u}', f'{cond}@{u}', t, u, 'muq_vs_random_projection') for t in S['tasks'] if (f'{cond}@{u}', t) in o]
        verdicts += fverdicts
        for (name, seed), (u, final, r) in self.sweep.items():
            add(name, u, seed, r['rows'], 'muq', into=sweep_rows)
            if seed: continue                                                 # verdicts: seed 0 against the recipe's seed 0
            o = {**outs, **{(name, t): v for (e, t), v in load_outs(r['outs']).items()},
                 **{('recipe', t): v for (e, t), v in load_outs(self.res[('mel_rvq', u, 0)]['outs']).items()}}
            verdicts += [self.verdict(o, name, 'recipe', t, u, f'{name}_vs_recipe') for t in S['tasks'] if (name, t) in o]
            verdicts += [self.verdict(o, name, 'random_init_seed0', t, u, f'{name}_vs_random_init') for t in S['tasks']
                         if (name, t) in o and ('random_init_seed0', t) in o]
        rvq_stats = {}
        for name in ('rvq', 'rvq600'):
            m = self.out / name / 'rvq' / 'metrics.jsonl'
            if m.exists(): rvq_stats[name] = [json.loads(l) for l in m.read_text().splitlines() if '"l1_after_8"' in l][-1]
        old = self.old; trained = {u for (_, u, _) in self.finals}
        kept = sorted({r['updates'] for r in old.get('rows', []) if r.get('updates') and r['updates'] not in trained}) if self.keep else []
        if kept:                                    # --budgets: the other budgets' points stay as the results file has them
            keep = lambda rs: [r for r in rs if r.get('updates') in kept]
            rows, layers, verdicts = rows + keep(old['rows']), layers + keep(old.get('layers', [])), verdicts + keep(old.get('verdicts', []))
            base = lambda rs: {(r['condition'], r['seed'], r['task'], r['probe'], r['layer']): r['score'] for r in rs if r.get('updates') in (None, 0)}
            pts = lambda rs: {(r['condition'], r['updates'], r['seed'], r['task'], r['probe']): r['score'] for r in rs if r.get('updates') in trained}
            b_eq, b_n, b_max = compare(base(rows), base(old['rows']))
            p_eq, p_n, p_max = compare(pts(rows), pts(old['rows']))
        sweep_training = [training_row(f, n, u, s) for (n, s), (u, f, _) in self.sweep.items() if (f.parent / 'summary.json').exists()]
        kept_sweep = []
        if self.keep_sweep:                         # --budgets or --sweep: what the sweep did not run again stays as the file has it
            done = {ns for ns in self.sweep}; stay = lambda r: (r['condition'], r['seed']) not in done
            kept_sweep = sorted({(r['condition'], r['seed']) for r in old.get('sweep', []) if stay(r)})
            sweep_rows += [r for r in old.get('sweep', []) if stay(r)]
            sweep_training += [t for t in old.get('sweep_training', []) if stay(t)]
            gone = {f'{n}_vs_{ref}' for n, s in kept_sweep if s == 0 for ref in ('recipe', 'random_init')}
            verdicts += [v for v in old.get('verdicts', []) if v['comparison'] in gone and v['updates'] not in kept]   # kept budgets' are in
        order = list({**SWEEP, **QUICK_SWEEP})
        rank = lambda r: (order.index(r['condition']) if r['condition'] in order else len(order), r['seed'])
        sweep_rows.sort(key=rank); sweep_training.sort(key=rank)
        doc = dict(study="MuQ-tiny learning curve on the built-in corpus", pretrain_corpus=dict(folder=self.pre.name, train_clips=len(self.items), train_hours=round(self.hours, 2)),
                   eval_corpus=self.ev.name, recipe="tiny preset (4 crops x 4 s per update, lr 1e-3, 20 warmup updates, linear decay to the budget)"
                   + (f"; changed for every MuQ training: {', '.join(S['recipe'])}" if S['recipe'] else ''),
                   probe=dict(preset='quick', layer_settings=LAYER_SETTINGS, layer_tasks=S['layer_tasks'], verdict_probe='mlp, weighted layers',
                              bootstrap=self.cfg.bootstrap),
                   rows=rows, layers=layers, verdicts=verdicts, sweep=sweep_rows, rvq=rvq_stats,
                   sweep_training=sweep_training, kept_sweep=[f"{n} seed {s}" for n, s in kept_sweep],
                   label_efficiency=le if le is not None else old.get('label_efficiency', []),
                   training=[training_row(f, *r) for r, f in sorted(self.finals.items())] + [r for r in old.get('training', []) if r['updates'] in kept],
                   provenance=provenance(manifests=[self.train_manifest] + sorted(self.ev.glob('*_*.jsonl')), checkpoints=[f for _, f in sorted(self.finals.items())],
                                         seeds=sorted({s for *_, s in self.finals}), rvq=file_digest(self.out / 'rvq' / 'rvq' / 'rvq.safetensors')))
        if kept:
            ok = old.get('kept', {}); by = {int(u): pv for u, pv in ok.get('provenance_by_budget', {}).items()}
            by = {u: by.get(u) or (ok.get('provenance') if u in ok.get('budgets', []) else old.get('provenance')) for u in kept}
            doc['kept'] = dict(budgets=kept, provenance_by_budget={str(u): pv for u, pv in by.items()},   # what produced each kept point
                               baselines_equal=f"{b_eq} of {b_n} baseline scores equal to the kept file's (largest difference {b_max:.2f})",
                               points_equal=f"{p_eq} of {p_n} scores of budgets trained again equal (largest difference {p_max:.2f})")
            log(f"kept budgets {kept} from {self.results.name}: {doc['kept']['baselines_equal']}; {doc['kept']['points_equal']}")
        self.results.parent.mkdir(parents=True, exist_ok=True); atomic_write_text(report.results_json(doc) + "\n", self.results)
        log(f"{len(rows)} rows, {len(verdicts)} verdicts, {len(doc['label_efficiency'])} label-efficiency rows ({time.time() - self.t0:.0f} s) -> {self.results}")

    def label_efficiency(self):
        "Labelled examples per class against the score, at the largest budget trained: pretrained (seed 0) and random weights (seed 0)."
        top = max(u for (c, u, s) in self.finals if c == 'mel_rvq'); fbig = self.finals[('mel_rvq', top, 0)]
        kept_top = max((r['updates'] for r in self.old.get('label_efficiency', []) if r['encoder'] == 'muq'), default=0) if self.keep else 0
        if kept_top > top:                          # --budgets below the file's largest: its label efficiency stays where it was measured
            log(f"label efficiency kept at {kept_top} updates (this run's largest budget is {top})"); return self.write()
        encs = {'muq': (None, weights_digest(fbig)), 'random_init_seed0': self.base['random_init_seed0']}
        le = label_efficiency(list(encs), self.ev, self.S, self.cfg, self.cache, feature_keys(encs, self.ev, self.S, self.cfg))
        for r in le: r['updates'] = top if r['encoder'] == 'muq' else 0
        self.write(le)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="toy sizes, a few minutes: the pipeline, not the numbers")
    ap.add_argument("--out", default="", help="study folder (default runs/curve, runs/curve_quick with --quick)")
    ap.add_argument("--results", default="", help="the results file (default nbs/results/curve.json; with --quick: <out>/curve.json)")
    ap.add_argument("--max_updates", type=int, default=0, help="train and probe only the budgets up to this many updates (0 = all)")
    ap.add_argument("--no_sweep", action="store_true", help="skip the sweep of the recipe's settings")
    ap.add_argument("--sweep", default="", help="comma-separated subset of the sweep's settings (default: all of them)")
    ap.add_argument("--budgets", default="", help="comma-separated budgets to train and probe (default: the grid); the results "
                    "file's points at other budgets are kept, with a check that the baselines and the points trained again are equal")
    ap.add_argument("--rp_upto", type=int, default=-1, help="random-projection runs only up to this budget (default: the study's own)")
    ap.add_argument("--seeds_upto", type=int, default=-1, help="a second pretraining seed up to this budget (default: the study's own)")
    ap.add_argument("--recipe", default="", help="comma-separated muq.train settings changed for every MuQ training of the curve "
                    "(e.g. optim.lr=3.3e-4); the study gets its own folder and results file")
    ap.add_argument("--sweep_seeds", type=int, default=1, help="pretraining seeds per sweep setting (seed 1 needs the recipe's seed 1 "
                    "at the sweep budget: --seeds_upto)")
    a = ap.parse_args(); st = Study(a)
    if a.rp_upto >= 0: st.S = {**st.S, 'rp_upto': a.rp_upto}
    if a.seeds_upto >= 0: st.S = {**st.S, 'seeds_upto': a.seeds_upto}
    st.rvq()
    runs = [r for r in plan(st.S) if not a.max_updates or r[1] <= a.max_updates]
    if a.budgets:
        want = {int(b) for b in a.budgets.split(',')}
        if not want <= set(st.S['budgets']) or st.S['budgets'][0] not in want:
            sys.exit(f"--budgets {a.budgets}: choose from {list(st.S['budgets'])}, the first included (its points anchor the baselines)")
        runs = [r for r in runs if r[1] in want]
    sweep_after = st.S['budgets'][min(2, len(st.S['budgets']) - 1)]           # the sweep runs once its budget's points are in
    for r in runs:
        st.point(*r)
        if not a.no_sweep and r[1] == sweep_after and all(q in st.finals for q in runs if q[1] <= sweep_after):
            sweep = QUICK_SWEEP if a.quick else SWEEP
            if a.sweep:
                unknown = set(a.sweep.split(',')) - set(sweep)
                if unknown: sys.exit(f"--sweep: unknown settings {sorted(unknown)}; choose from {sorted(sweep)}")
                sweep = {k: v for k, v in sweep.items() if k in a.sweep.split(',')}
            for seed in range(a.sweep_seeds):
                if ('mel_rvq', sweep_after, seed) not in st.finals: sys.exit(f"--sweep_seeds {a.sweep_seeds}: the recipe has no seed {seed} "
                                                                            f"at {sweep_after} updates; add --seeds_upto {sweep_after}")
                for name, change in sweep.items(): st.sweep_point(name, change, seed)
    if not a.no_sweep and sweep_after > max(r[1] for r in runs): log("the sweep's budget is beyond --max_updates: no sweep")
    st.label_efficiency()
    log(f"done in {(time.time() - st.t0) / 60:.1f} min")

if __name__ == "__main__":
    main()
