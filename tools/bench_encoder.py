"""Encoder speed: ours (SDPA) vs the official MuQ encoder (HF Wav2Vec2ConformerEncoder, eager attention), same config,
same threads, interleaved runs in separate processes (the official package shares our import name).
Usage: .venv/bin/python tools/bench_encoder.py [--preset tiny|large] [--seconds 10] [--rounds 3]
Needs the official environment built by tools/make_official_fixtures.py (~/.cache/muq-official)."""
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path

def run_side(side, preset, seconds, reps, threads, modes, bf16=False):
    import torch
    torch.set_num_threads(threads); torch.manual_seed(0)
    sys.path.insert(0, str(Path(__file__).parent))
    from make_official_fixtures import TINY, W2V2, STAT
    if preset == "large":
        cfg = dict(TINY, conv_dim=512, encoder_dim=1024, encoder_depth=12, w2v2_config=dict(W2V2, num_attention_heads=16, intermediate_size=4096))
    else: cfg = TINY
    if side == "official":
        from muq import MuQ, MuQConfig
        m = MuQ(MuQConfig(**cfg))
    else:
        from muq import MuQ
        from muq.model import config_from_official
        m = MuQ(config_from_official(json.loads(json.dumps(cfg))))
    wav = torch.randn(1, int(seconds * 24000)) * 0.1
    amp = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    def fwd():
        with torch.no_grad(), amp(): m.eval()(wav)
    def fwd_bwd():
        m.train()
        with amp(): out = m(wav).last_hidden_state
        out.float().pow(2).mean().backward(); m.zero_grad()
    res = {}
    for name, fn in (("forward", fwd), ("forward+backward", fwd_bwd)):
        if name not in modes: continue
        fn(); ts = []
        for _ in range(reps): t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
        res[name] = ts
    print(json.dumps(res))

if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("--preset", default="tiny"); ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3); ap.add_argument("--reps", type=int, default=3); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", default="forward,forward+backward"); ap.add_argument("--side", default="")
    ap.add_argument("--bf16", action="store_true", help="both sides under torch.autocast('cpu', bfloat16)"); a = ap.parse_args()
    if a.side: run_side(a.side, a.preset, a.seconds, a.reps, a.threads, a.modes.split(","), a.bf16); sys.exit(0)
    env_dir = Path(os.environ.get("MUQ_OFFICIAL_ENV", Path.home() / ".cache" / "muq-official"))
    if not (env_dir / "muq").exists(): sys.exit(f"{env_dir}: official environment missing; run tools/make_official_fixtures.py first")
    me = str(Path(__file__).resolve()); args = ["--preset", a.preset, "--seconds", str(a.seconds), "--reps", str(a.reps), "--threads", str(a.threads), "--modes", a.modes] + (["--bf16"] if a.bf16 else [])
    times = {"ours": [], "official": []}
    for r in range(a.rounds):                     # interleaved: ours, official, ours, official, ...
        for side in ("ours", "official"):
            env = {**os.environ, "PYTHONPATH": str(env_dir)} if side == "official" else dict(os.environ)
            out = subprocess.run([sys.executable, "-P", me, "--side", side, *args], capture_output=True, text=True, env=env, cwd="/", check=True)
            times[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"preset {a.preset}, {a.seconds:g} s of audio, {a.threads} threads, {'bf16 autocast' if a.bf16 else 'fp32'}, "
          f"{a.rounds} interleaved rounds x {a.reps} calls (min / median over all calls):")
    for k in a.modes.split(","):
        o, f = [x for t in times["ours"] for x in t[k]], [x for t in times["official"] for x in t[k]]
        print(f"  {k:17s} ours {min(o):7.3f} / {statistics.median(o):7.3f} s   official {min(f):7.3f} / {statistics.median(f):7.3f} s"
              f"   official/ours = {min(f) / min(o):.2f}x (min), {statistics.median(f) / statistics.median(o):.2f}x (median)")
