"Target stores: exact losses from pre-extracted targets, alignment, resumability after a kill, refusal of the wrong store, the CLI loop."
import json, os, signal, subprocess, sys
import numpy as np, pytest, soundfile as sf, torch
from muq import MuQ, MuQConfig
from muq.data import write_manifest
from muq.masking import block_mask
from muq.targets import MelTokenizer, TargetStore, TargetCropDataset, extract_targets, item_key, FRAME

def tones(d, secs, n=None):
    items = []
    for i, s in enumerate(secs):
        t = np.arange(int(s * 24000)) / 24000; f = 147 * 2 ** (i / 7)
        x = sum(0.2 / h * np.sin(2 * np.pi * f * h * t * (1 + 0.01 * np.sin(2 * np.pi * 4 * t))) for h in (1, 2, 3)) + 0.01 * np.random.default_rng(i).standard_normal(len(t))
        sf.write(d / f"t{i}.flac", x.astype(np.float32), 24000); items.append(dict(path=str(d / f"t{i}.flac"), num_samples=len(t), sample_rate=24000))
    return items

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0); return MuQ(MuQConfig.preset("tiny")).eval()

def test_stored_mel_targets_give_a_bit_identical_loss(tiny, tmp_path):
    items = tones(tmp_path, [4.0] * 3)                                    # files as long as the crop: the crop is the window
    extract_targets(MelTokenizer(tiny), items, tmp_path / "s", window=4.0, verbose=False)
    ds = TargetCropDataset(items, TargetStore.open(tmp_path / "s", items), seconds=4.0)
    b = [ds[(i, 0)] for i in range(3)]; wav = torch.stack([x["wav"] for x in b]); tg = torch.stack([x["targets"] for x in b])
    assert all(x["offset"] == 0 for x in b)
    blocks = block_mask(3, wav.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fly = tiny.model.train_forward(wav, None, blocks, generator=torch.Generator().manual_seed(1))["loss"]
        stored = tiny.model.train_forward(wav, tg, blocks, generator=torch.Generator().manual_seed(1))["loss"]
    assert torch.equal(tiny.tokenize(wav), tg) and fly.item() == stored.item()

def test_target_crops_align_at_random_offsets_including_the_last_partial_window(tiny, tmp_path):
    items = tones(tmp_path, [12.0, 7.7])
    extract_targets(MelTokenizer(tiny), items, tmp_path / "s", window=5.0, verbose=False)       # windows 5, 5, 2 (and 5, 2.7)
    store = TargetStore.open(tmp_path / "s", items); ds = TargetCropDataset(items, store, seconds=3.0, seed=3)
    ends = 0
    for ep in range(12):
        for i in range(2):
            b = ds[(i, ep)]; full = store.get(item_key(items[i])); f0 = b["offset"] // FRAME
            assert full.shape[1] == items[i]["num_samples"] // FRAME
            assert np.array_equal(b["targets"][:, : full.shape[1] - f0].numpy(), full[:, f0: f0 + 75])
            fly = tiny.tokenize(b["wav"][None])[0]
            assert (fly[:, 3:-3] == b["targets"][:, 3:-3]).float().mean() > 0.95
            ends += f0 + 75 > full.shape[1] - 60                          # crops reaching into the last window
    assert ends > 0

def test_store_survives_sigkill_mid_extraction(tiny, tmp_path):
    items = tones(tmp_path, [6.0] * 12); write_manifest(items, tmp_path / "m.jsonl")
    tiny.save_pretrained(tmp_path / "ck")
    args = [sys.executable, "-m", "muq.targets", "--kind", "mel", "--ckpt", str(tmp_path / "ck"), "--data", str(tmp_path / "m.jsonl"),
            "--window", "3", "--shard_size", "2"]
    ref = subprocess.run(args + ["--out", str(tmp_path / "ref")], capture_output=True, text=True, timeout=300); assert ref.returncode == 0, ref.stderr[-2000:]
    p = subprocess.run(args + ["--out", str(tmp_path / "s")], capture_output=True, env={**os.environ, "MUQ_CRASH_AT": "written:shard_00001.json"})
    assert p.returncode == -signal.SIGKILL
    # the store's guarantee: a shard is listed only after its array and its index are complete. The kill came after
    # shard_00001's array and index were written but before the list named it: only shard_00000 is listed (shard_00001 is rewritten on resume)
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    assert meta["shards"] == ["shard_00000"] and (tmp_path / "s" / "shard_00001.npy").exists()
    for s in meta["shards"]:
        n = sum(e[1] for e in json.loads((tmp_path / "s" / f"{s}.json").read_text())["entries"].values())
        assert np.load(tmp_path / "s" / f"{s}.npy").shape == (8, n)             # each listed shard whole: array and index agree
    r = subprocess.run(args + ["--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=300); assert r.returncode == 0, r.stderr[-2000:]
    a, b = TargetStore.open(tmp_path / "ref", items), TargetStore.open(tmp_path / "s", items)
    assert len(a) == len(b) == 12 and all(np.array_equal(a.get(item_key(it)), b.get(item_key(it))) for it in items)
    assert not [f for f in os.listdir(tmp_path / "s") if f.endswith(".tmp") and not f.startswith(".")]

@pytest.mark.slow
def test_latent_targets_train_and_the_wrong_store_is_refused(tiny, tmp_path):
    items = tones(tmp_path, [5.0] * 6); write_manifest(items, tmp_path / "m.jsonl"); write_manifest(items[:5], tmp_path / "other.jsonl")
    tiny.save_pretrained(tmp_path / "it1")
    r = subprocess.run([sys.executable, "-m", "muq.targets", "--ckpt", str(tmp_path / "it1"), "--layer", "1", "--data", str(tmp_path / "m.jsonl"),
                        "--out", str(tmp_path / "lat"), "--n_codebooks", "4", "--codebook_size", "32", "--fit_steps", "50", "--window", "5"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    store = json.loads((tmp_path / "lat" / "store.json").read_text())
    assert store["producer"]["kind"] == "latent" and store["producer"]["layer"] == 1 and (tmp_path / "lat" / "latent_rvq.safetensors").exists()
    common = ["--stage", "muq", "--preset", "tiny", "--run_dir", str(tmp_path / "it2"), "model.targets=precomputed", f"data.targets_dir={tmp_path / 'lat'}",
              "model.rvq.n_codebooks=4", "model.rvq.codebook_size=32", "optim.steps=3", "data.batch_size=2", "data.num_workers=0", "data.crop_seconds=2"]
    ok = subprocess.run([sys.executable, "-m", "muq.train", "--data", str(tmp_path / "m.jsonl"), *common, f"init_ckpt={tmp_path / 'it1'}",
                         f"data.targets_ckpt={tmp_path / 'it1'}"], capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0 and "muq done: 3 steps" in ok.stdout, ok.stderr[-2000:]
    assert "tensors do not fit and stay random" in ok.stderr                 # the head of iteration 1 predicts other codes
    for k, (data, extra, msg) in enumerate(((tmp_path / "other.jsonl", [], "was made for the manifest"),
                                            (tmp_path / "m.jsonl", ["model.rvq.codebook_size=64"], "codebook_size is 32, expected 64"),
                                            (tmp_path / "m.jsonl", ["model.rvq.codebook_size=64", f"run_dir={tmp_path / 'it2'}"], "belongs to another model"))):
        bad = subprocess.run([sys.executable, "-m", "muq.train", "--data", str(data), *common, f"run_dir={tmp_path / f'bad{k}'}", *extra],
                             capture_output=True, text=True, timeout=600)
        assert bad.returncode != 0 and msg in bad.stderr, bad.stderr[-2000:]
    other = tmp_path / "other_ck"; torch.manual_seed(5); MuQ(MuQConfig.preset("tiny")).save_pretrained(other)
    bad = subprocess.run([sys.executable, "-m", "muq.train", "--data", str(tmp_path / "m.jsonl"), *common, f"data.targets_ckpt={other}", f"run_dir={tmp_path / 'bad9'}"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "targets from another producer: ckpt is" in bad.stderr

@pytest.mark.slow
def test_targets_split_over_processes_equal_one_process(tiny, tmp_path):
    "--part i/n and torchrun write disjoint shards of one store, merged by its index: the same tokens as one process."
    items = tones(tmp_path, [3.0, 4.0, 2.5, 5.0, 3.5]); write_manifest(items, tmp_path / "m.jsonl"); tiny.save_pretrained(tmp_path / "ck")
    args = lambda out, *x: [sys.executable, "-m", "muq.targets", "--kind", "mel", "--ckpt", str(tmp_path / "ck"), "--data", str(tmp_path / "m.jsonl"),
                            "--window", "2", "--shard_size", "2", "--out", str(out), *x]
    for cmd in (args(tmp_path / "one"), args(tmp_path / "parts", "--part", "0/2"), args(tmp_path / "parts", "--part", "1/2")):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300); assert r.returncode == 0, r.stderr[-2000:]
    from test_train import torchrun
    tr = torchrun()[:-2] + ["-m", "muq.targets"] + args(tmp_path / "ranks")[3:]
    r = subprocess.run(tr, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}); assert r.returncode == 0, r.stderr[-2000:]
    one = TargetStore.open(tmp_path / "one", items)
    for name in ("parts", "ranks"):
        s = TargetStore.open(tmp_path / name, items)
        assert len(s) == len(one) == 5 and all(np.array_equal(s.get(item_key(it)), one.get(item_key(it))) for it in items)
        assert sorted(p.name for p in (tmp_path / name).glob("part_*.json")) == ["part_0of2.json", "part_1of2.json"]
        assert json.loads((tmp_path / name / "store.json").read_text())["shards"] == []        # each part lists its own shards
    r = subprocess.run([sys.executable, "-m", "muq.targets", "--kind", "latent", "--ckpt", str(tmp_path / "ck"), "--data", str(tmp_path / "m.jsonl"),
                        "--out", str(tmp_path / "lat"), "--part", "1/2", "--window", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "run part 0 first" in r.stderr
