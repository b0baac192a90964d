"The training CLI end to end, in real processes (issue: pretraining at any scale)."
import json, os, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from muq import MuQ
from muq.corpus import CorpusConfig, build_corpus, read_manifest, write_manifest
from muq.train import TrainConfig, _finish_step, resolve_config

pytestmark = pytest.mark.slow
NO_DROPOUT = ["model.encoder.dropout=0", "model.encoder.attention_dropout=0", "model.encoder.activation_dropout=0", "model.encoder.conv_dropout=0"]

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    build_corpus(CorpusConfig(minutes=1.0, notes=0, seed=3), d, verbose=False)
    items = sum([read_manifest(d / f"clips_{s}.jsonl") for s in ("train", "valid", "test")], [])
    write_manifest(items, d / "all.jsonl")
    return d / "all.jsonl"

def cli(*args, env=None, check=True, **kw):
    r = subprocess.run([sys.executable, "-m", "muq.train", *args], capture_output=True, text=True, timeout=600, env=env, **kw)
    if check: assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r

def muq_args(data, run, *extra):
    return ["--stage", "muq", "--preset", "tiny", "--data", str(data), "--run_dir", str(run), f"rvq_ckpt={run.parent / 'rvq_run' / 'rvq' / 'rvq.safetensors'}",
            "data.crop_seconds=1.2", "data.batch_size=2", "data.num_workers=0", "log_every=1", *extra]

@pytest.fixture(scope="module")
def rvq_run(data):
    run = data.parent / "rvq_run"
    r = cli("--stage", "rvq", "--preset", "tiny", "--data", str(data), "--run_dir", str(run), "optim.steps=12", "data.batch_size=4",
            "data.num_workers=0", "log_every=1", "model.rvq.codebook_size=64")
    m = [json.loads(l) for l in open(run / "rvq" / "metrics.jsonl")]
    assert len(m) == 12 and m[-1]["loss"] < m[0]["loss"]          # the tokenizer learns
    assert "rvq done: 12 steps" in r.stdout
    return run

def test_cli_rvq_then_muq_end_to_end(data, rvq_run):
    run = data.parent / "e2e"
    r = cli(*muq_args(data, run, "optim.steps=4", "model.rvq.codebook_size=64"))
    assert "muq done: 4 steps" in r.stdout and str(run / "muq" / "final") in r.stdout
    m = [json.loads(l) for l in open(run / "muq" / "metrics.jsonl")]
    assert [x["step"] for x in m] == [1, 2, 3, 4] and all(0 <= x["acc"] <= 1 and x["lr"] > 0 for x in m)
    model = MuQ.from_pretrained(run / "muq" / "final")
    assert model.tokenize(torch.randn(1, 24000) * 0.1).shape == (1, 8, 25)
    cfg = json.loads((run / "muq" / "config.json").read_text())
    assert cfg["optim"]["steps"] == 4 and cfg["model"]["rvq"]["codebook_size"] == 64
    ck = torch.load(sorted((run / "muq" / "checkpoints").glob("*.pt"))[-1], weights_only=False)
    assert {"model", "optim", "step", "epoch", "pos", "rng", "config", "counters"} <= set(ck)

def test_bad_overrides_are_rejected(data):
    r = cli("--stage", "muq", "optim.lrr=1", check=False)
    assert r.returncode != 0 and "unknown key 'optim.lrr'" in r.stderr and "lr" in r.stderr

