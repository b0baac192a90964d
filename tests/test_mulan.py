"MuQ-MuLan: official parity, the loss and its distributed form, padding, clips, text encoders, the training stage and the zero-shot CLI."
import json, math, os, subprocess, sys, textwrap
from pathlib import Path
import pytest, torch, torch.nn.functional as F
from safetensors.torch import load_file
from muq import MuQ, MuQConfig, MuQMuLan, MuQMuLanConfig
from muq.mulan import contrastive_loss, split_clips
from muq.mulan_towers import TextTower, WordTokenizer, minilm_path, xlmr_tokenizer, mean_tokens

FX = Path(__file__).parent / "fixtures"

def test_official_parity_audio_and_text_latents():
    io = load_file(str(FX / "official_mulan_tiny_io.safetensors")); texts = json.loads((FX / "official_mulan_tiny_texts.json").read_text())
    m = MuQMuLan.from_pretrained(FX / "official_mulan_tiny", text_path=str(FX / "official_mulan_tiny_tokenizer"))
    assert not m.config.masked_mean and m.config.text.name == "xlmr" and m.config.clip_secs == 1.0
    with torch.no_grad():
        a, t = m(wavs=io["wav"]), m(texts=texts)
    assert (a - io["audio_latents"]).abs().max() < 1e-5 and (t - io["text_latents"]).abs().max() < 1e-5
    assert a.norm(dim=-1).max() < 1 - 1e-4                      # 3 clips averaged, not re-normalised
    assert m.calc_similarity(a, t).shape == (2, 3) and m.calc_similarity(a[0], t).shape == (3,) and m.calc_similarity(a, t[0]).shape == (2,)

def test_loss_by_hand_and_decoupled_differs_from_symmetric():
    g = torch.Generator().manual_seed(0)
    a, t = F.normalize(torch.randn(5, 8, generator=g), dim=-1), F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    s = 10 * a @ t.T; pos = s.diag()
    off = ~torch.eye(5, dtype=torch.bool)
    by_hand = (-pos + 0.5 * (torch.stack([s[i][off[i]].exp().sum().log() for i in range(5)]) +
                             torch.stack([s[:, i][off[:, i]].exp().sum().log() for i in range(5)]))).mean()
    assert abs(contrastive_loss(a, t, torch.tensor(math.log(10))) - by_hand) < 1e-5
    sym = 0.5 * (F.cross_entropy(s, torch.arange(5)) + F.cross_entropy(s.T, torch.arange(5)))
    assert abs(contrastive_loss(a, t, torch.tensor(math.log(10)), decoupled=False) - sym) < 1e-5
    # with a well-matched pair, the two losses differ: the positive sits in the symmetric denominators only
    a2 = a.clone(); a2[0] = t[0]
    d, c = contrastive_loss(a2, t, torch.tensor(math.log(10))), contrastive_loss(a2, t, torch.tensor(math.log(10)), decoupled=False)
    assert c - d > 0.1

WORKER = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist, torch.nn.functional as F
    from muq.mulan import Contrast
    dist.init_process_group('gloo'); r, w = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0); net = torch.nn.Linear(6, 4); x = torch.randn(8, 6); y = torch.randn(8, 6); c = Contrast()
    half = slice(r * 4, (r + 1) * 4)
    loss = c(F.normalize(net(x[half]), dim=-1), F.normalize(net(y[half]), dim=-1)); loss.backward()
    for p in list(net.parameters()) + [c.temperatures]: dist.all_reduce(p.grad); p.grad /= w      # what DDP does
    if r == 0: torch.save({'loss': loss.detach(), 'grads': [p.grad for p in list(net.parameters()) + [c.temperatures]]}, sys.argv[1])
    dist.barrier()                   # both ranks leave together: a rank whose peer has gone aborts in gloo's teardown
    dist.destroy_process_group()
