"""The frame-level tasks (muq.frames): labels against the score and the audio rendered from it, the CLI end to end."""
import json, subprocess, sys
import numpy as np, pytest, torch
from muq.audio import load_audio
from muq.corpus import CorpusConfig, build_corpus
from muq.render import clip_plan, _excerpt, _events, render_events, loudness_normalize
from muq.data import read_manifest
from muq.frames import clip_score, clip_labels, corpus_config, CHORDS
from muq.model import MuQ, MuQConfig

CFG = dict(minutes=1.5, notes=0, seed=3, splits=(1, 1, 1))       # 3 / 3 / 3 clips of 10 s


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames_corpus")
    build_corpus(CorpusConfig(**CFG), d, verbose=False)
    return d


def clips(d):
    return sum([read_manifest(d / f"clips_{s}.jsonl") for s in ("train", "valid", "test")], [])


def test_labels_are_the_rendered_score(corpus):
    "The notes clip_score returns are the events the corpus rendered: rendering them again gives the clip's audio back."
    cfg = corpus_config(corpus)
    assert cfg == CorpusConfig(**CFG).override([f"sf2={cfg.sf2}"])
    for it in clips(corpus):
        i = int(it["id"][4:])
        s, plan = clip_score(cfg, i), clip_plan(cfg, i)
        ev, programs = _events(_excerpt(plan, cfg), plan)
        ons = sorted((round(t, 9), p) for t, on, _, p, _ in ev if on)
        offs = sorted((round(t, 9), p) for t, on, _, p, _ in ev if not on)
        assert ons == sorted((round(a, 9), b) for a, _, b in s["notes"])
        assert offs == sorted((round(b, 9), c) for _, b, c in s["notes"])
        x = loudness_normalize(render_events(ev, programs, int(cfg.clip_seconds * cfg.sample_rate), cfg.sf2, cfg.sample_rate))
        wav = load_audio(it["path"]).numpy()
        assert len(wav) == len(x) and np.abs(wav - x).max() < 1e-3        # the file is 16-bit FLAC of the same render
        b = s["beats"]
        np.testing.assert_allclose(np.diff(b), 60 / it["bpm"], atol=1e-9)  # a beat every quarter at the clip's tempo
        assert 0 <= b[0] < 60 / it["bpm"] and b[-1] < cfg.clip_seconds
        inside = s["notes"][s["notes"][:, 0] > 1e-9, 0]                     # (a note held over the clip's start begins at 0)
        assert np.all(np.abs(((inside - b[0]) / (15 / it["bpm"]) + 0.5) % 1 - 0.5) < 1e-6)   # every onset on the beats' 16th grid


def test_frame_labels_of_a_corpus_clip(corpus):
    "Per frame: the top voice is the highest sounding pitch, the chord's pitch classes all sound, a beat marks one frame."
    items = clips(corpus)
    labs = clip_labels(corpus, items)
    cfg = corpus_config(corpus)
    for it, lab in zip(items, labs):
        s = clip_score(cfg, int(it["id"][4:]))
        test_t = (np.arange(250) + 0.5) / 25
        assert lab["beat"].sum() == len(s["beats"]) and len(lab["melody"]) == 250
        for k in range(0, 250, 7):
            sounding = s["notes"][(s["notes"][:, 0] <= test_t[k]) & (test_t[k] < s["notes"][:, 1]), 2]
            assert lab["melody"][k] == (sounding.max() if len(sounding) else 0)
            c = CHORDS[lab["chord"][k]]
            if c != "N":
                root = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"].index(c.split(":")[0])
                third = 4 if c.endswith("maj") else 3
                assert {root, (root + third) % 12, (root + 7) % 12} <= {int(p) % 12 for p in sounding}
    allc = np.concatenate([l["chord"] for l in labs])
    assert 0.05 < (allc < 24).mean() < 0.95                                 # triads and N both occur


@pytest.mark.slow
def test_frames_cli_end_to_end(corpus, tmp_path):
    torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(tmp_path / "ck")
    r = subprocess.run([sys.executable, "-m", "muq.frames", "--ckpt", str(tmp_path / "ck"), "--corpus", str(corpus), "--tasks",
                        "chord,melody", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "out" / "frames.json").read_text())
    assert {(x["encoder"], x["task"]) for x in res["rows"]} == {(e, t) for e in ("muq", "muq_random_init", "mel_local")
                                                                for t in ("chord", "melody")}
    assert all(0 <= x["score"] <= 100 and x["n_test"] == 3 for x in res["rows"])
    for x in res["rows"]:  # the score is the mean of the per-clip scores the verdicts are paired on
        clips = np.array(x["per_clip"], dtype=float)
        assert len(clips) == 3 and abs(100 * np.nanmean(clips) - x["score"]) < 1e-6 and 0 <= x["valid"] <= 100
    v = res["verdicts"]
    assert len(v) == 4 and all(x["lo"] <= x["diff"] <= x["hi"] and x["n"] == 3 for x in v)
    assert "| muq_vs_mel_local |" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "muq.frames", "--ckpt", str(tmp_path / "ck"), "--tasks", "tempo"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--tasks: unknown ['tempo']" in bad.stderr
