"""Tokenization throughput: the mel front end alone vs mel + Mel-RVQ (official sizes), hours of audio per second.
Usage: .venv/bin/python tools/bench_rvq.py [--threads 2] [--seconds 30] [--batch 8]"""
import argparse, time, torch
from muq.audio import mel_tokens
from muq.mel_rvq import MelRVQ, MelRVQConfig

def bench(fn, reps):
    fn(); t = time.perf_counter()
    for _ in range(reps): fn()
    return (time.perf_counter() - t) / reps

if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("--threads", type=int, default=2); ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--batch", type=int, default=8); ap.add_argument("--reps", type=int, default=5); a = ap.parse_args()
    torch.set_num_threads(a.threads); dev = "cuda" if torch.cuda.is_available() else "cpu"
    wav = torch.randn(a.batch, int(a.seconds * 24000), device=dev) * 0.1
    rvq = MelRVQ(MelRVQConfig()).to(dev).eval()
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    t_mel = bench(lambda: (mel_tokens(wav), sync()), a.reps)
    x = mel_tokens(wav)
    t_rvq = bench(lambda: (rvq.encode(x), sync()), a.reps)
    hours = a.batch * a.seconds / 3600
    print(f"device {dev}, {a.threads} threads, batch {a.batch} x {a.seconds:g} s")
    print(f"mel front end      : {hours / t_mel:8.3f} h audio/s")
    print(f"Mel-RVQ (8x1024)   : {hours / t_rvq:8.3f} h audio/s")
    print(f"mel + Mel-RVQ      : {hours / (t_mel + t_rvq):8.3f} h audio/s  (RVQ adds {100 * t_rvq / t_mel:.0f}% to the mel cost)")
