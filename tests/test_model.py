"The MuQ model: masking, loss, gradients, checkpoints, bad input (issue: MuQ itself)."
import math
import pytest, torch
from muq import MuQ, MuQConfig
from muq.masking import block_mask, token_mask, mask_waveform
from muq.conformer import ConformerConfig, ConformerEncoder, lengths_to_mask

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0); return MuQ(MuQConfig.preset("tiny"))

def wavs(b=2, seconds=4.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(24000 * seconds)) / 24000
    return (0.2 * torch.sin(2 * math.pi * 220 * (1 + torch.rand(b, 1, generator=g)) * t) + 0.02 * torch.randn(b, len(t), generator=g))

def test_mask_statistics_and_alignment():
    g = torch.Generator().manual_seed(0)
    blocks = block_mask(2000, 720000, generator=g)
    assert blocks.shape == (2000, 75) and abs(blocks.float().mean().item() - 0.6) < 0.01
    tm = token_mask(blocks, 750)
    assert torch.equal(tm.view(2000, 75, 10), blocks[..., None].expand(2000, 75, 10))
    w = torch.ones(3, 96000); bl = block_mask(3, 96000, generator=g); mw = mask_waveform(w, bl, generator=g)
    assert torch.equal(mw.view(3, 10, 9600)[~bl], w.view(3, 10, 9600)[~bl]) and (mw.view(3, 10, 9600)[bl] != 1).all()

