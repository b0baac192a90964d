"""The sharded data path end to end, in real processes: packing (killed and resumed), every stage trained from shards, torchrun with
fewer shards than ranks x workers, exact resume, too many bad samples, and target tokens packed in the shards."""
import json, os, signal, subprocess, sys
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from muq.corpus import CorpusConfig, build_corpus
from muq.data import read_manifest, write_manifest
from muq.shards import shard_items

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

def run(module, *args, check=True, timeout=600, **kw):
    r = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)
    if check: assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    build_corpus(CorpusConfig(minutes=1.5, notes=0, seed=4), d, verbose=False)
    items = sum([read_manifest(d / f"clips_{s}.jsonl") for s in ("train", "valid", "test")], [])
    (d / "broken.flac").write_bytes(b"garbage, not audio")
    write_manifest(items[:4] + [dict(path=str(d / "broken.flac"), num_samples=240000, sample_rate=24000)] + items[4:], d / "all.jsonl")
    return d / "all.jsonl"

@pytest.fixture(scope="module")
def shards(corpus):
    out = corpus.parent / "shards"; run("muq.shards", "--data", corpus, "--out", out, "--shard_mb", 0.5)
    return out

def train_args(source, run_dir, *extra, stage="muq"):
    return ["--stage", stage, "--preset", "tiny", "--run_dir", str(run_dir), f"data.shards={source}", "data.crop_seconds=1.2",
            "data.batch_size=2", "data.num_workers=0", "log_every=1", *(["model.rvq.codebook_size=64"] if stage != "mulan" else []), *extra]

def test_pack_killed_and_resumed_equals_one_job(corpus, shards):
    meta = json.loads((shards / "shards.json").read_text())
    assert len(meta["shards"]) >= 3 and meta["done"] == len(read_manifest(corpus))
    assert [s["path"].split("/")[-1] for s in meta["skipped"]] == ["broken.flac"]
    out = corpus.parent / "killed_pack"
    p = subprocess.run([sys.executable, "-m", "muq.shards", "--data", str(corpus), "--out", str(out), "--shard_mb", "0.5"],
                       capture_output=True, env={**os.environ, "MUQ_CRASH_AT": "written:shard-000001.json"})
    assert p.returncode == -signal.SIGKILL           # killed after shard 1's tar and index were written, before the list named it
    listed = json.loads((out / "shards.json").read_text())["shards"]          # only whole shards are listed
    assert [s["name"] for s in listed] == ["shard-000000"] and (out / "shard-000001.tar").exists()
    run("muq.shards", "--data", corpus, "--out", out, "--shard_mb", 0.5)
    again = json.loads((out / "shards.json").read_text())
    assert again["shards"] == meta["shards"] and again["skipped"] == meta["skipped"]
    for s in meta["shards"]:
        assert (out / f"{s['name']}.tar").read_bytes() == (shards / f"{s['name']}.tar").read_bytes()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]

def test_every_stage_trains_from_shards(shards, tmp_path):
    rd = tmp_path / "run"
    run("muq.train", *train_args(shards, rd, "optim.steps=4", "data.batch_size=4", stage="rvq"))
    run("muq.train", *train_args(shards, rd, "optim.steps=3"))
    torch.manual_seed(0)
    run("muq.train", *train_args(shards, rd, "optim.steps=2", "model.text.name=tiny", "model.text.model_dim=64", "data.crop_seconds=2", stage="mulan"))
    for st in ("rvq", "muq", "mulan"):
        s = json.loads((rd / st / "summary.json").read_text()); assert s["steps"] >= 2 and s["skipped_files"] == 0, (st, s)
    assert json.loads((rd / "muq" / "config.json").read_text())["data"]["shards"] == str(shards)

