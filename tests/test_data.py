"The built-in corpus and the data layer (issue: corpus and data pipeline)."
import hashlib, json, os, subprocess, sys
from pathlib import Path
import numpy as np, pytest, soundfile as sf, torch
from muq.corpus import CorpusConfig, build_corpus, split_of, PROGRAM_RANGE
from muq.render import chroma, estimate_key, stratified_splits, render_note
from muq.data import (CropDataset, WindowDataset, SkipCounter, make_loader, manifest_from_folder, read_manifest, KEYS,
                      gtzan_manifest, giantsteps_manifest, mtt_manifest, nsynth_manifest)

ARGS = dict(minutes=1.5, notes=12, seed=7)

@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    build_corpus(CorpusConfig(**ARGS), d, verbose=False)
    return d

def all_items(d, kind="clips"):
    return sum([read_manifest(d / f"{kind}_{s}.jsonl") for s in ("train", "valid", "test")], [])

def digest(d, kind):
    return {Path(it["path"]).name: hashlib.sha1(Path(it["path"]).read_bytes()).hexdigest() for it in all_items(d, kind)}

def test_cli_renders_the_same_corpus_in_another_process(corpus_dir, tmp_path):
    out = tmp_path / "c2"
    r = subprocess.run([sys.executable, "-m", "muq.corpus", "--preset", "demo", "minutes=1.5", "--notes=12", "--overrides", "seed=7",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert digest(out, "clips") == digest(corpus_dir, "clips") and len(digest(out, "clips")) == 9
    assert digest(out, "notes") == digest(corpus_dir, "notes")
    r2 = subprocess.run([sys.executable, "-m", "muq.corpus", "minutes=-1", "--out", str(out)], capture_output=True, text=True)
    assert r2.returncode != 0 and "need minutes >= 0" in r2.stderr
    r3 = subprocess.run([sys.executable, "-m", "muq.corpus", "seed=8", "--out", str(out)], capture_output=True, text=True)
    assert r3.returncode != 0 and f"{out}: holds a corpus with other settings" in r3.stderr      # names the folder ...
    assert "seed=7" in r3.stderr and "asked for" in r3.stderr and "seed=8" in r3.stderr          # ... what it holds, and what was asked

def test_labels_agree_with_the_audio(corpus_dir):
    clips = all_items(corpus_dir)
    shifts = []
    for it in clips:
        x, sr = sf.read(it["path"], dtype="float32")
        assert sr == 24000 and len(x) == it["num_samples"] == 240000
        c = chroma(x)
        shifts.append(int(np.argmax([np.corrcoef(np.roll(it["pc_hist"], s), c)[0, 1] for s in range(12)])))
        assert KEYS[estimate_key(it["pc_hist"])[0]] == it["key"] and it["key_corr"] >= 0.8
        assert -21 < 10 * np.log10(np.mean(x.astype(np.float64) ** 2)) < -19     # loudness normalised to -20 dBFS
    assert np.mean(np.array(shifts) == 0) >= 0.85, shifts                       # chroma lines up with the labelled notes
    notes = all_items(corpus_dir, "notes")
    hits = [int(np.argmax(chroma(sf.read(n["path"], dtype="float32")[0]))) == n["pitch"] % 12 for n in notes]
    assert len(notes) == 12 and np.mean(hits) >= 0.75, hits

def test_splits_disjoint_by_work(corpus_dir):
    works = {s: {it["work"] for it in read_manifest(corpus_dir / f"clips_{s}.jsonl")} for s in ("train", "valid", "test")}
    assert not works["train"] & works["valid"] and not works["train"] & works["test"] and not works["valid"] & works["test"]
    assert all(split_of(it["work"]) == it["split"] for it in all_items(corpus_dir))
    notes = all_items(corpus_dir, "notes")
    assert {n["pitch"] for n in notes if n["split"] != "train"} <= {n["pitch"] for n in notes if n["split"] == "train"}
    assert all(len(it["captions"]) == 4 and it["instrument"] in it["captions"][0] for it in all_items(corpus_dir))

def test_rerun_does_no_work(corpus_dir):
    before = {p: p.stat().st_mtime_ns for p in corpus_dir.rglob("*.flac")}
    s = build_corpus(CorpusConfig(**ARGS), corpus_dir, verbose=False)
    assert s["clips"] == 9 and {p: p.stat().st_mtime_ns for p in corpus_dir.rglob("*.flac")} == before

def test_broken_files_are_skipped_and_counted(corpus_dir, tmp_path):
    items = all_items(corpus_dir)[:9]
    bad = tmp_path / "bad.flac"; bad.write_bytes(b"\x00" * 100)
    items = items + [dict(path=str(bad), num_samples=240000, sample_rate=24000)]       # 10% broken
    for workers in (0, 2):
        skips, n = SkipCounter(), 0
        for b in make_loader(CropDataset(items, seconds=2.0), batch_size=3, num_workers=workers, drop_last=False):
            skips.update(b); n += len(b["wav"])
            assert torch.isfinite(b["wav"]).all() and b["wav"].shape[1] == 48000
        assert (n, skips.count) == (9, 1)

def test_distributed_shards_disjoint_and_cover(corpus_dir):
    ds = CropDataset(all_items(corpus_dir) * 2, seconds=0.5)     # 18 items over 3 ranks
    seen = []
    for rank in range(3):
        loader = make_loader(ds, batch_size=2, rank=rank, world_size=3, drop_last=False)
        loader.sampler.set_epoch(1)
        seen.append([i for b in loader for i in b["idx"].tolist()])
    assert all(len(s) == 6 for s in seen)
    assert sorted(sum(seen, [])) == list(range(18))

def test_window_dataset(corpus_dir):
    items = all_items(corpus_dir)
    w = WindowDataset(items[:2], seconds=4.0)
    assert len(w) == 4 and w[1]["wav"].shape == (96000,) and w[1]["window"] == 1
    info = (items[0]["num_samples"], items[0]["sample_rate"])
    assert torch.equal(w[1]["wav"], CropDataset(items[:1], seconds=4.0).read(items[0], 96000, info)[:96000])   # window 1 = 4..8 s

def _wav(p, seconds=1.0, sr=22050, fmt=None):
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(p, np.random.default_rng(0).normal(0, 0.1, int(seconds * sr)).astype(np.float32), sr, format=fmt)

def test_adapters_on_generated_fixtures(tmp_path):
    # GTZAN
    for g in ("blues", "jazz"):
        for k in range(2): _wav(tmp_path / "gtzan" / g / f"{g}.0000{k}.wav")
    gz = gtzan_manifest(tmp_path / "gtzan")
    assert [e["genre"] for e in gz] == ["blues", "blues", "jazz", "jazz"] and gz[0]["num_samples"] == 22050
    # GiantSteps key
    gs = tmp_path / "gs"
    for name, key in [("a", "Db major"), ("b", "e minor")]:
        _wav(gs / "audio" / f"{name}.mp3", sr=44100, fmt="MP3")
        (gs / "annotations" / "key").mkdir(parents=True, exist_ok=True); (gs / "annotations" / "key" / f"{name}.key").write_text(key)
    assert [(e["key"], e["key_index"]) for e in giantsteps_manifest(gs)] == [("C# major", 1), ("E minor", 16)]
    # MagnaTagATune
    mtt = tmp_path / "mtt"
    rows = [["clip_id", "guitar", "rock", "quiet", "mp3_path"], ["1", "1", "0", "1", "f/a.mp3"], ["2", "1", "1", "0", "f/b.mp3"]]
    for r in rows[1:]: _wav(mtt / r[-1], sr=16000, fmt="MP3")
    (mtt / "annotations_final.csv").write_text("\n".join("\t".join(r) for r in rows) + "\n")
    m = mtt_manifest(mtt, n_top=2)
    assert [e["tags"] for e in m] == [["guitar", "quiet"], ["guitar"]]
    # NSynth
    ns = tmp_path / "nsynth"
    ex = {"guitar_acoustic_000-060-100": dict(pitch=60, velocity=100, instrument_family_str="guitar")}
    (ns / "nsynth-valid").mkdir(parents=True); (ns / "nsynth-valid" / "examples.json").write_text(json.dumps(ex))
    _wav(ns / "nsynth-valid" / "audio" / "guitar_acoustic_000-060-100.wav", seconds=4.0, sr=16000)
    n = nsynth_manifest(ns)
    assert n[0]["pitch"] == 60 and n[0]["split"] == "valid" and n[0]["num_samples"] == 64000
    # generic folder, with one broken file skipped
    (tmp_path / "gtzan" / "jazz" / "broken.wav").write_bytes(b"RIFF....")
    assert len(manifest_from_folder(tmp_path / "gtzan")) == 4


def test_stratified_note_splits_and_playable_ranges():
    cfg = CorpusConfig(notes=2400, seed=0)
    labs = [render_note(cfg, j, audio=False)[1] for j in range(cfg.notes)]
    for key in ("pitch", "family"):
        sp = stratified_splits([l[key] for l in labs], (5, 2, 3))
        train = {l[key] for l, s in zip(labs, sp) if s == "train"}
        assert {l[key] for l, s in zip(labs, sp) if s != "train"} <= train          # every valid/test class occurs in train
        assert 0.25 < sp.count("test") / len(sp) < 0.32 and 0.15 < sp.count("valid") / len(sp) < 0.22
    assert all(PROGRAM_RANGE[l["program"]][0] <= l["pitch"] <= PROGRAM_RANGE[l["program"]][1] for l in labs)

def test_data_layer_does_not_import_the_generator():
    "Manifest I/O and vocabularies live in the data layer; the trainer and the probe reach the corpus only from their CLIs."
    code = "import sys, muq.data, muq.train, muq.probe; print(sorted(m for m in sys.modules if m in ('muq.corpus', 'music21', 'fluidsynth')))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr

@pytest.mark.slow
def test_a_corpus_configuration_is_never_redefined(tmp_path):
    "A second configuration (the probe's default after the demo's) gets a folder of its own; the first one's splits stay byte-identical."
    env = {**os.environ, "MUQ_DATA": str(tmp_path)}
    cli = lambda *a: subprocess.run([sys.executable, "-m", "muq.corpus", "--preset", "eval", *a], capture_output=True, text=True, env=env, timeout=600)
    r = cli("--minutes", "1", "notes=20", "mix_notes=0"); assert r.returncode == 0, r.stderr[-2000:]
    demo = Path(r.stdout.strip().splitlines()[-1]); snap = {p.name: p.read_bytes() for p in demo.glob("*.jsonl")}
    assert demo.parent == tmp_path and len(snap) == 6 and json.loads((demo / "corpus_config.json").read_text())["minutes"] == 1.0
    r = cli("minutes=2", "--notes=20", "mix_notes=0"); assert r.returncode == 0, r.stderr[-2000:]
    full = Path(r.stdout.strip().splitlines()[-1])
    assert full != demo and {p.name: p.read_bytes() for p in demo.glob("*.jsonl")} == snap
    assert len(read_manifest(full / "clips_test.jsonl")) >= len(read_manifest(demo / "clips_test.jsonl"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("render-")] == [demo.parent.joinpath(json.loads(
        (demo / "corpus_config.json").read_text())["audio"]).resolve().name]                    # one render folder serves both

def test_a_score_whose_music21_cache_file_is_half_written_still_parses(monkeypatch, tmp_path):
    "music21 caches parsed scores as pickles in a folder every process shares; one still being written must not fail a render."
    import music21
    from muq.render import score_notes
    path = str(music21.corpus.getComposer('bach')[0])
    score_notes.cache_clear(); want = score_notes(path)                      # parses (and caches) it once
    cache_dir = tmp_path / "m21"; cache_dir.mkdir()
    monkeypatch.setattr(music21.environment.Environment, "getRootTempDir", lambda self: cache_dir)
    pickle_path = music21.converter.PickleFilter(path, False).status()[2]
    assert Path(pickle_path).parent == cache_dir
    Path(pickle_path).write_bytes(b"\x1f\x8b" + b"\x00" * 10)                # what a reader sees mid-write: truncated
    score_notes.cache_clear(); got = score_notes(path)
    assert np.array_equal(got[0], want[0]) and got[1] == want[1]

def test_mixed_notes_put_a_target_over_another_instrument(tmp_path):
    "The pitch task with head-room: a louder target note over two softer notes of another family, 3 to 12 semitones away."
    from muq.corpus import FAMILIES, corpus_name
    from muq.render import render_mix_note
    cfg = CorpusConfig.preset("tiny", mix_notes=6)
    for j in range(6):
        x, lab = render_mix_note(cfg, j)
        _, again = render_mix_note(cfg, j, audio=False)
        assert again == lab and len(x) == int(cfg.note_seconds * cfg.sample_rate) and np.isfinite(x).all()
        assert lab["program"] in FAMILIES[lab["family"]] and lab["accompaniment_program"] not in FAMILIES[lab["family"]]
        lo, hi = PROGRAM_RANGE[lab["accompaniment_program"]]
        reach = sum(3 <= abs(p - lab["pitch"]) <= 12 for p in range(lo, hi + 1)) >= 2   # the other range allows 3 to 12 semitones
        assert len(lab["accompaniment"]) == 2 and all(abs(p - lab["pitch"]) >= 3 and (abs(p - lab["pitch"]) <= 12 or not reach)
                                                      for p in lab["accompaniment"])
        c = chroma(x[: int(1.4 * cfg.sample_rate)])
        assert lab["pitch"] % 12 in np.argsort(c)[::-1][:3]                # the target sounds (among the 3 strongest classes)
    s = build_corpus(cfg, tmp_path / "c", verbose=False)
    assert s["mix_notes"] == 6 and sum(len(read_manifest(tmp_path / "c" / f"mixnotes_{k}.jsonl")) for k in ("train", "valid", "test")) == 6
    # a setting added later enters a corpus's name only when used: corpora rendered before keep theirs
    assert corpus_name(CorpusConfig.preset("demo_eval")) == "eval-40min-2400notes-8807a22a"              # the demo's, as before
    assert corpus_name(CorpusConfig.preset("eval", minutes=40)) != "eval-40min-2400notes-8807a22a"

def test_the_diverse_corpus_is_the_same_works_with_more_variety(tmp_path):
    "diverse=True (chapter 2b): the same works, splits and labels, with a program per part, drums, dynamics and a room."
    from muq.corpus import corpus_name, render_name
    from muq.render import DIVERSE_KEYS, clip_plan, render_clip
    plain, div = CorpusConfig(**ARGS), CorpusConfig(**ARGS, diverse=True)
    assert render_name(CorpusConfig.preset("demo_eval")) == "render-0bea8aca"       # plain corpora keep their audio folders
    assert corpus_name(div) != corpus_name(plain) and render_name(div) != render_name(plain)
    for i in range(20):                                       # the plain draws come first: same work, excerpt, tempo, key
        p, d = clip_plan(plain, i), clip_plan(div, i)
        assert {k: v for k, v in d.items() if k not in DIVERSE_KEYS} == p and set(DIVERSE_KEYS) <= set(d)
    s = build_corpus(div, tmp_path / "d", verbose=False)
    items = all_items(tmp_path / "d")
    assert s["clips"] == len(items) > 3 and all(set(DIVERSE_KEYS) <= set(it) for it in items)
    assert any(it["drums"] is not None for it in items) and any(it["wet"] > 0 for it in items)
    it = next(it for it in items if it["drums"] is not None)
    x, _ = sf.read(tmp_path / "d" / it["path"])
    i = int(it["id"].removeprefix("clip"))
    y, lab = render_clip(plain, i)
    keep = lambda l: {k: l[k] for k in ("work", "key", "bpm", "family", "split")}
    assert keep(lab) == keep(it) and y is not None and len(x) == len(y)
    assert np.abs(x - y).mean() > 0.01                                          # the same excerpt, another sound