def test_loss_at_init_is_ln_codebook_size():
    "Uniform logits give ln K; a head that predicts each codebook's histogram of the masked targets gives its entropy."
    torch.manual_seed(1)
    m = MuQ(MuQConfig.preset("tiny", rvq=dict(codebook_size=1024)))
    w = wavs(); blocks = block_mask(2, w.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        m.model.linear.weight.zero_(); m.model.linear.bias.zero_()
        o = m.train_forward(w, blocks=blocks, generator=torch.Generator().manual_seed(0))
        assert abs(o["loss"].item() - math.log(1024)) < 1e-4
        targets = m.tokenize(w); tmask = token_mask(blocks, targets.shape[-1])
        tg = targets.transpose(1, 2)[tmask]                                  # (masked frames, 8)
        p = torch.stack([torch.bincount(tg[:, k], minlength=1024).float() / len(tg) for k in range(8)])
        m.model.linear.bias.copy_(p.clamp_min(1e-12).log().reshape(-1))      # a unigram prior fitted to exactly those frames
        o2 = m.train_forward(w, targets, blocks, generator=torch.Generator().manual_seed(0))
    entropy = -(p * p.clamp_min(1e-12).log()).sum(1).mean().item()
    assert abs(o2["loss"].item() - entropy) < 1e-3 and entropy < math.log(1024) - 1

def test_no_gradient_from_unmasked_frames(tiny):
    w = wavs(); blocks = torch.zeros(2, w.shape[1] // 9600, dtype=torch.bool); blocks[0, 3] = blocks[1, 7] = True
    seen = {}
    def keep(mod, inp, out): seen.update(x=inp[0]); inp[0].retain_grad()
    h = tiny.model.linear.register_forward_hook(keep)
    tiny.zero_grad(); o = tiny.train_forward(w, blocks=blocks); o["loss"].backward(); h.remove()
    g, tm = seen["x"].grad, token_mask(blocks, seen["x"].shape[1])
    assert o["tokens"].item() == 20 and (g[~tm] == 0).all() and (g[tm].abs().sum(-1) > 0).all()   # exactly zero off the mask
    blocks[:] = False; tiny.zero_grad(); o = tiny.train_forward(w, blocks=blocks); o["loss"].backward()
    assert o["loss"].item() == 0 and all(p.grad is None or p.grad.abs().sum() == 0 for p in tiny.parameters())

def test_tokenizer_is_frozen(tiny):
    "No gradient, and training steps (model in train mode, dead-code replacement armed) leave its state untouched."
    assert not any(p.requires_grad for p in tiny.model.rvq.parameters())
    before = {k: v.clone() for k, v in tiny.model.rvq.state_dict().items()}
    tiny.model.rvq.quantizers[0].stale_counter.fill_(99)                     # one more unused batch would replace codes
    before["quantizers.0.stale_counter"] = tiny.model.rvq.quantizers[0].stale_counter.clone()
    opt = torch.optim.AdamW([p for p in tiny.parameters() if p.requires_grad], lr=1e-3); tiny.train()
    for s in range(3):
        o = tiny.train_forward(wavs(seed=s), generator=torch.Generator().manual_seed(s)); opt.zero_grad(); o["loss"].backward(); opt.step()
    after = tiny.model.rvq.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert tiny.tokenize(wavs()).shape == (2, 8, 100)

def test_tokens_under_autocast_equal_fp32_tokens(tiny):
    w = wavs(seed=5); ref = tiny.tokenize(w)
    with torch.autocast("cpu", dtype=torch.bfloat16): got = tiny.tokenize(w)
    assert torch.equal(got, ref)

def test_overfit_one_batch():
    torch.manual_seed(0); m = MuQ(MuQConfig.preset("tiny"))
    w = wavs(seed=3); targets = m.tokenize(w); blocks = block_mask(2, w.shape[1], generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    for _ in range(100):   # same mask and same noise every step: a fixed batch to memorise
        o = m.train_forward(w, targets, blocks, generator=torch.Generator().manual_seed(0)); opt.zero_grad(); o["loss"].backward(); opt.step()
    assert o["acc"].item() > 0.9 and o["acc_per_codebook"].shape == (8,)

def test_save_load_round_trip_exact(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "ck")
    m2 = MuQ.from_pretrained(tmp_path / "ck")
    w = wavs()
    with torch.no_grad():
        a, b = tiny.eval()(w), m2(w)
    assert len(a.hidden_states) == 3 and all(torch.equal(x, y) for x, y in zip(a.hidden_states, b.hidden_states))
    assert torch.equal(tiny.tokenize(w), m2.tokenize(w)) and m2.config == tiny.config

@pytest.mark.parametrize("bad,msg", [(torch.zeros(24000), "must be batched"), (torch.zeros(1, 2, 24000), "shape \\(b, n\\)"),
                                     (torch.zeros(1, 0), "empty"), (torch.full((1, 24000), float("nan")), "NaN"), ([0.0] * 10, "torch.Tensor")])
def test_bad_inputs(tiny, bad, msg):
    with pytest.raises((ValueError, TypeError), match=msg): tiny(bad)

def test_padded_batch_equals_items_alone():
    torch.manual_seed(0); enc = ConformerEncoder(ConformerConfig.preset("tiny")).eval()
    a, b = torch.randn(1, 30, 64), torch.randn(1, 18, 64)
    batch = torch.cat([a, torch.cat([b, 50 * torch.randn(1, 12, 64)], 1)])
    with torch.no_grad():
        hs = enc(batch, lengths_to_mask(torch.tensor([30, 18]), 30))
        for i, h in enumerate(enc(b)): assert (hs[i][1, :18] - h[0]).abs().max() < 1e-5

def test_long_audio_memory_is_bounded_by_the_window(tiny):
    "However long the audio, the encoder only ever sees batches of windows (memory of one batch), and every frame comes back once."
    seen, forward = [], tiny.forward
    tiny.forward = lambda x, *a, **k: (seen.append(tuple(x.shape)), forward(x, *a, **k))[1]
    try:
        for seconds in (5, 40):
            seen.clear(); wav = torch.randn(seconds * 24000, generator=torch.Generator().manual_seed(seconds)) * 0.1
            h = tiny.features_long(wav, window=2.0, overlap=0.4, batch_size=3)
            assert h.shape[0] == seconds * 25 and len(seen) >= math.ceil(seconds / 2 / 3)
            assert max(b for b, _ in seen) <= 3 and max(n for _, n in seen) == 2 * 24000      # never more than 3 windows of 2 s
    finally: del tiny.forward
