"Probing: metrics, probe selection, normalisation, sanity features, the feature cache, verdicts, the CLI."
import json, os, subprocess, sys
import numpy as np, pytest, soundfile as sf, torch, torch.nn.functional as F
from muq import MuQ, MuQConfig
from muq.corpus import CorpusConfig, build_corpus
from muq.data import KEYS, read_manifest, write_manifest
from muq.probe_fit import task_metric
from muq.probe import (fit_probe, cached_features, file_digest, normalize_features, tempo_features, compare,
                       TASKS, with_tasks)

def test_metrics_against_hand_computed_values():
    k = lambda s: KEYS.index(s)
    y = np.array([k("C major")] * 5)
    pred = np.array([k("C major"), k("G major"), k("A minor"), k("C minor"), k("D major")])
    m = task_metric("key", y, F.one_hot(torch.tensor(pred), 24).numpy(), KEYS)
    assert m["weighted"] == pytest.approx((1 + 0.5 + 0.3 + 0.2 + 0) / 5) and m["acc"] == pytest.approx(0.2)
    assert task_metric("regression", np.array([1.0, 2, 3]), np.array([1.0, 2, 4]))["r2"] == pytest.approx(0.5)
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.float32)
    logits = np.array([[2.0, -1], [-1, 0.5], [0.1, 3], [-2, 1]])   # tag 0 ranked perfectly; tag 1: 3 of 4 pairs
    m = task_metric("multilabel", y, logits)
    assert m["roc_auc"] == pytest.approx((1.0 + 0.75) / 2) and m["ap"] == pytest.approx((1.0 + (1 + 2 / 3) / 2) / 2)
    assert task_metric("multiclass", np.array([0, 1, 2]), np.eye(3)[[0, 1, 1]])["acc"] == pytest.approx(2 / 3)

def trap(seed, C=20, unseen=6, d=64, sig=0.3):
    "Validation holds classes that training never sees: validation loss turns up early while accuracy still climbs."
    g = torch.Generator().manual_seed(seed); mu = torch.randn(C, d, generator=g) * sig
    def draw(cls, n):
        y = torch.tensor(list(cls)).repeat_interleave(n); return (mu[y] + torch.randn(len(y), d, generator=g))[:, None], y.numpy()
    (xt, yt), (xv, yv), (xu, yu), (xs, ys) = draw(range(C - unseen), 8), draw(range(C - unseen), 3), draw(range(C - unseen, C), 3), draw(range(C - unseen), 10)
    X = normalize_features({"train": xt, "valid": torch.cat([xv, xu]), "test": xs}, "zscore")
    return X, {"train": yt, "valid": np.concatenate([yv, yu]), "test": ys}

@pytest.mark.parametrize("seed", [0, 1])
def test_selection_on_the_validation_metric_escapes_the_early_stopping_trap(seed):
    X, y = trap(seed)
    by_loss = fit_probe(X, y, "multiclass", 20, layer=0, select="loss", patience=30, min_epochs=0)
    by_metric = fit_probe(X, y, "multiclass", 20, layer=0)
    assert by_loss["epoch"] < 15 and by_metric["acc"] > by_loss["acc"] + 0.15, (by_loss, by_metric)

def test_whitening_recovers_a_low_variance_signal_direction():
    g = torch.Generator().manual_seed(0); d = 32
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g)); X, y = {}, {}
    for s, n in (("train", 600), ("valid", 200), ("test", 200)):
        lab = torch.randint(0, 2, (n,), generator=g); z = torch.randn(n, d, generator=g)
        z[:, :3] *= 100; z[:, 7] = 0.02 * torch.randn(n, generator=g) + 0.1 * (2 * lab.float() - 1)   # the label: a quiet direction
        X[s], y[s] = (z @ Q.T)[:, None], lab.numpy()
    u = Q[:, 7]                                                  # the signal direction in feature space
    share = lambda Z: float(((Z[:, 0] - Z[:, 0].mean(0)) @ u).var() / (Z[:, 0] - Z[:, 0].mean(0)).var(0).sum())
    Zw = normalize_features(X, "whiten", 0.0)
    v = torch.linalg.lstsq(Zw["train"][:, 0], (X["train"][:, 0] - X["train"][:, 0].mean(0)) @ u[:, None]).solution[:, 0]
    share_w = float((Zw["train"][:, 0] @ v).var() / Zw["train"][:, 0].var(0).sum() / (v @ v))
    assert share(X["train"]) < 1e-4 and share_w > 0.5 / d                   # from invisible to an equal share of the variance
    assert fit_probe(Zw, y, "multiclass", 2, layer=0, hidden=0)["acc"] > 0.95

