"""`python -m muq.study curve --quick`: the learning-curve study end to end at toy sizes (the pipeline and the results file's shape,
not the numbers), and a rerun that reuses every training and probe and writes the same numbers."""
import json, math, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

def curve(out, *extra):
    r = subprocess.run([sys.executable, "-m", "muq.study", "curve", "--quick", "--out", str(out), *extra], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return json.loads((out / "curve.json").read_text())

def test_curve_quick(tmp_path):
    d = curve(tmp_path / "curve")
    rows = d["rows"]; keys = {"condition", "updates", "audio_hours", "seed", "task", "score", "valid"}
    assert rows and all(keys <= set(r) for r in rows)
    conds = {(r["condition"], r["updates"], r["seed"]) for r in rows if r["probe"] == "mlp"}
    assert {("mel_rvq", 2, 0), ("mel_rvq", 2, 1), ("mel_rvq", 4, 0), ("random_projection", 2, 0), ("random_projection", 4, 0),
            ("random_init", 0, 0), ("random_init", 0, 1), ("mel_stats", None, 0), ("mel_rvq_codes", None, 0)} <= conds
    assert all(0 <= r["score"] <= 100 and math.isfinite(r["valid"]) for r in rows if r["task"] != "tempo")
    frame = {(r["condition"], r["updates"], r["seed"]) for r in rows if r["task"] == "chord"}      # chapter 8c's frame task
    assert frame == {("mel_rvq", 2, 0), ("mel_rvq", 2, 1), ("mel_rvq", 4, 0), ("random_projection", 2, 0), ("random_projection", 4, 0),
                     ("random_init", 0, 0), ("random_init", 0, 1), ("mel_stats", None, 0), ("mel_stats_w64", None, 0)}
    assert all(r["probe"] == "linear" and r["n_test"] > 0 for r in rows if r["task"] == "chord")
    assert {r["task"] for r in rows} == {"key", "instrument", "chord"} and all(r["audio_hours"] == round(r["updates"] * 16 / 3600, 3) for r in rows if r["updates"])
    v = d["verdicts"]; comps = {x["comparison"] for x in v}
    assert {"muq_vs_random_init", "muq_vs_mel_stats", "random_projection_vs_random_init", "muq_vs_random_projection", "lr_x3_vs_recipe",
            "precise_bn_vs_recipe", "lr_x3_vs_random_init", "precise_bn_vs_random_init"} <= comps
    assert all(x["lo"] <= x["diff"] <= x["hi"] and x["verdict"] in ("better", "worse", "tie") for x in v)
    assert {x["updates"] for x in v if x["comparison"] == "muq_vs_random_init"} == {2, 4}
    assert {(x["comparison"], x["updates"]) for x in v if x["task"] == "chord"} >= {(c, u) for c in ("muq_vs_random_init", "muq_vs_mel_stats") for u in (2, 4)}
    assert {r["layer"] for r in d["layers"] if r["task"] == "key" and r["condition"] == "mel_rvq"} == {"0", "1", "2"}   # the key study
    w = [r for r in rows if r["condition"] == "mel_stats_w64"]                    # the raw mel at MuQ-tiny's width (64)
    assert {r["task"] for r in w} == {"key", "instrument", "chord"} and all(r["updates"] is None for r in w)
    full = {r["task"]: r["score"] for r in rows if r["condition"] == "mel_stats" and r["probe"] == "linear"}
    assert next(r["score"] for r in w if r["task"] == "chord") != full["chord"]      # 64 of 640 dims per frame
    assert {(x["updates"], x["task"]) for x in v if x["comparison"] == "muq_vs_mel_stats_w64"} == {(u, t) for u in (2, 4) for t in ("key", "instrument", "chord")}
    from muq import study_report as report
    assert len(report.width_table(d).splitlines()) == 2 + 3 and "raw mel, 64 dims" in report.width_table(d)
    le = d["label_efficiency"]
    assert {(r["encoder"], r["per_class"]) for r in le} == {(e, n) for e in ("muq", "random_init_seed0") for n in (2, 0)}
    assert all(r["n_train"] <= 2 * 24 for r in le if r["per_class"] == 2)
    tr = {(t["condition"], t["updates"], t["seed"]): t for t in d["training"]}
    t = tr[("mel_rvq", 4, 0)]
    assert len(t["ce_per_codebook"]) == len(t["unigram_entropy"]) == len(t["majority_acc"]) == 8 and all(0 <= a <= 1 for a in t["majority_acc"])
    assert {r["condition"] for r in d["sweep"]} == {"lr_x3", "precise_bn"}
    st = d["sweep_training"]                                                         # precise_bn trains nothing: no row
    assert [t["condition"] for t in st] == ["lr_x3"] and len(st[0]["ce_per_codebook"]) == len(st[0]["unigram_entropy"]) == 8
    pv = d["provenance"]; assert pv["checkpoints"] and all(len(x) == 16 for x in pv["checkpoints"].values()) and pv["rvq"]
    again = curve(tmp_path / "curve")                                               # reuses everything: the same numbers
    strip = lambda doc: {k: doc[k] for k in ("rows", "layers", "verdicts", "label_efficiency", "sweep", "training")}
    assert strip(again) == strip(d)
    part = curve(tmp_path / "curve", "--budgets", "2")                              # one budget again: the other's points are kept
    key = lambda r: json.dumps(r, sort_keys=True)
    assert part["kept"]["budgets"] == [4] and sorted(map(key, part["rows"])) == sorted(map(key, d["rows"]))
    assert part["kept"]["provenance_by_budget"] == {"4": d["provenance"]}           # the kept point keeps what produced it
    assert part["label_efficiency"] == d["label_efficiency"]                        # measured at 4 updates: kept, not redone at 2
    n = sum(1 for r in d["rows"] if r["updates"] in (None, 0))
    assert part["kept"]["baselines_equal"] == f"{n} of {n} baseline scores equal to the kept file's (largest difference 0.00)"
    assert sorted(map(key, part["verdicts"])) == sorted(map(key, d["verdicts"])) and {t["updates"] for t in part["training"]} == {2, 4}
    # a second pretraining seed for the sweep needs the recipe's own second seed at the sweep budget
    r = subprocess.run([sys.executable, "-m", "muq.study", "curve", "--quick", "--out", str(tmp_path / "curve"), "--sweep_seeds", "2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode != 0 and "--seeds_upto 4" in r.stderr, r.stderr[-2000:]
    two = curve(tmp_path / "curve", "--seeds_upto", "4", "--sweep_seeds", "2")
    assert ("mel_rvq", 4, 1) in {(x["condition"], x["updates"], x["seed"]) for x in two["rows"]}
    assert {(x["condition"], x["seed"]) for x in two["sweep"]} == {(c, s) for c in ("lr_x3", "precise_bn") for s in (0, 1)}
    assert [x for x in two["sweep"] if x["seed"] == 0] == d["sweep"]                 # seed 0 reused, not trained again
    sweep_cmp = lambda doc: sorted(key(x) for x in doc["verdicts"] if x["comparison"].startswith(("lr_x3", "precise_bn")))
    assert sweep_cmp(two) == sweep_cmp(d)                                           # verdicts stay seed 0 against seed 0
    assert sorted((t["condition"], t["seed"]) for t in two["sweep_training"]) == [("lr_x3", 0), ("lr_x3", 1)]
    lr_row = next(l for l in report.sweep_table(two).splitlines() if l.startswith("| lr_x3 |"))
    assert lr_row.count("±") == 2                                                    # key and instrument: mean ± std over 2 seeds
    one = curve(tmp_path / "curve", "--budgets", "2,4", "--sweep", "lr_x3")          # a subset of the sweep: the others stay
    assert sorted(map(key, one["sweep"])) == sorted(map(key, two["sweep"])) and one["kept_sweep"] == ["lr_x3 seed 1", "precise_bn seed 0", "precise_bn seed 1"]
    assert sorted(map(key, one["verdicts"])) == sorted(map(key, two["verdicts"]))
    # the diversity point: Mel-RVQ and MuQ on the diverse rendering of the pretraining corpus, judged like the sweep
    div = curve(tmp_path / "curve", "--sweep", "diverse_corpus,diverse_corpus_rvq600,rvq_600_steps")
    assert {x["seed"] for x in div["sweep"] if x["condition"] == "diverse_corpus"} == {0}
    comps = {x["comparison"] for x in div["verdicts"]}
    assert {"diverse_corpus_vs_recipe", "diverse_corpus_vs_random_init", "diverse_corpus_rvq600_vs_rvq_600_steps"} <= comps
    assert "rvq_600_steps_vs_diverse_corpus_rvq600" not in comps                    # the pair is judged one way
    dc, pc = div["diverse_corpus"], div["pretrain_corpus"]
    assert dc["folder"] != pc["folder"] and dc["train_clips"] > 0
    cfg = json.loads((tmp_path / "curve" / "sweep" / "diverse_corpus" / "muq" / "config.json").read_text())
    assert dc["folder"] in cfg["data"]["manifest"] and cfg["rvq_ckpt"].endswith("rvq_diverse/rvq/rvq.safetensors")
    assert {"rvq_diverse", "rvq600_diverse", "rvq600"} <= set(div["rvq"])
    new = ("diverse_corpus", "diverse_corpus_rvq600", "rvq_600_steps")
    assert sorted(map(key, [x for x in div["sweep"] if x["condition"] not in new])) == sorted(map(key, one["sweep"]))

def test_curve_with_a_changed_recipe(tmp_path):
    "--recipe: every MuQ training of the curve gets the settings, the results say so, and a study folder keeps one recipe."
    out = tmp_path / "lr"
    d = curve(out, "--budgets", "2", "--seeds_upto", "0", "--no_sweep", "--recipe", "optim.lr=3e-3")
    runs = sorted(out.glob("*/u2/seed*/muq/config.json"))
    assert [p.parts[-5] for p in runs] == ["mel_rvq", "random_projection"]
    assert all(json.loads(p.read_text())["optim"]["lr"] == 3e-3 for p in runs)
    assert d["recipe"].endswith("changed for every MuQ training: optim.lr=3e-3") and {r["updates"] for r in d["rows"]} == {None, 0, 2}
    assert json.loads((out / "recipe.json").read_text()) == ["optim.lr=3e-3"]
    for recipe, said in (("optim.lr=1e-3", "holds the runs of recipe changes ['optim.lr=3e-3']"), ("optim.lr", "not key=value")):
        r = subprocess.run([sys.executable, "-m", "muq.study", "curve", "--quick", "--out", str(out), "--no_sweep", "--recipe", recipe],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert r.returncode != 0 and said in r.stderr, r.stderr[-2000:]
    old = tmp_path / "old"; (old / "mel_rvq" / "u2" / "seed0" / "muq").mkdir(parents=True)   # runs from before folders were marked
    r = subprocess.run([sys.executable, "-m", "muq.study", "curve", "--quick", "--out", str(old), "--recipe", "optim.lr=3e-3"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "holds the runs of recipe changes []" in r.stderr, r.stderr[-2000:]
