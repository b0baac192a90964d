"""Feature extraction on CPU: `python -m muq.extract` against the per-file loop that the official package's README shows
(read a file, resample to 24 kHz, `model(wav, output_hidden_states=True)`, average over time), on the same files, the
same official-format checkpoint and the same number of threads. Prints audio-seconds per second of each side, their
ratio and the largest difference between their features; then muq.extract's bf16 autocast (and with --bf16_weights,
bfloat16 weights) with the error against fp32. Wall time of whole processes (start-up and model loading
included, as a user meets them). Asserts nothing.

    .venv/bin/python tools/bench_extract.py [--shape medium] [--files 20] [--threads 2] [--long 0] [--bf16_weights]

Files: test clips of the demo's evaluation corpus (10 s each; rendered if missing). `--long K` also times K tracks made
of 12 clips each (2 minutes; muq.extract windows them at 30 s, the official loop encodes each in one pass, so only
their speed is compared). Needs the official environment that tools/make_official_fixtures.py builds.
"""
import argparse, csv, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
SHAPES = dict(tiny=dict(conv_dim=32, encoder_dim=64, encoder_depth=2, heads=4, ffn=128),
              medium=dict(conv_dim=256, encoder_dim=512, encoder_depth=8, heads=8, ffn=2048),
              large=dict(conv_dim=512, encoder_dim=1024, encoder_depth=12, heads=16, ffn=4096))    # the released MuQ's shape

MAKE = """
import sys, json, torch
from muq import MuQ, MuQConfig
cfg = json.loads(sys.argv[1]); torch.manual_seed(0); MuQ(MuQConfig(**cfg)).eval().save_pretrained(sys.argv[2])
"""

OFFICIAL_LOOP = """
import sys, json, time, numpy as np, soundfile as sf, torch, torchaudio
from muq import MuQ
ckpt, manifest, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(threads)
model = MuQ.from_pretrained(ckpt).eval()
feats = {}
for line in open(manifest):
    path = json.loads(line)['path']
    wav, sr = sf.read(path, dtype='float32', always_2d=True)
    wav = torch.from_numpy(wav.mean(1))
    if sr != 24000: wav = torchaudio.functional.resample(wav, sr, 24000)
    with torch.no_grad(): hs = model(wav[None], output_hidden_states=True).hidden_states
    feats[path] = torch.stack([h[0].mean(0) for h in hs]).numpy()
np.savez(out, **{str(i): v for i, v in enumerate(feats.values())}, paths=np.array(list(feats)))
"""

def official_env() -> Path:
    env = Path(os.environ.get("MUQ_OFFICIAL_ENV", Path.home() / ".cache" / "muq-official"))
    if not (env / "muq").exists(): sys.exit(f"{env}: official environment missing; run tools/make_official_fixtures.py first")
    return env

def official(code: str, *args, threads: int) -> float:
    "Run `code` with the official package importable as `muq`; its wall time."
    env = {**os.environ, "PYTHONPATH": str(official_env()), "OMP_NUM_THREADS": str(threads)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-P", "-c", code, *map(str, args)], env=env, cwd="/", check=True)
    return time.perf_counter() - t

def ours(ckpt, manifest, out, threads: int, *extra) -> float:
    "`python -m muq.extract` (mean-pooled, every layer) in its own process; its wall time."
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "muq.extract", "--ckpt", str(ckpt), "--data", str(manifest), "--out", str(out), "--pool", "mean",
                    "--layers", "all", "--window", "30", "--workers", "1", *extra], env={**os.environ, "OMP_NUM_THREADS": str(threads)}, check=True,
                   capture_output=True)
    return time.perf_counter() - t

def read_store(out: Path) -> dict:
    "path -> (layers, dim), with numpy and csv only."
    return {r["path"]: np.load(out / f"{r['shard']}.npy")[int(r["start"])] for r in csv.DictReader(open(out / "index.csv"))}

