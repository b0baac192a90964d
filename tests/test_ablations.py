"""`make ablations` end to end in its --quick mode (toy sizes: the pipeline, not the numbers): Mel-RVQ iteration 1,
a second target condition, the per-layer probe that picks iteration 2's layer, a target store of that layer, iteration 2
from scratch and from iteration 1, the random-weight reference, the table; then a re-run that reuses everything."""
import json, math, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def ablations(out):
    r = subprocess.run([sys.executable, "tools/ablations.py", "--quick", "--conditions", "random_projection", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), r.stdout

@pytest.mark.slow
def test_ablations_quick(tmp_path):
    out = tmp_path / "ablations"
    res, _ = ablations(out)
    R = res["results"]
    assert list(R) == ["random_projection", "mel_rvq_8", "iter2_scratch", "iter2_from_iter1", "random_init"]
    for name, tasks in R.items():
        assert set(tasks) == {"key", "instrument", "pitch"}, (name, tasks)
        for t, v in tasks.items():
            assert len(v) == res["seeds"] == 1 and all(0 <= x <= 1 and math.isfinite(x) for x in v), (name, t, v)
    # iteration 2 quantises the layer its per-layer probe scored best, and trains on that layer's store
    scores = {int(k): v for k, v in res["layer_scores"].items()}
    assert res["layer"] == max(scores, key=scores.get) and set(scores) == {0, 1, 2}
    store = out / "targets" / f"seed0_layer{res['layer']}"
    assert (store / "store.json").exists() and list(store.glob("shard_*.npy"))
    for name, init in (("iter2_scratch", ""), ("iter2_from_iter1", str(out / "mel_rvq_8" / "seed0" / "muq" / "final"))):
        cfg = json.loads((out / name / "seed0" / "muq" / "config.json").read_text())
        assert cfg["model"]["targets"] == "precomputed" and Path(cfg["data"]["targets_dir"]) == store and cfg["init_ckpt"] == init, name
        assert json.loads((out / name / "seed0" / "muq" / "summary.json").read_text())["skipped_files"] == 0
    # the random-weight reference: iteration 1's architecture, random weights drawn with the same seed
    from safetensors.torch import load_file
    ri, it1 = out / "random_init" / "seed0" / "muq" / "final", out / "mel_rvq_8" / "seed0" / "muq" / "final"
    assert json.loads((ri / "config.json").read_text())["muq_literate"]["encoder"] == json.loads((it1 / "config.json").read_text())["muq_literate"]["encoder"]
    w0, w1 = load_file(ri / "model.safetensors"), load_file(it1 / "model.safetensors")
    assert w0.keys() == w1.keys() and any((w0[k] - w1[k]).abs().max() > 0 for k in w0 if w0[k].is_floating_point())
    # a re-run trains and probes nothing again (4 trainings, 6 probes) and writes the same table
    again, log = ablations(out)
    assert again["reused"] == 10, log[-2000:]
    assert again["results"] == R and again["layer"] == res["layer"]