def test_torchrun_with_fewer_shards_than_ranks_times_workers(clean_shard, tmp_path):
    "One shard, 2 ranks x 2 loader workers: every worker has samples to read, none good is reported unreadable, the run finishes."
    rd = tmp_path / "run"
    from test_train import torchrun
    r = subprocess.run(torchrun(*train_args(clean_shard, rd, "optim.steps=20", "data.num_workers=2", "model.targets=random_projection")),
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((rd / "muq" / "summary.json").read_text())
    assert s["steps"] == 20 and s["skipped_files"] == 0 and s["read_files"] == 20 * 2 * 2, s     # steps x ranks x batch

def test_resume_from_shards_after_sigkill_is_exact(shards, tmp_path):
    "The sampler's guarantee carries over to shards: a run killed after a checkpoint and resumed ends with the same weights."
    rd = tmp_path / "rvq"; run("muq.train", *train_args(shards, rd, "optim.steps=4", "data.batch_size=4", stage="rvq"))
    args = lambda d: train_args(shards, d, "optim.steps=6", "ckpt_every=2", f"rvq_ckpt={rd / 'rvq' / 'rvq.safetensors'}")
    ref = tmp_path / "ref"; run("muq.train", *args(ref))
    k = tmp_path / "killed"
    p = subprocess.run([sys.executable, "-m", "muq.train", *args(k)], capture_output=True, env={**os.environ, "MUQ_CRASH_AT": "written:step_0000004.pt"})
    assert p.returncode == -signal.SIGKILL and not (k / "muq" / "final").exists()
    r = run("muq.train", *args(k))
    assert "muq: resumed from the checkpoint of step 4" in r.stdout and "2 of 6 steps to go" in r.stdout, r.stdout[-2000:]
    a, b = load_file(str(ref / "muq" / "final" / "model.safetensors")), load_file(str(k / "muq" / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)

def test_too_many_bad_samples_stop_the_run_with_a_clear_error(shards, tmp_path):
    "Corrupt every FLAC member of two shards of three: past data.max_bad_fraction the run stops and says why."
    import shutil
    bad = tmp_path / "bad_shards"; shutil.copytree(shards, bad)
    items = shard_items(str(bad)); names = sorted({it["shard"] for it in items})[:-1]
    for name in names:
        data = bytearray(Path(name).read_bytes())
        for it in (i for i in items if i["shard"] == name): data[it["member"][0]: it["member"][0] + 64] = b"\0" * 64
        Path(name).write_bytes(bytes(data))
    rd = tmp_path / "run"; run("muq.train", *train_args(shards, rd, "optim.steps=2", "data.batch_size=4", stage="rvq"))
    r = run("muq.train", *train_args(bad, rd, "optim.steps=200", "data.max_bad_fraction=0.3", f"rvq_ckpt={rd / 'rvq' / 'rvq.safetensors'}"),
            check=False)
    assert r.returncode != 0 and "more than data.max_bad_fraction=0.3" in r.stderr, r.stderr[-2000:]

def test_tokens_packed_in_shards_train_like_the_store(corpus, tmp_path):
    from muq import MuQ, MuQConfig
    torch.manual_seed(0); MuQ(MuQConfig.preset("tiny", rvq=dict(codebook_size=64))).save_pretrained(tmp_path / "ck")
    good = [it for it in read_manifest(corpus) if "broken" not in it["path"]]; write_manifest(good, tmp_path / "good.jsonl")
    run("muq.targets", "--kind", "mel", "--ckpt", tmp_path / "ck", "--data", tmp_path / "good.jsonl", "--out", tmp_path / "store", "--window", 5)
    run("muq.shards", "--data", tmp_path / "good.jsonl", "--out", tmp_path / "sh", "--shard_mb", 0.5, "--targets", tmp_path / "store")
    common = ["optim.steps=2", "model.targets=precomputed", "model.encoder.dropout=0", "model.encoder.attention_dropout=0",
              "model.encoder.activation_dropout=0", "model.encoder.conv_dropout=0"]
    run("muq.train", *train_args(tmp_path / "sh", tmp_path / "from_shards", *common))
    assert json.loads((tmp_path / "from_shards" / "muq" / "summary.json").read_text())["steps"] == 2
    from muq.shards import shard_tokens
    from muq.targets import TargetStore, item_key
    import numpy as np
    si = shard_items(str(tmp_path / "sh")); st = shard_tokens(str(tmp_path / "sh"), si, dict(codebook_size=64))
    store = TargetStore.open(tmp_path / "store", good); by_path = {it["path"]: it for it in good}
    assert len(si) == len(good)
    for it in si: assert np.array_equal(st.get(item_key(it)), store.get(item_key(by_path[it["source"]])))   # every sample's own tokens


# --- DataLoader workers reading shards (a forked worker inherits the parent's open shard file) ---

@pytest.fixture(scope="module")
def clean_shard(tmp_path_factory):
    "40 clean 2-second tones (each its own frequency) as FLAC files, packed into one shard."
    import numpy as np, soundfile as sf
    from muq.shards import pack_shards
    d = tmp_path_factory.mktemp("tones"); items = []
    t = np.arange(48000) / 24000
    for k in range(40):
        p = d / f"tone_{k:02d}.flac"; sf.write(p, 0.3 * np.sin(2 * np.pi * (110 + 17 * k) * t), 24000)
        items.append(dict(path=str(p), num_samples=48000, sample_rate=24000))
    write_manifest(items, d / "tones.jsonl")
    pack_shards(items, d / "shards", shard_mb=64, verbose=False)
    assert len(json.loads((d / "shards" / "shards.json").read_text())["shards"]) == 1
    return d / "shards"

def read_epochs(items, workers, epochs=3, world=2):
    "Every batch of `epochs` epochs of each of `world` ranks' loaders, read by `workers` worker processes (the main process opens the shard first)."
    from muq.data import CropDataset, make_loader, member_file, set_epoch
    member_file(items[0]).read(1024)                       # the parent holds the shard open before the workers fork
    seen = []
    for rank in range(world):
        ds = CropDataset(items, seconds=1.2, seed=3)
        loader = make_loader(ds, 4, num_workers=workers, seed=3, rank=rank, world_size=world)
        for epoch in range(epochs):
            set_epoch(loader, epoch)
            for b in loader: seen.append((rank, epoch, b))
    return seen

def original_crop(it, offset):
    from muq.audio import load_audio
    return load_audio(it["source"], 24000, offset=offset / 24000, duration=1.2)[: int(1.2 * 24000)]

@pytest.mark.parametrize("workers", [0, 2, 4])
def test_loader_workers_read_every_shard_sample_once_and_intact(clean_shard, workers):
    items = shard_items(str(clean_shard)); assert len(items) == 40
    seen = read_epochs(items, workers)
    assert [p for *_, b in seen for p in b["bad"]] == []                  # nothing good reported as unreadable
    for epoch in range(3):                                                # each sample once per epoch, over both ranks
        idx = sorted(i for _, e, b in seen if e == epoch for i in b["idx"].tolist())
        assert idx == list(range(40)), (epoch, idx)
    for _, epoch, b in seen[::5]:                                         # and the bytes are the sample's own
        for i, off, w in zip(b["idx"].tolist(), b["offset"].tolist(), b["wav"]):
            assert torch.allclose(w, original_crop(items[i], off), atol=1e-6), (items[i]["path"], epoch)

def test_a_corrupt_member_is_skipped_and_named_by_the_workers(clean_shard, tmp_path):
    import shutil
    bad = tmp_path / "bad"; shutil.copytree(clean_shard, bad)
    items = shard_items(str(bad)); it = items[7]
    tar = Path(it["shard"]); data = bytearray(tar.read_bytes())
    data[it["member"][0]: it["member"][0] + 256] = b"\0" * 256; tar.write_bytes(bytes(data))
    seen = read_epochs(items, 2, epochs=1)
    assert [p for *_, b in seen for p in b["bad"]] == [it["path"]] and it["path"].endswith("shard-000000.tar#000000007")
    assert sorted(i for *_, b in seen for i in b["idx"].tolist()) == [i for i in range(40) if i != 7]

@pytest.mark.parametrize("workers", [2, 4])
def test_training_from_a_shard_with_workers_skips_nothing(clean_shard, tmp_path, workers):
    rd = tmp_path / "run"
    run("muq.train", *train_args(clean_shard, rd, "optim.steps=12", "data.batch_size=4", f"data.num_workers={workers}",
                                 "model.targets=random_projection"))
    s = json.loads((rd / "muq" / "summary.json").read_text())
    assert s["steps"] == 12 and s["skipped_files"] == 0 and s["read_files"] == 48, s

def test_shards_at_a_url_are_copied_once_and_read_like_the_folder(clean_shard, tmp_path):
    from muq.shards import shard_folder
    url = clean_shard.resolve().as_uri()                                  # file:///.../shards, no trailing slash
    local, remote = shard_items(str(clean_shard)), shard_items(url, cache=str(tmp_path / "cache"))
    root = shard_folder(url, cache=str(tmp_path / "cache"))
    assert root.parent == tmp_path / "cache" and root != clean_shard
    assert sorted(p.name for p in root.iterdir()) == sorted(p.name for p in clean_shard.iterdir() if p.suffix in (".json", ".tar"))
    for p in root.iterdir(): assert p.read_bytes() == (clean_shard / p.name).read_bytes(), p.name
    assert len(remote) == len(local) == 40
    assert [(a["member"], a["num_samples"]) for a in remote] == [(b["member"], b["num_samples"]) for b in local]
    mtimes = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}
    assert shard_folder(url + "/", cache=str(tmp_path / "cache")) == root   # the same URL with a slash: the same copy, not fetched again
    assert {p.name: p.stat().st_mtime_ns for p in root.iterdir()} == mtimes
    with pytest.raises(FileNotFoundError, match="no shards.json"):
        shard_folder(str(tmp_path))