def rel_err(a: dict, b: dict) -> tuple[float, float]:
    "Largest and mean |a - b| / |b| (per file and layer, L2 norms) over the files both hold."
    e = [np.linalg.norm(a[k] - b[k], axis=-1) / np.linalg.norm(b[k], axis=-1) for k in b]
    return float(np.max(e)), float(np.mean(e))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="medium", choices=list(SHAPES)); ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--long", type=int, default=0)
    ap.add_argument("--bf16_weights", action="store_true", help="also time --dtype bfloat16 weights (their speed depends on the CPU's bf16 instructions)")
    a = ap.parse_args()
    sys.path.insert(0, str(HERE)); from make_official_fixtures import TINY, W2V2
    from muq.core import cpu_bf16
    from muq.corpus import builtin_corpus
    from muq.data import read_manifest, write_manifest
    s = SHAPES[a.shape]
    cfg = dict(TINY, conv_dim=s["conv_dim"], encoder_dim=s["encoder_dim"], encoder_depth=s["encoder_depth"],
               w2v2_config=dict(W2V2, num_attention_heads=s["heads"], intermediate_size=s["ffn"]))
    ev = builtin_corpus("demo_eval", verbose=False)
    items = [dict(path=str((ev / it["path"]).resolve()) if not Path(it["path"]).is_absolute() else it["path"]) for it in read_manifest(ev / "clips_test.jsonl")]
    items = items[: a.files]
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); ck = d / "ckpt"; man = d / "clips.jsonl"; write_manifest(items, man)
        official(MAKE, json.dumps(cfg), ck, threads=a.threads)
        import soundfile as sf
        seconds = sum(sf.info(it["path"]).duration for it in items)
        print(f"{len(items)} files, {seconds / 60:.1f} min of audio; official-format checkpoint, shape {a.shape} {s}; {a.threads} threads; "
              f"CPU bf16 instructions: {cpu_bf16() or 'none (bf16 emulated)'}; wall time of whole processes, load and start-up included", flush=True)
        write_manifest(items[:1], d / "one.jsonl"); sec1 = sf.info(items[0]["path"]).duration
        steady = lambda t, t1: (seconds - sec1) / (t - t1)                  # audio-s/s once started: a 1-file run's time removed
        rate = lambda t, t1: f"{seconds / t:6.1f} audio-s/s ({t:5.1f} s); after start-up {steady(t, t1):6.1f}"
        t_off1 = official(OFFICIAL_LOOP, ck, d / "one.jsonl", d / "official1.npz", a.threads, threads=a.threads)
        t_off = official(OFFICIAL_LOOP, ck, man, d / "official.npz", a.threads, threads=a.threads)
        z = np.load(d / "official.npz"); off = {p: z[str(i)] for i, p in enumerate(z["paths"])}
        runs = {}
        print(f"  {'official per-file loop (fp32)':32s} {rate(t_off, t_off1)}", flush=True)
        variants = (("fp32", "muq.extract (fp32)", []), ("bf16", "muq.extract --bf16 (autocast)", ["--bf16"]))
        if a.bf16_weights: variants += (("bfloat16", "muq.extract --dtype bfloat16", ["--dtype", "bfloat16"]),)
        for name, label, extra in variants:
            t1 = ours(ck, d / "one.jsonl", d / f"{name}_1", a.threads, *extra)
            t = ours(ck, man, d / name, a.threads, *extra); runs[name] = f = read_store(d / name)
            mx, mean = rel_err(f, off if name == "fp32" else runs["fp32"])
            print(f"  {label:32s} {rate(t, t1)}   {t_off / t:.2f}x the official loop ({steady(t, t1) / steady(t_off, t_off1):.2f}x after start-up); "
                  f"{'vs official' if name == 'fp32' else 'vs our fp32'}: max rel. error {mx:.1e}, mean {mean:.1e}", flush=True)
        if a.long:
            tracks, clips = [], [it["path"] for it in read_manifest(man)]
            for k in range(a.long):
                wav = np.concatenate([sf.read(clips[(12 * k + j) % len(clips)], dtype="float32")[0] for j in range(12)])
                p = d / f"track{k}.flac"; sf.write(p, wav, 24000); tracks.append(dict(path=str(p)))
            write_manifest(tracks, d / "tracks.jsonl"); sec = sum(sf.info(t["path"]).duration for t in tracks)
            t_off = official(OFFICIAL_LOOP, ck, d / "tracks.jsonl", d / "official_long.npz", a.threads, threads=a.threads)
            t_ours = ours(ck, d / "tracks.jsonl", d / "long", a.threads)
            print(f"{a.long} tracks of {sec / a.long / 60:.1f} min: official one pass per track {sec / t_off:.1f} audio-s/s, "
                  f"muq.extract (30-s windows) {sec / t_ours:.1f} audio-s/s ({t_off / t_ours:.2f}x)")

if __name__ == "__main__":
    main()
