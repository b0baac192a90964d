"The training CLI end to end, in real processes: configs, resume, preemption, DDP, bad data, checkpoints that survive anything."
import json, os, resource, signal, subprocess, sys
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from muq import MuQ
from muq.corpus import CorpusConfig, build_corpus
from muq.data import read_manifest, write_manifest

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
            "data.crop_seconds=1.2", "data.batch_size=2", "data.num_workers=0", "log_every=1", "model.rvq.codebook_size=64", *extra]

def metrics(run, stage="muq"):
    return [json.loads(l) for l in open(run / stage / "metrics.jsonl")]

@pytest.fixture(scope="module")
def rvq_run(data):
    run = data.parent / "rvq_run"
    r = cli("--stage", "rvq", "--preset", "tiny", "--data", str(data), "--run_dir", str(run), "optim.steps=40", "data.batch_size=4",
            "data.num_workers=0", "log_every=1", "model.rvq.codebook_size=64")
    m = [x for x in metrics(run, "rvq") if "loss" in x]
    assert len(m) == 40 and "rvq done: 40 steps" in r.stdout
    assert {x["lr"] for x in m} == {1e-3}                                    # the official Mel-RVQ schedule: constant
    first, last = sum(x["l1"] for x in m[:5]) / 5, sum(x["l1"] for x in m[-5:]) / 5
    assert last < 0.95 * first, (first, last)                                 # the tokenizer learns to reconstruct
    assert abs(m[-1]["l1_after_8"] - m[-1]["l1"]) < 0.2 and all(0 < m[-1][f"usage_{k}"] <= 1 and m[-1][f"perplexity_{k}"] >= 1 for k in range(8))
    return run

def test_cli_rvq_then_muq_end_to_end(data, rvq_run):
    run = data.parent / "e2e"
    r = cli(*muq_args(data, run, "optim.steps=4", "diag_every=2"))
    assert "muq done: 4 steps" in r.stdout and str(run / "muq" / "final") in r.stdout
    m = metrics(run)
    assert [x["step"] for x in m if "loss" in x] == [1, 2, 3, 4] and all(0 <= x["acc"] <= 1 and x["lr"] > 0 for x in m if "loss" in x)
    diag = [x for x in m if "erank_0" in x]
    assert [x["step"] for x in diag] == [2, 4] and all(1 <= x["erank_2"] <= 64 and 0 < x["top_pc_2"] <= 1 for x in diag)
    model = MuQ.from_pretrained(run / "muq" / "final")
    assert model.tokenize(torch.randn(1, 24000) * 0.1).shape == (1, 8, 25)
    cfg = json.loads((run / "muq" / "config.json").read_text())
    assert cfg["optim"]["steps"] == 4 and cfg["model"]["rvq"]["codebook_size"] == 64
    ck = torch.load(sorted((run / "muq" / "checkpoints").glob("*.pt"))[-1], weights_only=True)     # plain data only
    assert {"model", "optim", "step", "epoch", "pos", "rng", "config", "counters"} <= set(ck)
    before, final = (run / "muq" / "summary.json").read_text(), (run / "muq" / "final" / "model.safetensors").stat().st_mtime_ns
    r = cli(*muq_args(data, run, "optim.steps=4", "diag_every=2"))          # re-running a finished command changes nothing
    assert "muq: already complete (4 steps)" in r.stdout and "new --run_dir starts over" in r.stdout
    assert (run / "muq" / "summary.json").read_text() == before and json.loads(before)["final_loss"] is not None
    assert (run / "muq" / "final" / "model.safetensors").stat().st_mtime_ns == final

def test_settings_syntax(data, rvq_run, tmp_path):
    "--overrides with quoting, --section.key=value and bare items all reach the config; values may hold spaces."
    spaced = tmp_path / "a folder with spaces"; spaced.mkdir()
    write_manifest(read_manifest(data), spaced / "m.jsonl")                  # absolute paths inside
    run = data.parent / "syntax"
    cli(*muq_args(data, run, "--overrides", f"keep_last=2 data.manifest='{spaced / 'm.jsonl'}'", "--optim.steps=2", "seed=5"))
    cfg = json.loads((run / "muq" / "config.json").read_text())
    assert (cfg["keep_last"], cfg["optim"]["steps"], cfg["seed"], cfg["data"]["manifest"]) == (2, 2, 5, str(spaced / "m.jsonl"))

