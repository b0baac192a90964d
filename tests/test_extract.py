"""`python -m muq.extract` end to end, in real processes: a folder with a bad file, killed and resumed, an official checkpoint,
the result read with numpy alone and by the probe in place of its own features."""
import csv, json, os, signal, subprocess, sys
from pathlib import Path
import numpy as np, pytest, soundfile as sf, torch
from muq import MuQ, MuQConfig
from muq.audio import load_audio

pytestmark = pytest.mark.slow
FX = Path(__file__).parent / "fixtures"

def songs(d: Path, n=6):
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        t = np.arange(int((4 + 1.5 * i) * 24000)) / 24000
        sf.write(d / f"song{i}.flac", (0.3 * np.sin(2 * np.pi * (150 + 50 * i) * t)).astype(np.float32), 24000)
    sf.write(d / "corrupt.wav", np.full(48000, np.nan, np.float32), 24000, subtype="FLOAT")    # a valid header, samples that are not audio
    return d

def extract(*args, **kw):
    return subprocess.run([sys.executable, "-m", "muq.extract", *map(str, args)], capture_output=True, text=True, timeout=600, **kw)

def read(out: Path) -> dict:
    "path -> array, with numpy and csv only."
    return {r["path"]: np.load(out / f"{r['shard']}.npy")[int(r["start"]): int(r["start"]) + int(r["rows"])] for r in csv.DictReader(open(out / "index.csv"))}

def test_folder_with_a_bad_file_killed_and_resumed(tmp_path):
    d = songs(tmp_path / "music"); torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(tmp_path / "ck")
    args = ["--ckpt", tmp_path / "ck", "--data", d, "--window", 2, "--shard_size", 1, "--workers", 1, "--layers", "0,-1"]
    r = extract(*args, "--out", tmp_path / "ref"); assert r.returncode == 0, r.stderr[-2000:]
    assert "6 files" in r.stdout and "1 unreadable" in r.stdout and "audio-s" in r.stderr          # progress in audio-seconds
    assert [f["path"].endswith("corrupt.wav") for f in json.loads((tmp_path / "ref" / "failed.json").read_text())] == [True]
    p = subprocess.run([sys.executable, "-m", "muq.extract", *map(str, args), "--out", str(tmp_path / "k")], capture_output=True,
                       env={**os.environ, "MUQ_CRASH_AT": "written:shard_00001.json"})
    assert p.returncode == -signal.SIGKILL
    listed = json.loads((tmp_path / "k" / "features.json").read_text())["shards"]
    assert listed == ["shard_00000"]                                   # shard 1 was written, not yet listed
    assert all((tmp_path / "k" / f"{s}.npy").exists() and (tmp_path / "k" / f"{s}.json").exists() for s in listed)   # listed: whole
    r = extract(*args, "--out", tmp_path / "k"); assert r.returncode == 0, r.stderr[-2000:]
    new = int(r.stdout.split("(")[1].split(" new")[0]); assert new == 6 - len(listed) and new < 6
    a, b = read(tmp_path / "ref"), read(tmp_path / "k")
    assert a.keys() == b.keys() and len(a) == 6 and all(np.allclose(a[k], b[k], atol=1e-5) for k in a)
    m = MuQ.from_pretrained(tmp_path / "ck")
    long = m.features_long(load_audio(d / "song5.flac"), window=2.0, layer=[0, -1]).mean(1)      # (layers, dim)
    assert a[str(d / "song5.flac")].shape == (1, 2, 64) and np.allclose(a[str(d / "song5.flac")][0], long.numpy(), atol=1e-5)