def test_tempo_sanity_feature_reaches_the_ceiling(tmp_path):
    "Click tracks at random tempi and phases, random pitches: the tempogram baseline predicts the tempo (R² ≈ 1)."
    rng = np.random.default_rng(0); items, y = {}, {}
    for split, n in (("train", 60), ("valid", 20), ("test", 20)):
        items[split] = []; y[split] = rng.uniform(70, 140, n).astype(np.float32)
        for k, bpm in enumerate(y[split]):
            x = 0.01 * rng.standard_normal(24000 * 10).astype(np.float32); f0 = rng.uniform(200, 2000)
            burst = np.sin(2 * np.pi * f0 * np.arange(1200) / 24000) * np.exp(-np.arange(1200) / 200)
            for t in np.arange(rng.uniform(0, 60 / bpm), 9.9, 60 / bpm): x[int(t * 24000): int(t * 24000) + 1200] += burst
            p = tmp_path / f"{split}{k}.wav"; sf.write(p, x, 24000); items[split].append(dict(path=str(p), num_samples=len(x), sample_rate=24000))
    X = normalize_features({s: tempo_features(items[s], window=5.0, max_windows=2) for s in items})
    assert fit_probe(X, y, "regression", 1, layer=0, hidden=0)["r2"] > 0.95

def test_paired_bootstrap_verdicts():
    y = np.array([0, 1] * 100); good = np.eye(2)[y] * 3; noisy = np.eye(2)[np.where(np.arange(200) % 5 == 0, 1 - y, y)] * 3
    outs = {("a", "t"): ("multiclass", y, [good], None), ("b", "t"): ("multiclass", y, [noisy], None), ("c", "t"): ("multiclass", y, [good], None)}
    v = compare(outs, "a", "b", "t", n_boot=300)
    assert v["verdict"] == "better" and v["diff"] == pytest.approx(0.2) and v["lo"] > 0.1
    assert compare(outs, "a", "c", "t", n_boot=300)["verdict"] == "tie" and compare(outs, "b", "a", "t", n_boot=300)["verdict"] == "worse"

def test_feature_cache_invalidation(tmp_path):
    torch.manual_seed(0); m = MuQ(MuQConfig.preset("tiny")); m.save_pretrained(tmp_path / "ck")
    calls = []
    def fn(items, **kw): calls.append(1); return torch.full((2, 3), float(len(calls)))
    key = lambda: file_digest(tmp_path / "ck" / "model.safetensors")
    a = cached_features("m", fn, [], key(), tmp_path / "cache")
    b = cached_features("m", fn, [], key(), tmp_path / "cache")
    assert len(calls) == 1 and torch.equal(a, b)
    with torch.no_grad(): m.model.linear.bias.add_(1)
    m.save_pretrained(tmp_path / "ck")
    c = cached_features("m", fn, [], key(), tmp_path / "cache")
    assert len(calls) == 2 and c[0, 0] == 2

def test_task_table_is_never_mutated():
    before = dict(TASKS)
    t = with_tasks(["genre=gtzan:genre:multiclass"])
    assert "genre" in t and dict(TASKS) == before

