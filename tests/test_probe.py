"Probing: metrics, probes, the feature cache, the CLI (issue: evaluation)."
import subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch, torch.nn.functional as F
from muq import MuQ, MuQConfig
from muq.corpus import CorpusConfig, build_corpus
from muq.data import KEYS
from muq.probe import task_metric, fit_probe, cached_features, file_digest, summary_table

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

def separable(seed=0, n=300):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g); X = torch.randn(n, 2, 16, generator=g); X[:, 1, :4] += 4 * F.one_hot(y, 4)
    sp = {"train": slice(0, 200), "valid": slice(200, 250), "test": slice(250, n)}
    return {k: X[s] for k, s in sp.items()}, {k: y[s].numpy() for k, s in sp.items()}

def test_probe_separable_and_shuffled():
    X, y = separable()
    assert fit_probe(X, y, "multiclass", 4, epochs=200)["acc"] > 0.95
    assert fit_probe(X, y, "multiclass", 4, hidden=0, layer=1, epochs=200)["acc"] > 0.95       # linear probe too
    ysh = {k: np.random.default_rng(0).permutation(v) for k, v in y.items()}
    accs = [fit_probe(X, ysh, "multiclass", 4, epochs=100, seed=s)["acc"] for s in range(3)]
    assert np.mean(accs) < 0.45                                                              # chance is 0.25

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

@pytest.mark.slow
def test_cli_end_to_end(tmp_path):
    build_corpus(CorpusConfig(minutes=0.5, notes=300, seed=1), tmp_path / "corpus", verbose=False)
    torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(tmp_path / "ck")
    r = subprocess.run([sys.executable, "-m", "muq.probe", "--ckpt", str(tmp_path / "ck"), "--corpus", str(tmp_path / "corpus"),
                        "--tasks", "pitch,note_instrument", "--seeds", "3", "--window", "2"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| muq |" in r.stdout and "| mel_stats |" in r.stdout and "| muq_random_init |" in r.stdout
    rows = (tmp_path / "probe" / "results.csv").read_text().splitlines()
    assert rows[0].startswith("encoder,task,layer,metric,mean,std,n_seeds") and len(rows) > 10
    assert all(0.0 <= float(l.split(",")[4]) <= 1.0 for l in rows[1:])
    assert (tmp_path / "probe" / "results.md").read_text().startswith("| encoder |")
    bad = subprocess.run([sys.executable, "-m", "muq.probe", "--ckpt", str(tmp_path / "ck"), "--tasks", "keyy"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown ['keyy']" in bad.stderr

@pytest.mark.slow
def test_real_dataset_through_an_adapter(tmp_path):
    "A MARBLE-style set (GTZAN layout) -> adapter -> manifests -> the same probe runner, via --extra_tasks."
    import soundfile as sf
    from muq.data import gtzan_manifest
    from muq.data import write_manifest
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
                        "--tasks", "genre", "--extra_tasks", "genre=gtzan:genre:multiclass", "--window", "2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    row = next(l for l in r.stdout.splitlines() if l.startswith("| mel_stats |"))
    assert float(row.split("|")[2].split("±")[0]) == 100.0          # two tones an octave apart x3: trivially separable