def test_official_checkpoint_in_half_precision_and_bf16(tmp_path):
    d = songs(tmp_path / "music", 3); out = {}
    from muq.core import cpu_bf16
    said = "this CPU has no bf16 instructions"
    for name, extra in (("fp32", []), ("fp16", ["--dtype", "float16"]), ("bf16", ["--bf16", "force"]), ("asked", ["--bf16"])):
        r = extract("--ckpt", FX / "official_muq_tiny", "--data", d, "--out", tmp_path / name, "--window", 3, "--workers", 0, *extra)
        assert r.returncode == 0, r.stderr[-2000:]; out[name] = read(tmp_path / name)
        assert (said in r.stderr) == (name == "asked" and not cpu_bf16()), (name, r.stderr[-1000:])
        assert r.stderr.count(said) <= 1                                             # said once, not per file
    for name in ("fp16", "bf16"):
        rel = max(np.linalg.norm(out[name][k] - v) / np.linalg.norm(v) for k, v in out["fp32"].items())
        assert 0 < rel < 0.05, (name, rel)
    same = all(np.array_equal(out["asked"][k], v) for k, v in out["fp32"].items())  # plain --bf16: fp32 where bf16 is emulated
    assert same == (not cpu_bf16()), cpu_bf16()
    bad = extract("--ckpt", FX / "official_muq_tiny", "--data", d, "--out", tmp_path / "fp32", "--window", 5, "--workers", 0)
    assert bad.returncode != 0 and "other settings" in bad.stderr

def test_bf16_settings_are_read_and_resolved(capsys):
    from muq.core import ConfigError, bf16_argv, bf16_mode, cpu_bf16, use_bf16
    assert bf16_argv(["--bf16"]) == ["--bf16", "on"] and bf16_argv(["--bf16", "--out", "x"]) == ["--bf16", "on", "--out", "x"]
    assert bf16_argv(["--bf16", "force", "--out", "x"]) == ["--bf16", "force", "--out", "x"] and bf16_argv(["--out", "x"]) == ["--out", "x"]
    assert [bf16_mode(v) for v in (False, True, "off", "on", "true", "force", None)] == ["", "on", "", "on", "on", "force", ""]
    with pytest.raises(ConfigError, match="bf16='maybe': expected off, on or force"): bf16_mode("maybe")
    assert use_bf16("force", "cpu", "t1") and not use_bf16(False, "cpu", "t1") and use_bf16(True, "cuda", "t1")
    capsys.readouterr()
    assert use_bf16(True, "cpu", "t2") == bool(cpu_bf16()) and use_bf16("on", "cpu", "t2") == bool(cpu_bf16())
    assert capsys.readouterr().err.count("[t2] bf16 asked for") == (0 if cpu_bf16() else 1)

def test_probe_reads_an_extracted_store(tmp_path):
    "The probe takes extracted features in place of its own, and says which files are missing."
    from muq.corpus import CorpusConfig, build_corpus
    c = tmp_path / "eval"; build_corpus(CorpusConfig.preset("tiny", minutes=0, notes=300, pool="eval", splits=(5, 2, 3)), c, verbose=False)
    torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(tmp_path / "ck")
    man = ",".join(str(c / f"notes_{s}.jsonl") for s in ("train", "valid", "test"))
    r = extract("--ckpt", tmp_path / "ck", "--data", man, "--out", tmp_path / "feats", "--window", 2, "--workers", 0); assert r.returncode == 0, r.stderr[-2000:]
    probe = lambda feats: subprocess.run([sys.executable, "-m", "muq.probe", "--ckpt", str(tmp_path / "ck"), "--corpus", str(c), "--tasks", "note_instrument",
                                          "--features", str(feats), "--no-baselines", "--preset", "quick", "--cache", str(tmp_path / "probe")],
                                         capture_output=True, text=True, timeout=600)
    p = probe(tmp_path / "feats"); assert p.returncode == 0, p.stderr[-2000:]
    assert "| muq |" in p.stdout and list((tmp_path / "probe").glob("muq-*.pt"))
    r = extract("--ckpt", tmp_path / "ck", "--data", str(c / "notes_train.jsonl"), "--out", tmp_path / "part", "--window", 2, "--workers", 0)
    p = probe(tmp_path / "part"); assert p.returncode != 0 and "no features for" in p.stderr