def test_resume_after_sigkill_is_exact(data, rvq_run):
    ref = data.parent / "ref"; cli(*muq_args(data, ref, "optim.steps=6", "ckpt_every=2", "model.rvq.codebook_size=64"))
    run = data.parent / "killed"
    p = subprocess.Popen([sys.executable, "-m", "muq.train", *muq_args(data, run, "optim.steps=6", "ckpt_every=2", "model.rvq.codebook_size=64")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not list((run / "muq" / "checkpoints").glob("step_0000004.pt")) and time.time() - t0 < 300: time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (run / "muq" / "final").exists()
    cli(*muq_args(data, run, "optim.steps=6", "ckpt_every=2", "model.rvq.codebook_size=64"))
    a, b = load_file(str(ref / "muq" / "final" / "model.safetensors")), load_file(str(run / "muq" / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def test_sigterm_saves_and_exits_cleanly(data, rvq_run):
    run = data.parent / "term"
    p = subprocess.Popen([sys.executable, "-m", "muq.train", *muq_args(data, run, "optim.steps=500", "ckpt_every=1000", "model.rvq.codebook_size=64")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (run / "muq" / "metrics.jsonl").exists() or not (run / "muq" / "metrics.jsonl").read_text().count("\n") >= 2:
        time.sleep(0.05); assert time.time() - t0 < 300
    p.send_signal(signal.SIGTERM); out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    ck = sorted((run / "muq" / "checkpoints").glob("*.pt"))
    assert len(ck) == 1 and 2 <= torch.load(ck[0], weights_only=False)["step"] < 500

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def test_torchrun_two_ranks_equal_one_rank_accumulating(data, rvq_run):
    common = ["optim.steps=3", "data.batch_size=1", "model.rvq.codebook_size=64", "ckpt_every=100", *NO_DROPOUT]
    one = data.parent / "one"; cli(*muq_args(data, one, *common, "data.accum=2"))
    two = data.parent / "two"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                        "--master_port", str(free_port()), "-m", "muq.train", *muq_args(data, two, *common, "data.accum=1")],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("muq done") == 1                             # only rank 0 reports and writes
    a, b = load_file(str(one / "muq" / "final" / "model.safetensors")), load_file(str(two / "muq" / "final" / "model.safetensors"))
    # parameters match; BatchNorm running statistics do not (under DDP they are rank 0's, broadcast each forward)
    params = [k for k in a if a[k].is_floating_point() and "running_" not in k]
    diff = max((a[k] - b[k]).abs().max().item() for k in params)
    assert len(params) > 50 and diff < 5e-5, diff       # Adam moves each weight by ~lr=1e-3 per step
    assert sorted(p.name for p in (two / "muq").iterdir()) == ["checkpoints", "config.json", "final", "metrics.jsonl", "summary.json", "tb"]

def test_broken_files_train_to_the_end(data, rvq_run, tmp_path):
    items = read_manifest(data)
    for k in range(2):
        (tmp_path / f"bad{k}.flac").write_bytes(b"garbage")
        items.append(dict(path=str(tmp_path / f"bad{k}.flac"), num_samples=240000, sample_rate=24000))
    write_manifest(items, tmp_path / "broken.jsonl")
    run = data.parent / "broken"
    r = cli(*muq_args(tmp_path / "broken.jsonl", run, "optim.steps=8", "data.batch_size=3", "model.rvq.codebook_size=64"))
    s = json.loads((run / "muq" / "summary.json").read_text())
    assert s["steps"] == 8 and s["skipped_files"] >= 1 and "files skipped" in r.stdout

def test_nonfinite_losses_are_skipped_then_stop():
    cfg = TrainConfig(max_nonfinite=3); model = torch.nn.Linear(2, 2); opt = torch.optim.SGD(model.parameters(), 0.1)
    w = model.weight.detach().clone(); counters = dict(nonfinite=0, audio_s=0.0)
    for k in range(2):
        step, m = _finish_step(cfg, model, opt, [torch.tensor(float("nan"))], [{}], 1.0, 5, counters, 1)
        assert step == 5 and m["nonfinite_steps"] == k + 1 and torch.equal(model.weight, w)
    with pytest.raises(FloatingPointError, match="3 consecutive non-finite losses"):
        _finish_step(cfg, model, opt, [torch.tensor(float("inf"))], [{}], 1.0, 5, counters, 1)
