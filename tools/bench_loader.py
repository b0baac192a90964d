"""Loader throughput: audio-seconds per second per worker for random crops, from a manifest of files and from tar shards,
and how many workers one GPU needs at a given training rate. Prints figures; asserts nothing.

    .venv/bin/python tools/bench_loader.py                       # 30-s crops of 3-minute songs (built once from the corpus)
    .venv/bin/python tools/bench_loader.py --workers 1 2 --rate 2000

The songs are the built-in corpus's clips joined into 3-minute FLAC files (what full-length music looks like to the
loader); the shards are the same songs packed by `python -m muq.shards`. `--rate`: the training rate to feed, in
audio-s/s (about 2000 for the large model, b8 x 30 s, bf16, on one H100; measure yours with tools/bench_gpu.py).
"""
import argparse, math, time
from pathlib import Path
import numpy as np, soundfile as sf, torch
from muq.corpus import builtin_corpus
from muq.data import CropDataset, make_loader, read_manifest, write_manifest
from muq.shards import pack_shards, shard_items

ROOT = Path(__file__).resolve().parents[1]

def songs(out: Path, n: int, minutes: float) -> Path:
    "n songs of `minutes` each, joined from the built-in corpus's clips (made once)."
    m = out / "songs.jsonl"
    if m.exists(): return m
    clips = read_manifest(builtin_corpus('pretrain', verbose=False) / "clips_train.jsonl"); per = int(minutes * 60 // 10); items = []
    for i in range(n):
        x = np.concatenate([sf.read(clips[(i * per + j) % len(clips)]["path"], dtype="float32")[0] for j in range(per)])
        p = out / f"song{i:03d}.flac"; sf.write(p, x, 24000, format="FLAC", subtype="PCM_16")
        items.append(dict(path=str(p), num_samples=len(x), sample_rate=24000))
    write_manifest(items, m); return m

def rate(items, workers: int, seconds: float, batches: int) -> float:
    "Audio-seconds per second of random `seconds` crops through a loader with `workers` workers (start-up not counted)."
    loader = make_loader(CropDataset(items, seconds=seconds), batch_size=8, num_workers=workers, drop_last=False, persistent_workers=False)
    it = iter(loader); next(it); t, n = time.time(), 0
    for _, b in zip(range(batches), it): n += len(b["wav"])
    return n * seconds / (time.time() - t)

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--songs", type=int, default=24); ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--rate", type=float, default=2000.0, help="training rate to feed, audio-s/s")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_loader"))
    a = ap.parse_args()
    torch.set_num_threads(1); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    manifest = songs(out, a.songs, a.minutes); pack_shards(read_manifest(manifest), out / "shards", shard_mb=64, verbose=False)
    sources = {"manifest": read_manifest(manifest), "shards": shard_items(str(out / "shards"))}
    print(f"{a.songs} songs of {a.minutes:g} min (FLAC, 24 kHz); random {a.seconds:g}-s crops, batches of 8, torch threads 1")
    for name, items in sources.items():
        for w in a.workers:
            r = rate(items, w, a.seconds, a.batches); per = r / max(w, 1)
            print(f"{name:>8} workers={w}: {r:8.1f} audio-s/s ({per:.1f} per worker) -> {math.ceil(a.rate / per)} workers for {a.rate:g} audio-s/s")