@pytest.fixture(scope="module")
def small_eval(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    build_corpus(CorpusConfig(minutes=0.5, notes=300, seed=1, splits=(5, 2, 3)), d, verbose=False)
    return d

@pytest.mark.slow
def test_cli_end_to_end_from_another_folder(small_eval, tmp_path):
    "Run outside the project: the built-in evaluation corpus is found through MUQ_DATA; --device, settings, progress on stderr."
    from muq.corpus import corpus_name
    (tmp_path / "data").mkdir(); os.symlink(small_eval, tmp_path / "data" / corpus_name(CorpusConfig.preset("eval")))
    cfg = json.loads((small_eval / "corpus_config.json").read_text())
    eval_cfg = json.loads(json.dumps(CorpusConfig.preset("eval").to_dict()))
    (small_eval / "corpus_config.json").write_text(json.dumps(eval_cfg))     # present it as the built-in evaluation corpus
    try:
        torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(tmp_path / "ck")
        elsewhere = tmp_path / "elsewhere"; elsewhere.mkdir()
        cmd = [sys.executable, "-m", "muq.probe", "--ckpt", str(tmp_path / "ck"), "--tasks", "pitch,note_instrument",
               "--device", "cpu", "seeds=2", "window=2", "per_layer=false"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=2400, cwd=elsewhere, env={**os.environ, "MUQ_DATA": str(tmp_path / "data")})
        first = (tmp_path / "probe" / "results.csv").read_text()
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=2400, cwd=elsewhere, env={**os.environ, "MUQ_DATA": str(tmp_path / "data")})
    finally: (small_eval / "corpus_config.json").write_text(json.dumps(cfg))
    assert again.returncode == 0 and (tmp_path / "probe" / "results.csv").read_text() == first      # a rerun reproduces every number
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| muq |" in r.stdout and "| mel_stats |" in r.stdout and "| label (ceiling) |" in r.stdout and "muq vs muq_random_init" in r.stdout
    assert "features" in r.stderr                                                # the progress bar
    rows = (tmp_path / "probe" / "results.csv").read_text().splitlines()
    assert rows[0].startswith("encoder,task,probe,layer,metric,mean,std,n_seeds") and len(rows) > 10
    ceiling = [l for l in rows if l.startswith("label (ceiling),pitch,mlp")]
    assert ceiling and float(ceiling[0].split(",")[5]) > 0.95                     # the probe can reach the ceiling here
    import csv                                                                   # the validation score, for choices made from the table
    ceil = next(r for r in csv.DictReader(open(tmp_path / "probe" / "results.csv")) if r["encoder"] == "label (ceiling)" and r["task"] == "pitch")
    assert float(ceil["valid"]) > 0.95
    doc = json.loads((tmp_path / "probe" / "verdicts.json").read_text()); v = doc["verdicts"]
    assert {x["verdict"] for x in v} <= {"better", "worse", "tie"} and all(x["lo"] <= x["diff"] <= x["hi"] for x in v)
    # what produced the numbers: the notes manifests it read (items, digest) and the checkpoint's weights
    from muq.core import file_digest
    pv = doc["provenance"]; test = next(p for p in pv["manifests"] if p.endswith("notes_test.jsonl"))
    assert pv["manifests"][test] == dict(items=len(read_manifest(test)), digest=file_digest(test))
    assert pv["checkpoints"] == {str(tmp_path / "ck"): file_digest(tmp_path / "ck" / "model.safetensors")} and pv["seeds"] == [0, 1]
    assert "notes_test.jsonl" in (tmp_path / "probe" / "results.md").read_text()
    bad = subprocess.run([sys.executable, "-m", "muq.probe", "--ckpt", str(tmp_path / "ck"), "--tasks", "keyy"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown ['keyy']" in bad.stderr

@pytest.mark.slow
def test_real_dataset_through_an_adapter(tmp_path):
    "A MARBLE-style set (GTZAN layout) -> adapter -> manifests -> the same probe runner, via --extra_tasks."
    from muq.data import gtzan_manifest
    rng = np.random.default_rng(0); t = np.arange(22050 * 2) / 22050
    for g, f0 in (("blues", 220.0), ("metal", 1760.0)):
        for k in range(12):
            x = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.02 * k) * t) + 0.01 * rng.normal(size=len(t))
            (tmp_path / "gtzan" / g).mkdir(parents=True, exist_ok=True); sf.write(tmp_path / "gtzan" / g / f"{g}.{k:05d}.wav", x.astype(np.float32), 22050)
    items = gtzan_manifest(tmp_path / "gtzan")
    splits = {"train": [i for i in items if int(i["path"][-9:-4]) < 8], "valid": [i for i in items if 8 <= int(i["path"][-9:-4]) < 10],
              "test": [i for i in items if int(i["path"][-9:-4]) >= 10]}
    for s, v in splits.items(): write_manifest(v, tmp_path / "marble" / f"gtzan_{s}.jsonl")
    torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(tmp_path / "ck")
    r = subprocess.run([sys.executable, "-m", "muq.probe", "--ckpt", str(tmp_path / "ck"), "--corpus", str(tmp_path / "marble"),
                        "--tasks", "genre", "--extra_tasks", "genre=gtzan:genre:multiclass", "window=2", "seeds=2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    row = next(l for l in r.stdout.splitlines() if l.startswith("| mel_stats |"))
    assert float(row.split("|")[2].split("±")[0]) == 100.0          # two tones an octave apart x3: trivially separable
