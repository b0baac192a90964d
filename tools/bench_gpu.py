"""Ours vs the official `muq==0.1.0`, side by side in separate processes (they share the import name `muq`):
inference and a full train step (targets, masking, forward, loss, backward, AdamW step) at b3/b8 x 30 s, fp32 and
bf16, eager or compiled, random weights. Prints seconds per call, audio-seconds per second, model FLOPs utilisation
(true FLOPs: conv subsampling + Conformer + head, counted by FlopCounterMode), peak memory and the ratio.

    .venv/bin/python tools/bench_gpu.py                       # on a GPU: the large model, the whole grid
    .venv/bin/python tools/bench_gpu.py --tiny                # anywhere (CPU): tiny model, 2 s clips, a few steps
    .venv/bin/python tools/bench_gpu.py --sides ours --compile

The official package is installed on first use into its own folder (~/.cache/muq-official, as
tools/make_official_fixtures.py does), never into the project's environment. A figure, not a test: nothing here
asserts a speed."""
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent

def model_cfg(tiny: bool) -> dict:
    sys.path.insert(0, str(HERE))
    from make_official_fixtures import TINY, W2V2
    if tiny: return json.loads(json.dumps(TINY))
    return json.loads(json.dumps(dict(TINY, conv_dim=512, encoder_dim=1024, encoder_depth=12,
                                      w2v2_config=dict(W2V2, num_attention_heads=16, intermediate_size=4096))))

def run_side(a):
    "One process, one side: time every (mode, batch, dtype) of the grid and print one JSON line each."
    import torch
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cpu": torch.set_num_threads(a.threads)
    else: torch.backends.cudnn.benchmark = True
    cfg = model_cfg(a.tiny); torch.manual_seed(0)
    if a.side == "official":
        from muq import MuQ, MuQConfig
        m = MuQ(MuQConfig(**cfg)).to(dev)
        def train_loss(w, g):
            _, _, losses, _ = m.model(w); return sum(losses.values())
        encoder = lambda w: m(w, output_hidden_states=True)
    else:
        from muq import MuQ
        from muq.model import config_from_official
        m = MuQ(config_from_official(cfg)).to(dev)
        if dev.type == "cuda": m.model.conv.to(memory_format=torch.channels_last)
        if a.compile: m.model.conv.compile(); m.model.conformer.compile()
        train_loss = lambda w, g: m.model.train_forward(w, generator=g)["loss"]
        encoder = lambda w: m(w)
    if a.compile and a.side == "official": m.model.conv.compile(); m.model.conformer.compile()   # the same in-place compile
    from muq.runtime import peak_flops
    from muq.stages import encoder_flops
    from muq.model import config_from_official
    flops_fwd = encoder_flops(config_from_official(cfg), a.seconds, backward=False)
    flops_train = encoder_flops(config_from_official(cfg), a.seconds)
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=dev.type == "cuda")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for mode in a.modes.split(","):
        for b in [int(x) for x in a.batches.split(",")]:
            for dtype in a.dtypes.split(","):
                bf16 = dtype == "bf16"
                amp = lambda: torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)
                wav = torch.randn(b, int(a.seconds * 24000), device=dev) * 0.1
                g = torch.Generator(device=dev).manual_seed(0)
                def step():
                    if mode == "infer":
                        m.eval()
                        with torch.no_grad(), amp(): encoder(wav)
                    else:
                        m.train(); opt.zero_grad(set_to_none=True)
                        with amp(): loss = train_loss(wav, g)
                        loss.backward(); opt.step()
                if dev.type == "cuda": torch.cuda.reset_peak_memory_stats()
                try:
                    t0 = time.perf_counter()
                    for _ in range(a.warmup): step()
                    sync(); first = time.perf_counter() - t0; ts = []
                    for _ in range(a.steps): t = time.perf_counter(); step(); sync(); ts.append(time.perf_counter() - t)
                except torch.OutOfMemoryError:
                    print(json.dumps(dict(side=a.side, mode=mode, b=b, dtype=dtype, error="out of memory")), flush=True); continue
                s = statistics.median(ts); peak = peak_flops(dev, bf16)
                fl = b * (flops_fwd if mode == "infer" else flops_train)
                print(json.dumps(dict(side=a.side, mode=mode, b=b, dtype=dtype, compiled=a.compile, s_per_step=s, warmup_s=first,
                                      audio_s_per_s=b * a.seconds / s, tflops=fl / s / 1e12, mfu=fl / s / peak if peak else None,
                                      peak_gb=torch.cuda.max_memory_allocated() / 1e9 if dev.type == "cuda" else None,
                                      device=torch.cuda.get_device_name() if dev.type == "cuda" else f"cpu x{a.threads}")), flush=True)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny model, 2 s clips, b 2, few steps: runs on a CPU in seconds")
    ap.add_argument("--sides", default="ours,official"); ap.add_argument("--modes", default="infer,train")
    ap.add_argument("--batches", default=None); ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--seconds", type=float, default=None); ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="torch.compile the subsampling and the Conformer in place (both sides)")
    ap.add_argument("--side", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.batches = a.batches or ("2" if a.tiny else "3,8"); a.seconds = a.seconds or (2.0 if a.tiny else 30.0)
    a.steps = a.steps or (3 if a.tiny else 10); a.warmup = a.warmup if a.warmup is not None else (1 if a.tiny else 3)
    if a.side: run_side(a); return
    env_dir = Path(os.environ.get("MUQ_OFFICIAL_ENV", Path.home() / ".cache" / "muq-official"))
    if "official" in a.sides:
        sys.path.insert(0, str(HERE)); from make_official_fixtures import ensure_env; ensure_env(env_dir)
    args = [a for a in sys.argv[1:] if a]
    rows = []
    for side in a.sides.split(","):
        env = {**os.environ, "PYTHONPATH": str(env_dir)} if side == "official" else dict(os.environ)
        r = subprocess.run([sys.executable, "-P", __file__, "--side", side, *args], capture_output=True, text=True, env=env,
                           cwd="/" if side == "official" else str(HERE.parent))
        if r.returncode: sys.exit(f"{side} side failed:\n{r.stderr[-3000:]}")
        rows += [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    print(f"{'model ' + ('tiny' if a.tiny else 'large'):11s} {a.seconds:g}-s clips, {rows[0]['device'] if rows else ''}"
          f"{', compiled' if a.compile else ''}; s/step is the median of {a.steps} after {a.warmup} warm-up")
    print(f"{'mode':6s} {'b':>2s} {'dtype':5s} {'side':9s} {'s/step':>8s} {'audio-s/s':>10s} {'TFLOP/s':>8s} {'MFU':>6s} {'peak GB':>8s} {'ours/official':>14s}")
    key = lambda r: (r["mode"], r["b"], r["dtype"])
    for r in rows:
        if "error" in r: print(f"{r['mode']:6s} {r['b']:2d} {r['dtype']:5s} {r['side']:9s} {r['error']}"); continue
        other = [o for o in rows if key(o) == key(r) and o["side"] != r["side"] and "error" not in o]
        ratio = f"{other[0]['s_per_step'] / r['s_per_step']:.2f}x" if r["side"] == "ours" and other else ""
        mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] else "     -"
        peak = f"{r['peak_gb']:8.1f}" if r["peak_gb"] else "       -"
        print(f"{r['mode']:6s} {r['b']:2d} {r['dtype']:5s} {r['side']:9s} {r['s_per_step']:8.3f} {r['audio_s_per_s']:10.1f} {r['tflops']:8.2f} {mfu} {peak} {ratio:>14s}")

if __name__ == "__main__":
    main()
