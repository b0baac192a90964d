"""Decoding + resampling throughput of the data layer: clips/s and audio-seconds/s per loader worker.
Usage: .venv/bin/python tools/bench_loader.py [MANIFEST] [--workers 0 1 2] [--seconds 10]"""
import argparse, time, torch
from muq.data import CropDataset, make_loader

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest", nargs="?", default="data/corpus/clips_train.jsonl")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batches", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    for w in a.workers:
        ds = CropDataset(a.manifest, seconds=a.seconds)
        loader = make_loader(ds, batch_size=8, num_workers=w, drop_last=False)
        it = iter(loader); next(it)                      # start-up (worker spawn) not counted
        t, n = time.time(), 0
        for k, b in zip(range(a.batches), it): n += len(b["wav"])
        dt = time.time() - t
        print(f"workers={w}: {n / dt:7.1f} clips/s, {n * a.seconds / dt:8.1f} audio-s/s"
              f" ({n * a.seconds / dt / max(w, 1):.1f} audio-s/s per worker; source FLAC 24 kHz, crop {a.seconds:g} s)")
