"""`python -m muq.finetune` end to end, in real processes: what each mode trains and leaves alone, a separable task learnt and
shuffled labels not, a saved classifier that reloads, exact resume after a SIGKILL, and 2 torchrun ranks equal to 1 rank accumulating."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest, soundfile as sf, torch
from safetensors.torch import load_file
from muq import MuQ, MuQConfig
from muq.data import write_manifest, read_manifest

pytestmark = pytest.mark.slow
NO_DROPOUT = ["model.dropout=0", "model.muq.encoder.dropout=0", "model.muq.encoder.attention_dropout=0", "model.muq.encoder.activation_dropout=0",
              "model.muq.encoder.conv_dropout=0"]

def tones(d: Path, n: int, seed: int, shuffle=False):
    rng = np.random.default_rng(seed); items = []; d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        lab = ["low", "high"][i % 2]; f = (130 if lab == "low" else 1040) * 2 ** rng.uniform(-0.15, 0.15); t = np.arange(36000) / 24000
        sf.write(d / f"{seed}_{i}.flac", (0.3 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32), 24000)
        items.append(dict(path=str(d / f"{seed}_{i}.flac"), num_samples=len(t), sample_rate=24000, pitch=lab))
    if shuffle:
        labs = [it["pitch"] for it in items]; rng.shuffle(labs); items = [dict(it, pitch=l) for it, l in zip(items, labs)]
    return items

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ft")
    for name, n, seed in (("train", 24, 0), ("valid", 8, 1), ("test", 20, 2)): write_manifest(tones(d / "audio", n, seed), d / f"{name}.jsonl")
    write_manifest(tones(d / "audio", 24, 0, shuffle=True), d / "train_shuffled.jsonl"); write_manifest(tones(d / "audio", 20, 2, shuffle=True), d / "test_shuffled.jsonl")
    torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(d / "muq")
    return d

def finetune(data, run, mode, *extra, train="train", test="test", check=True, cmd=None, env=None):
    args = ["--ckpt", str(data / "muq"), "--data", str(data / f"{train}.jsonl"), "--valid", str(data / "valid.jsonl"), "--test", str(data / f"{test}.jsonl"),
            "--label", "pitch", "--mode", mode, "--run_dir", str(run), "data.num_workers=0", "data.crop_seconds=1.0", "eval_window=1.5", "log_every=5", *extra]
    r = subprocess.run((cmd or [sys.executable, "-m", "muq.finetune"]) + args, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    if check: assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r

def weights(run): return load_file(str(run / "finetune" / "final" / "model.safetensors"))

def test_each_mode_trains_what_it_says(data, tmp_path):
    base = load_file(str(data / "muq" / "model.safetensors"))
    enc = lambda w: {k[len("muq."):]: v for k, v in w.items() if k.startswith("muq.")}
    r = finetune(data, tmp_path / "lora", "lora", "optim.steps=20", "eval_every=10")
    assert "projections adapted" in r.stderr and "model.conformer.layers.0.self_attn.linear_q" in r.stderr
    w = enc(weights(tmp_path / "lora")); lora = [k for k in w if ".lora_B" in k]
    assert len(lora) == 2 * 8 and all(w[k].abs().max() > 0 for k in lora)                     # adapters moved from B = 0
    same = [k for k in base if not k.startswith("model.front_end")]
    for k in same: assert torch.equal(w.get(k, w.get(k.replace("_q.", "_q.base.").replace("_k.", "_k.base.").replace("_v.", "_v.base.")
                                                   .replace("_out.", "_out.base.").replace("_dense.", "_dense.base."))), base[k]), k
    finetune(data, tmp_path / "freeze", "freeze", "optim.steps=10", "eval_every=10")
    w = enc(weights(tmp_path / "freeze")); assert all(torch.equal(w[k], base[k]) for k in same)   # the encoder bit-identical
    finetune(data, tmp_path / "full", "full", "optim.steps=10", "eval_every=10")
    w = enc(weights(tmp_path / "full")); assert sum(not torch.equal(w[k], base[k]) for k in same if base[k].is_floating_point()) > 20
    bad = finetune(data, tmp_path / "none", "lora", "model.lora_targets=q_proj,v_proj", check=False)
    assert bad.returncode != 0 and "match no Linear layer" in bad.stderr and "linear_q" in bad.stderr

def test_separable_task_is_learnt_and_shuffled_labels_are_not(data, tmp_path):
    finetune(data, tmp_path / "ok", "lora", "optim.steps=150", "optim.lr=3e-3", "eval_every=50")
    rep = json.loads((tmp_path / "ok" / "finetune" / "report.json").read_text())
    assert rep["metrics"]["acc"] >= 0.95 and rep["n_test"] == 20 and rep["interval"]["lo"] <= rep["interval"]["value"] <= rep["interval"]["hi"]
    finetune(data, tmp_path / "shuf", "lora", "optim.steps=150", "optim.lr=3e-3", "eval_every=50", train="train_shuffled", test="test_shuffled")
    acc = json.loads((tmp_path / "shuf" / "finetune" / "report.json").read_text())["metrics"]["acc"]
    assert acc <= 0.8, acc                                                              # chance is 0.5 on 20 clips
    from muq.finetune import MuQClassifier
    from muq.audio import load_audio
    clf = MuQClassifier.from_pretrained(tmp_path / "ok" / "finetune" / "final"); items = read_manifest(data / "test.jsonl")
    out = clf.predict(torch.stack([load_audio(it["path"]) for it in items[:4]]))
    assert out["labels"] == [it["pitch"] for it in items[:4]] and torch.allclose(out["scores"].sum(-1), torch.ones(4))

def test_resume_after_sigkill_is_exact(data, tmp_path):
    "Killed right after a checkpoint, between two validations: the resumed run selects the same step and ends bit-identical."
    import signal
    common = ["optim.steps=8", "ckpt_every=2", "eval_every=4", "--test", ""]
    finetune(data, tmp_path / "ref", "full", *common)
    r = finetune(data, tmp_path / "run", "full", *common, check=False, env={"MUQ_CRASH_AT": "written:step_0000006.pt"})
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert not (tmp_path / "run" / "finetune" / "final").exists()
    ck = lambda: {p.name: p.stat().st_ino for p in (tmp_path / "run" / "finetune" / "checkpoints").iterdir()}
    before = ck(); assert sorted(before) == ["step_0000002.pt", "step_0000004.pt", "step_0000006.pt"], before
    finetune(data, tmp_path / "run", "full", *common)
    after = ck(); assert {k: after.get(k) for k in ("step_0000004.pt", "step_0000006.pt")} == {k: before[k] for k in ("step_0000004.pt", "step_0000006.pt")}
    assert "step_0000008.pt" in after                                  # resumed from step 6, not trained again from 0
    a, b = weights(tmp_path / "ref"), weights(tmp_path / "run")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    best = lambda run: json.loads((run / "finetune" / "best.json").read_text())
    assert best(tmp_path / "ref") == best(tmp_path / "run")

def test_two_ranks_equal_one_rank_accumulating(data, tmp_path):
    from test_train import torchrun
    common = ["optim.steps=3", "eval_every=0", "data.batch_size=1", "ckpt_every=100", *NO_DROPOUT]   # BatchNorm: one clip per micro-batch either way
    finetune(data, tmp_path / "one", "full", *common, "data.accum=2", "--test", "")
    finetune(data, tmp_path / "two", "full", *common, "data.accum=1", "--test", "", cmd=torchrun()[:-2] + ["-m", "muq.finetune"])
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    keys = [k for k in a if a[k].is_floating_point() and "running_" not in k]
    diff = {k: (a[k] - b[k]).abs().max().item() for k in keys}
    assert len(keys) > 50 and max(diff.values()) < 5e-5, sorted(diff.items(), key=lambda kv: -kv[1])[:5]

def test_study_tables_report_means_spreads_and_calls():
    "muq.study_finetune's tables: mean ± std over seeds, and a difference called only beyond the combined std."
    from muq import study_finetune as fs
    rows = [dict(task='key', init=i, mode=m, seed=s, value=v, metric='weighted', n_test=10)
            for i, m, vs in (('pretrained', 'freeze', (0.10, 0.12, 0.14)), ('pretrained', 'lora', (0.11, 0.13, 0.15)),
                             ('pretrained', 'full', (0.30, 0.32, 0.34)), ('random', 'freeze', (0.10, 0.10, 0.10)),
                             ('random', 'lora', (0.10, 0.10, 0.10)), ('random', 'full', (0.50, 0.50, 0.50)))
            for s, v in enumerate(vs)]
    t = fs.table(rows, ['key'], anchor=[dict(task='key', init='pretrained', value=0.4, metric='weighted')])
    assert "| pretrained | full | 32.0 ± 1.6 |" in t and "| random | full | 50.0 ± 0.0 |" in t, t
    assert "| pretrained | probe (chapter 8, one fit) | 40.0 |" in t and "| random | probe" not in t, t
    g = {l.split(' | ')[0][2:]: l.split(' | ')[1].rstrip(' |') for l in fs.gains(rows, ['key']).splitlines()[2:]}
    assert g['pretrained: full vs freeze'] == '+20.0 ± 2.3 **better**', g      # 20 points against sqrt(1.63² + 1.63²)
    assert g['pretrained: lora vs freeze'] == '+1.0 ± 2.3', g                  # within the spread: a tie
    assert g['full: pretrained vs random'] == '-18.0 ± 1.6 **worse**', g
