"""`make ablations` end to end in its --quick mode (toy sizes: the pipeline, not the numbers): Mel-RVQ iteration 1,
a second target condition, the per-layer probe that picks iteration 2's layer, a target store of that layer, iteration 2
from scratch and from iteration 1, the random-weight reference, the table; then a re-run that reuses everything."""
import json, math, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def ablations(out):
    r = subprocess.run([sys.executable, "-m", "muq.study", "ablations", "--quick", "--conditions", "random_projection", "--out", str(out)],
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
    # the rows behind the tables: one score x100 per condition, seed and task, and each trained run's diagnostics
    assert len(res["rows"]) == 5 * 3 and all(abs(r["score"] - 100 * R[r["condition"]][r["task"]][r["seed"]]) < 1e-9 for r in res["rows"])
    tr = {t["condition"]: t for t in res["training"]}
    assert set(tr) == set(R) - {"random_init"}
    for name, t in tr.items():
        assert t["updates"] == res["steps"] and len(t["ce_per_codebook"]) == len(t["unigram_entropy"]) == 8, (name, t)
        assert all(0 < h <= math.log(256) + 1e-6 for h in t["unigram_entropy"]), (name, t["unigram_entropy"])
    md = res["markdown"]
    assert set(md) == {"table", "vs_random_init", "vs_mel_rvq_8", "training"} and md["table"].count("\n") == 2 + 4
    assert not (ROOT / "nbs" / "results" / "ablations.json").exists() or str(tmp_path) not in (ROOT / "nbs" / "results" / "ablations.json").read_text()
    # a re-run trains and probes nothing again (4 trainings, 6 probes) and writes the same table
    again, log = ablations(out)
    assert again["reused"] == 10, log[-2000:]
    assert again["results"] == R and again["layer"] == res["layer"]

def test_ablation_calls_beyond_the_seed_spread():
    "The versus table: a difference beyond the combined std over seeds is called, one inside it is a tie, on rows whose answer is known."
    from muq import study_report as report
    rows = [dict(condition=c, seed=s, task=t, score=v) for c, t, vals in (
        ("mel_rvq_8", "key", [30, 32]), ("mel_rvq_8", "pitch", [90, 92]),
        ("random_init", "key", [20, 22]), ("random_init", "pitch", [91, 93]),        # key: +10 ± 1.4 better; pitch: -1 ± 1.4 tie
        ("single_vq", "key", [40, 60]), ("single_vq", "pitch", [70, 72])) for s, v in enumerate(vals)]   # key: +29 ± 10.0 better; pitch: -21 ± 1.4 worse
    d = dict(rows=rows)
    vs = {l.split(" | ")[0].strip("| "): l for l in report.ablation_versus(d, "random_init").splitlines()[2:]}
    assert "+10.0 ± 1.4 **better**" in vs["mel_rvq_8"] and "-1.0 ± 1.4 |" in vs["mel_rvq_8"] and vs["mel_rvq_8"].endswith("| 1 / 1 / 0 |")
    assert "+29.0 ± 10.0 **better**" in vs["single_vq"] and "-21.0 ± 1.4 **worse**" in vs["single_vq"]
    assert "random_init" not in vs
    table = report.ablation_table(d).splitlines()
    assert table[0] == "| condition | key | pitch |" and table[2] == "| mel_rvq_8 | 31.0 ± 1.0 | 91.0 ± 1.0 |"