@pytest.mark.parametrize("item,msg", [("optim.lrr=1", "unknown key 'optim.lrr'"), ("model=tiny", "'model' is a section (MuQConfig)"),
                                      ("optim.steps=ten", "optim.steps='ten': expected int"), ("bf16=maybe", "expected bool"),
                                      ("--run=x", "unknown key 'run'; valid in TrainConfig: ['activation_checkpointing', 'bf16'"),
                                      ("--run x", "unknown key 'run'"), ("stray", "unrecognised argument 'stray'"),
                                      ("--", "unrecognised argument '--'")])
def test_bad_settings_are_rejected(item, msg, tmp_path):
    "Refused with the setting named, before the built-in corpus would be rendered (no data folder appears)."
    r = cli("--stage", "muq", *item.split(), check=False, env={**os.environ, "MUQ_DATA": str(tmp_path / "data")}, cwd=tmp_path)
    assert r.returncode != 0 and msg in r.stderr, r.stderr[-1000:]
    assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()

def test_resume_after_sigkill_is_exact(data, rvq_run):
    ref = data.parent / "ref"; cli(*muq_args(data, ref, "optim.steps=6", "ckpt_every=2"))
    run = data.parent / "killed"
    r = cli(*muq_args(data, run, "optim.steps=6", "ckpt_every=2"), check=False, env={**os.environ, "MUQ_CRASH_AT": "written:step_0000004.pt"})
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]                # killed right after checkpoint 4 was renamed into place
    assert not (run / "muq" / "final").exists() and sorted(c.name for c in (run / "muq" / "checkpoints").iterdir()) == ["step_0000002.pt", "step_0000004.pt"]
    cli(*muq_args(data, run, "optim.steps=6", "ckpt_every=2"))
    a, b = load_file(str(ref / "muq" / "final" / "model.safetensors")), load_file(str(run / "muq" / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def test_chaos_kills_and_a_truncated_checkpoint(data, rvq_run):
    "SIGKILL at 5 chosen moments (two while a checkpoint is being written), a truncated newest checkpoint, resume each time: same weights as one run."
    args = lambda run: muq_args(data, run, "optim.steps=14", "ckpt_every=1", "keep_last=2")
    ref = data.parent / "chaos_ref"; cli(*args(ref))
    run = data.parent / "chaos"; ck = run / "muq" / "checkpoints"
    for at in ("writing:step_0000002.pt", "written:step_0000005.pt", "writing:step_0000007.pt", "written:step_0000009.pt",
               "written:step_0000012.pt"):
        r = cli(*args(run), check=False, env={**os.environ, "MUQ_CRASH_AT": at})
        assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
        step = int(at.split("_")[1][:7]); names = sorted(os.listdir(ck))
        steps = [int(n[5:12]) for n in names if n.startswith("step_") and n.endswith(".pt")]
        if at.startswith("writing"):                                      # the temporary is complete, the rename never happened
            assert max(steps) == step - 1 and [n for n in names if n.startswith(f".step_{step:07d}.pt.") and n.endswith(".tmp")]
        else: assert max(steps) == step
        for f in ck.glob("step_*.pt"): torch.load(f, weights_only=True)                   # whatever is there reads
    newest = sorted(ck.glob("step_*.pt"))[-1]; newest.write_bytes(newest.read_bytes()[:1000])   # and a truncated newest one
    r = cli(*args(run))
    assert "unreadable checkpoint skipped" in r.stderr and "muq done: 14 steps" in r.stdout
    assert not [n for n in os.listdir(ck) if n.endswith(".tmp")]                         # stale temporaries cleaned up
    a, b = load_file(str(ref / "muq" / "final" / "model.safetensors")), load_file(str(run / "muq" / "final" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)

def test_malicious_checkpoint_in_a_run_dir_is_never_executed(data, rvq_run, tmp_path):
    run = data.parent / "evil"; cli(*muq_args(data, run, "optim.steps=2", "ckpt_every=1"))
    marker = tmp_path / "pwned"
    class Payload:
        def __reduce__(self): return (Path.write_text, (marker, "x"))
    torch.save({"model": Payload()}, run / "muq" / "checkpoints" / "step_0000009.pt")
    r = cli(*muq_args(data, run, "optim.steps=3", "ckpt_every=1"))
    assert not marker.exists() and "step_0000009.pt: unreadable checkpoint skipped" in r.stderr and "muq done: 3 steps" in r.stdout
    assert (run / "muq" / "checkpoints" / "step_0000009.pt.unreadable").exists()

def test_unwritable_and_full_run_dirs_fail_clearly(data, rvq_run, tmp_path):
    afile = tmp_path / "afile"; afile.write_text("not a folder")
    r = cli(*muq_args(data, afile / "run", "optim.steps=2"), check=False)
    assert r.returncode != 0 and "cannot write to the run directory" in r.stderr
    def small_files():                      # a file-size limit: checkpoint writes fail like on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    run = data.parent / "full"
    r = cli(*muq_args(data, run, "optim.steps=3", "ckpt_every=1"), check=False, preexec_fn=small_files)
    assert r.returncode != 0 and "cannot write the checkpoint" in r.stderr and "no partial file was left" in r.stderr
    assert os.listdir(run / "muq" / "checkpoints") == []

def test_sigterm_saves_and_exits_cleanly(data, rvq_run):
    "SIGTERM (preemption) during step 3: that step completes, its checkpoint is saved, the process exits 0 without a final model."
    run = data.parent / "term"
    r = cli(*muq_args(data, run, "optim.steps=500", "ckpt_every=1000"), env={**os.environ, **TERM_AT_STEP_3})
    ck = sorted((run / "muq" / "checkpoints").glob("*.pt"))
    assert [torch.load(c, weights_only=True)["step"] for c in ck] == [3], ck
    assert not (run / "muq" / "final").exists() and not (run / "muq" / "summary.json").exists()     # the same command resumes
    assert "muq stopped by SIGTERM after step 3 of 500" in r.stdout

TERM_AT_STEP_3 = dict(MUQ_CRASH_AT="step:3", MUQ_CRASH_SIGNAL="TERM")   # crash_point: SIGTERM at the start of step 3

def torchrun(*args, **kw):
    "Two CPU ranks; `--standalone` lets the rendezvous bind a free port itself (no pick-then-bind race between tests)."
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "muq.train", *args]

def test_torchrun_two_ranks_equal_one_rank_accumulating(data, rvq_run):
    common = ["optim.steps=3", "data.batch_size=1", "ckpt_every=100", *NO_DROPOUT]
    one = data.parent / "one"; cli(*muq_args(data, one, *common, "data.accum=2"))
    two = data.parent / "two"
    r = subprocess.run(torchrun(*muq_args(data, two, *common, "data.accum=1")), capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("muq done") == 1                             # only rank 0 reports and writes
    a, b = load_file(str(one / "muq" / "final" / "model.safetensors")), load_file(str(two / "muq" / "final" / "model.safetensors"))
    # parameters match; BatchNorm running statistics do not (under DDP they are rank 0's, broadcast each forward)
    params = [k for k in a if a[k].is_floating_point() and "running_" not in k]
    diff = max((a[k] - b[k]).abs().max().item() for k in params)
    assert len(params) > 50 and diff < 5e-5, diff       # Adam moves each weight by ~lr=1e-3 per step
    assert sorted(p.name for p in (two / "muq").iterdir()) == ["checkpoints", "config.json", "data_stats.json", "final", "metrics.jsonl", "summary.json", "tb"]

def test_sigterm_to_one_rank_stops_both(data, rvq_run):
    "TERM to rank 1 only, during step 3: the ranks agree on stopping, rank 0 saves step 3, both exit 0 (no deadlock in the checkpoint's collectives)."
    run = data.parent / "term2"
    r = subprocess.run(torchrun(*muq_args(data, run, "optim.steps=2000", "ckpt_every=5000", "data.batch_size=1")), capture_output=True, text=True,
                       timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", **TERM_AT_STEP_3, "MUQ_CRASH_RANK": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    ck = sorted((run / "muq" / "checkpoints").glob("*.pt"))
    s = torch.load(ck[-1], weights_only=True)
    assert len(ck) == 1 and s["step"] == 3 and len(s["rng"]) == 2
    assert not (run / "muq" / "final").exists()                        # preempted: no final model, the run can resume

def test_broken_files_train_to_the_end(data, rvq_run, tmp_path):
    items = read_manifest(data)
    for k in range(2):
        (tmp_path / f"bad{k}.flac").write_bytes(b"garbage")
        items.append(dict(path=str(tmp_path / f"bad{k}.flac"), num_samples=240000, sample_rate=24000))
    write_manifest(items, tmp_path / "broken.jsonl")
    run = data.parent / "broken"
    r = cli(*muq_args(tmp_path / "broken.jsonl", run, "optim.steps=8", "data.batch_size=3"))
    s = json.loads((run / "muq" / "summary.json").read_text())
    assert s["steps"] == 8 and s["skipped_files"] >= 1 and "files skipped" in r.stdout

def test_whole_bad_batches_are_skipped_and_only_bad_files_is_an_error(data, rvq_run, tmp_path):
    bad = []
    for k in range(4):
        (tmp_path / f"bad{k}.wav").write_bytes(b"RIFF....garbage"); bad.append(dict(path=str(tmp_path / f"bad{k}.wav")))
    write_manifest(bad, tmp_path / "allbad.jsonl")
    r = cli(*muq_args(tmp_path / "allbad.jsonl", data.parent / "allbad", "optim.steps=2"), check=False)
    assert r.returncode != 0 and "no readable audio in a whole epoch (4 files skipped)" in r.stderr
    good = read_manifest(data)[:2]
    write_manifest(bad[:2] + good, tmp_path / "mixed.jsonl")          # batch 2: some batches are entirely bad
    r = cli(*muq_args(tmp_path / "mixed.jsonl", data.parent / "mixed", "optim.steps=6"))
    s = json.loads((data.parent / "mixed" / "muq" / "summary.json").read_text())
    assert s["steps"] == 6 and s["skipped_files"] >= 2

def test_persistent_workers_draw_new_crops_each_epoch(data):
    from muq.data import CropDataset, make_loader, set_epoch
    ds = CropDataset(read_manifest(data)[:4], seconds=1.0)
    loader = make_loader(ds, batch_size=2, shuffle=False, num_workers=2)
    assert loader.persistent_workers
    offs = []
    for ep in range(3):
        set_epoch(loader, ep); offs.append(torch.cat([b["offset"] for b in loader]).tolist())
    assert offs[0] != offs[1] and offs[1] != offs[2]
    set_epoch(loader, 1); assert torch.cat([b["offset"] for b in loader]).tolist() == offs[1]

def test_torchrun_with_compile_matches_eager(data, rvq_run):
    "compile=true under DDP: the subsampling and Conformer are compiled in place and the run gives the eager run's weights."
    common = ["optim.steps=3", "data.batch_size=1", "ckpt_every=100", *NO_DROPOUT, "data.accum=1"]
    runs = {}
    for name, extra in (("ddp_eager", []), ("ddp_compiled", ["compile=true", "compile_backend=aot_eager"])):
        run = data.parent / name
        r = subprocess.run(torchrun(*muq_args(data, run, *common, *extra)), capture_output=True, text=True, timeout=900,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert r.returncode == 0, r.stderr[-3000:]
        runs[name] = load_file(str(run / "muq" / "final" / "model.safetensors"))
    a, b = runs["ddp_eager"], runs["ddp_compiled"]
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point()) < 1e-5

def test_rvq_stage_under_torchrun_refuses_clearly(data):
    "The Mel-RVQ trainer is single-process (as the official one): under torchrun it says so instead of training twice."
    r = subprocess.run(torchrun("--stage", "rvq", "--preset", "tiny", "--data", str(data), "--run_dir", str(data.parent / "rvq_ddp"), "optim.steps=2"),
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode != 0 and "--stage rvq is single-process" in r.stderr, r.stderr[-2000:]
    assert not (data.parent / "rvq_ddp" / "rvq" / "rvq.safetensors").exists()
