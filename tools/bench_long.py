"""Long audio: peak memory (RSS) and time of `MuQ.features_long` (30-s windows) against one pass over the whole clip, for
clips of 1, 5 and 20 minutes, each in a fresh process. Prints figures; asserts nothing.

    .venv/bin/python tools/bench_long.py [--preset small] [--minutes 1 5 20] [--single 1 5]
"""
import argparse, json, resource, subprocess, sys, time

CHILD = """
import json, resource, sys, time, torch
from muq.model import MuQ, MuQConfig
preset, minutes, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
torch.manual_seed(0); m = MuQ(MuQConfig.preset(preset)).eval(); wav = torch.randn(int(minutes * 60 * 24000)) * 0.1
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; t = time.time()
with torch.no_grad(): h = m.features_long(wav, window=30.0) if mode == 'windows' else m(wav[None]).last_hidden_state[0]
print(json.dumps(dict(seconds=time.time() - t, peak_mb=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, frames=h.shape[0])))
"""

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small"); ap.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 20])
    ap.add_argument("--single", type=float, nargs="+", default=[1, 5], help="lengths also encoded in one pass")
    a = ap.parse_args()
    print(f"MuQ-{a.preset} (random weights), CPU, {sys.argv[0]}: extra peak RSS over the loaded model and audio, and wall time")
    for minutes in a.minutes:
        for mode in ["windows"] + (["one pass"] if minutes in a.single else []):
            r = subprocess.run([sys.executable, "-c", CHILD, a.preset, str(minutes), "windows" if mode == "windows" else "single"],
                               capture_output=True, text=True)
            if r.returncode: print(f"{minutes:g} min, {mode}: failed ({r.stderr.strip().splitlines()[-1][:120]})"); continue
            d = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"{minutes:5g} min, {mode:>8}: +{d['peak_mb']:7.0f} MB peak, {d['seconds']:6.1f} s, {d['frames']} frames")