""")

@pytest.mark.slow
def test_two_ranks_equal_one_rank_on_the_full_batch(tmp_path):
    from muq.mulan import Contrast
    (tmp_path / "w.py").write_text(WORKER)
    from test_train import torchrun
    r = subprocess.run(torchrun()[:-2] + [str(tmp_path / "w.py"), str(tmp_path / "out.pt")], capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    two = torch.load(tmp_path / "out.pt", weights_only=True)
    torch.manual_seed(0); net = torch.nn.Linear(6, 4); x = torch.randn(8, 6); y = torch.randn(8, 6); c = Contrast()
    loss = c(F.normalize(net(x), dim=-1), F.normalize(net(y), dim=-1)); loss.backward()
    assert abs(loss.item() - two["loss"].item()) < 1e-6
    for g1, g2 in zip([p.grad for p in list(net.parameters()) + [c.temperatures]], two["grads"]): assert (g1 - g2).abs().max() < 1e-6

def tiny_cfg(**kw):
    vocab = WordTokenizer.build_vocab(["a slow piano piece in c major", "fast violin", "organ chorale"])
    return MuQMuLanConfig.preset("tiny", text=dict(name="tiny", vocab=list(vocab), model_dim=64), **kw)

def test_padding_mean_official_quirk_vs_masked():
    torch.manual_seed(0)
    for masked in (True, False):
        tower = TextTower(tiny_cfg(masked_mean=masked)).eval()
        with torch.no_grad(): alone, batched = tower(["fast violin"]), tower(["fast violin", "a slow piano piece in c major"])[:1]
        diff = (alone - batched).abs().max().item()
        assert (diff < 1e-5) if masked else (diff > 1e-3), (masked, diff)

def test_clips_wrap_and_average_without_renormalising():
    w = torch.arange(25.0)
    c = split_clips(w, 10)
    assert c.shape == (3, 10) and torch.equal(c[2], torch.cat([w[20:], w[:5]]))
    assert split_clips(torch.arange(3.0), 10).shape == (1, 6)                        # the official quirk for very short audio
    torch.manual_seed(0); m = MuQMuLan(tiny_cfg()).eval(); n = int(m.config.clip_secs * 24000)
    t = torch.arange(int(2.5 * n)) / 24000                       # three clips that sound different
    wav = torch.where(t < 5, 0.3 * torch.sin(2 * math.pi * 110 * t), 0.5 * torch.randn(len(t)))[None]
    with torch.no_grad():
        whole = m(wavs=wav)[0]; per_clip = m.mulan.get_audio_latents(split_clips(wav[0], n))
    assert torch.allclose(whole, per_clip.mean(0), atol=1e-5) and per_clip.norm(dim=-1).sub(1).abs().max() < 1e-5
    assert 1 - whole.norm() > 1e-3                               # the average of different unit vectors, left as it is
    with pytest.raises(ValueError, match="either wavs"): m(wavs=wav, texts=["x"])

def test_tokenizer_missing_and_hash_mismatch_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="huggingface-cli download FacebookAI/xlm-roberta-base"): xlmr_tokenizer(str(tmp_path))
    fake = tmp_path / "minilm"; fake.mkdir(); (fake / "model.safetensors").write_bytes(b"not the model")
    with pytest.raises(ValueError, match="is not the pinned all-MiniLM-L6-v2"): minilm_path(str(fake))
    assert minilm_path().name == "model"                         # the package's own copy passes the same check

def test_minilm_orders_sentence_similarities():
    from transformers import AutoModel, AutoTokenizer
    p = str(minilm_path()); tok, model = AutoTokenizer.from_pretrained(p), AutoModel.from_pretrained(p).eval()
    s = ["a dog runs in the park", "a puppy is running on the grass", "the stock market fell sharply today", "a slow sad piano ballad", "melancholic piano music"]
    enc = tok(s, return_tensors="pt", padding=True)
    with torch.no_grad(): e = F.normalize(mean_tokens(model(**enc).last_hidden_state, enc["attention_mask"].bool()), dim=-1)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[3, 4] > sim[3, 2] + 0.3 and sim[3, 4] > sim[3, 0]

@pytest.mark.slow
def test_train_stage_and_zeroshot_cli_end_to_end(tmp_path):
    from muq.corpus import CorpusConfig, build_corpus
    from muq.data import read_manifest, write_manifest
    c = tmp_path / "corpus"; build_corpus(CorpusConfig(minutes=1.0, notes=0, seed=2), c, verbose=False)
    items = sum([read_manifest(c / f"clips_{s}.jsonl") for s in ("train", "valid", "test")], []); write_manifest(items, c / "all.jsonl")
    write_manifest(items, c / "clips_test.jsonl")
    torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(tmp_path / "muq")
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "muq.train", "--stage", "mulan", "--preset", "tiny", "--data", str(c / "all.jsonl"), "--run_dir", str(run),
                        f"muq_ckpt={tmp_path / 'muq'}", "optim.steps=4", "data.batch_size=3", "data.num_workers=0", "log_every=1", "model.text.name=tiny",
                        "model.text.model_dim=64"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = [json.loads(l) for l in open(run / "mulan" / "metrics.jsonl") if '"loss"' in l]
    assert len(m) == 4 and all(0 <= x["batch_acc"] <= 1 and x["temperature"] > 0 for x in m)
    cfg = json.loads((run / "mulan" / "config.json").read_text())
    assert cfg["model"]["text"]["vocab"][:2] == ["[PAD]", "[UNK]"] and cfg["optim"]["grad_clip"] == 0.5 and cfg["heldout_template"] == 2
    model = MuQMuLan.from_pretrained(run / "mulan" / "final")
    assert model(texts=["a fast piano piece"]).shape == (1, 64)
    z = subprocess.run([sys.executable, "-m", "muq.mulan", "--ckpt", str(run / "mulan" / "final"), "--corpus", str(c)], capture_output=True, text=True, timeout=600)
    assert z.returncode == 0, z.stderr[-3000:]
    assert "| muq_mulan (1 seed) |" in z.stdout and "| untrained towers (1 seed) |" in z.stdout and "tag_roc_auc" in z.stdout
    res = json.loads((run / "mulan" / "zeroshot" / "zeroshot.json").read_text())["rows"]
    r0 = res["muq_mulan"][0]; assert 0 <= r0["tag_roc_auc"] <= 1 and 1 <= r0["t2m_median_rank"] <= len(items) and r0["n_test"] == len(items)

def _mulan_corpus(tmp_path, bad: bool = False):
    from muq.corpus import CorpusConfig, build_corpus
    from muq.data import read_manifest, write_manifest
    c = tmp_path / "corpus"; build_corpus(CorpusConfig(minutes=1.0, notes=0, seed=2), c, verbose=False)
    items = sum([read_manifest(c / f"clips_{s}.jsonl") for s in ("train", "valid", "test")], [])
    if bad: (c / "broken.flac").write_bytes(b"not audio at all"); items[1] = dict(items[1], path=str(c / "broken.flac"))
    write_manifest(items, c / "all.jsonl"); return c / "all.jsonl"

def _mulan_run(data, muq_dir, run, *extra, ranks=1):
    from test_train import torchrun
    args = ["--stage", "mulan", "--preset", "tiny", "--data", str(data), "--run_dir", str(run), f"muq_ckpt={muq_dir}", "data.num_workers=0",
            "log_every=1", "model.text.name=tiny", "model.text.model_dim=64", "ckpt_every=100", *extra]
    cmd = torchrun(*args) if ranks == 2 else [sys.executable, "-m", "muq.train", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return load_file(str(run / "mulan" / "final" / "model.safetensors"))

@pytest.mark.slow
def test_mulan_stage_under_torchrun_trains_muq_with_a_bad_file_on_one_rank(tmp_path):
    "The audio tower's unused parameters are frozen (DDP would fail on its second step), and ranks may send unequal batches."
    data = _mulan_corpus(tmp_path, bad=True); torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(tmp_path / "muq")
    w = _mulan_run(data, tmp_path / "muq", tmp_path / "run", "optim.steps=4", "data.batch_size=3", ranks=2)
    start = load_file(str(tmp_path / "muq" / "model.safetensors"))
    moved = [k for k in start if k.startswith("model.conformer") and (w["mulan.audio.model." + k] - start[k]).abs().max() > 0]
    assert moved, "MuQ is trained with the towers (freeze_muq=false)"
    for k in ("mulan.audio.aggregator.weight", "mulan.audio.model.model.linear.weight"):
        assert k in w                                                  # kept (official checkpoints carry them), never trained
    assert torch.equal(w["mulan.audio.model.model.linear.weight"], start["model.linear.weight"])
    s = json.loads((tmp_path / "run" / "mulan" / "summary.json").read_text()); assert s["steps"] == 4 and s["skipped_files"] >= 1

@pytest.mark.slow
def test_mulan_two_ranks_equal_one_rank_on_the_whole_batch(tmp_path):
    "Each rank computes the loss over all ranks' latents: 2 ranks x 2 clips train exactly as 1 rank x 4 clips (frozen MuQ: no batch statistics)."
    data = _mulan_corpus(tmp_path); torch.manual_seed(0); MuQ(MuQConfig.preset("tiny")).save_pretrained(tmp_path / "muq")
    common = ["optim.steps=3", "model.freeze_muq=true", "optim.lr=1e-3"]
    a = _mulan_run(data, tmp_path / "muq", tmp_path / "one", *common, "data.batch_size=4", "ckpt_every=1")
    b = _mulan_run(data, tmp_path / "muq", tmp_path / "two", *common, "data.batch_size=2", ranks=2)
    trained = [k for k in a if k.startswith(("mulan.text.transformer", "mulan.audio_to_latents", "mulan.contrast"))]
    step1 = torch.load(tmp_path / "one" / "mulan" / "checkpoints" / "step_0000001.pt", weights_only=True)["model"]
    assert min(max((a[k] - step1[k]).abs().max().item() for k in trained), 1.0) > 1e-4          # two more steps moved the weights
    assert len(trained) > 10 and max((a[k] - b[k]).abs().max().item() for k in trained) < 1e-5

def test_zeroshot_command_answers_under_both_names():
    "`python -m muq.zeroshot` is the evaluation's command; `python -m muq.mulan` hands on to it (same checks, same message)."
    outs = [subprocess.run([sys.executable, "-m", m], capture_output=True, text=True, timeout=300) for m in ("muq.zeroshot", "muq.mulan")]
    for r in outs:
        assert r.returncode != 0 and "muq.zeroshot: --ckpt DIR[,DIR...] is required" in r.stderr, r.stderr[-2000:]
