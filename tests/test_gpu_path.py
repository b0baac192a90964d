"The GPU path, checked on CPU: exact targets under autocast, a compile that compiles (alone and under DDP), true FLOPs, MFU peaks."
import subprocess, sys
from pathlib import Path
import pytest, torch
from muq import MuQ, MuQConfig
from muq.masking import block_mask
from muq.runtime import peak_flops, peak_flops_for
from muq.stages import encoder_flops, get_stage

ROOT = Path(__file__).resolve().parents[1]

def wavs(b=2, seconds=2.0, seed=0):
    g = torch.Generator().manual_seed(seed); t = torch.arange(int(24000 * seconds)) / 24000
    return 0.2 * torch.sin(2 * torch.pi * 220 * (1 + torch.rand(b, 1, generator=g)) * t) + 0.02 * torch.randn(b, len(t), generator=g)

def pair(seed=0):
    torch.manual_seed(seed); a = MuQ(MuQConfig.preset("tiny", encoder=dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, conv_dropout=0.0)))
    b = MuQ(a.config); b.load_state_dict(a.state_dict()); return a, b

def test_targets_under_autocast_equal_fp32_targets():
    torch.manual_seed(0); m = MuQ(MuQConfig.preset("tiny")).eval()
    with torch.no_grad():                                     # give the tokenizer codes that are close in cosine
        for q in m.model.rvq.quantizers: q.codebook.weight.copy_(torch.randn_like(q.codebook.weight) * 0.05 + 1.0)
    w = wavs(seconds=4.0); ref = m.tokenize(w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(m.tokenize(w), ref)
        z = m.model.front_end(w)
        naive = m.model.rvq.encode(__import__("muq.audio", fromlist=["stack_frames"]).stack_frames((z - 6.768444971712967) / 18.417922652295623))
    assert (naive != ref).float().mean() > 0.02              # the failure the fp32 region prevents is real here

def counting_backend(calls):
    def backend(gm, example_inputs):
        def run(*args): calls.append(1); return gm.forward(*args)
        return run
    return backend

def test_compiled_encoder_is_called_and_matches_eager():
    eager, comp = pair()
    calls = []
    get_stage("muq").compile(comp, counting_backend(calls))
    w = wavs(); blocks = block_mask(2, w.shape[1], generator=torch.Generator().manual_seed(1))
    lo_e = eager.model.train_forward(w, blocks=blocks, generator=torch.Generator().manual_seed(2))["loss"]
    lo_c = comp.model.train_forward(w, blocks=blocks, generator=torch.Generator().manual_seed(2))["loss"]
    assert len(calls) >= 2                                                   # the compiled graphs ran (conv and conformer)
    lo_e.backward(); lo_c.backward()
    assert abs(lo_e.item() - lo_c.item()) < 1e-5
    ge, gc = dict(eager.named_parameters()), dict(comp.named_parameters())
    assert ge.keys() == gc.keys() and set(eager.state_dict()) == set(comp.state_dict())      # state-dict keys unchanged
    assert max((ge[k].grad - gc[k].grad).abs().max().item() for k in ge if ge[k].grad is not None) < 1e-5

@pytest.mark.slow
def test_compiled_bf16_loss_is_close_to_eager_fp32():
    eager, comp = pair(3)
    get_stage("muq").compile(comp, "aot_eager")
    w = wavs(seconds=4.0); blocks = block_mask(2, w.shape[1], generator=torch.Generator().manual_seed(1))
    targets = eager.tokenize(w)
    with torch.no_grad():
        ref = eager.model.train_forward(w, targets, blocks, generator=torch.Generator().manual_seed(2))["loss"].item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = comp.model.train_forward(w, targets, blocks, generator=torch.Generator().manual_seed(2))["loss"].item()
    assert abs(got - ref) / ref < 1e-2, (got, ref)

def _formula(cfg, seconds):
    "Forward FLOPs written out by hand: 6 convs of the subsampling, its linear map, L Conformer layers, the head."
    e = cfg.encoder; C, d, f, L, k = e.conv_dim, e.d_model, e.ffn_dim, e.n_layers, e.kernel_size
    T = int(seconds * 24000) // 240; h = lambda x: (x - 1) // 2 + 1
    H1, W1 = h(e.n_mels), h(T); H2, t = h(H1), h(W1)
    conv = 2 * 9 * (C * H1 * W1 * (1 + C + 1) + C * C * H2 * t * 3) + 2 * t * C * H2 * d
    layer = 2 * 2 * t * d * f * 2 + 2 * t * d * d * 4 + 2 * 2 * t * t * d + 2 * t * d * 3 * d + 2 * t * d * k
    return conv + L * layer + 2 * t * d * cfg.n_codebooks * cfg.codebook_size

@pytest.mark.parametrize("preset,seconds", [("tiny", 4.0), ("small", 10.0), ("large", 30.0)])
def test_flop_count_matches_the_formula(preset, seconds):
    cfg = MuQConfig.preset(preset)
    assert encoder_flops(cfg, seconds, backward=False) == _formula(cfg, seconds)
    if preset == "large":
        conv_only = 2 * 9 * (512 * 64 * 1500 * 514 + 512 * 512 * 32 * 750 * 3)
        assert 0.75e12 < conv_only < 0.85e12 and conv_only > 0.6 * _formula(cfg, 30.0)        # the 2-D convs are most of it
        assert 3 * _formula(cfg, 30.0) < encoder_flops(cfg, 30.0) < 3.6 * _formula(cfg, 30.0)   # backward: about twice the forward

def test_peak_flops_by_device_and_precision():
    "The device name as CUDA reports it finds its own row, not a shorter name's; the precision in use picks the column."
    h100, pcie = peak_flops_for("NVIDIA H100 80GB HBM3", bf16=True), peak_flops_for("NVIDIA H100 PCIe", bf16=True)
    assert pcie != h100 and pcie == peak_flops_for("H100 PCIe", bf16=True)           # 'H100' is a prefix of 'H100 PCIe'
    for name in ("NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA A100-SXM4-80GB"):
        assert peak_flops_for(name, bf16=True) > peak_flops_for(name, bf16=False, tf32=True) > peak_flops_for(name, bf16=False)
    assert peak_flops_for("Some Future GPU", bf16=True) is None and peak_flops("cpu", bf16=True) is None

@pytest.mark.slow
def test_bench_gpu_tiny_runs_on_cpu():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "bench_gpu.py"), "--tiny"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [l.split() for l in r.stdout.splitlines() if l.startswith(("infer", "train"))]
    assert len(rows) == 8 and {x[3] for x in rows} == {"ours", "official"}
    assert all(float(x[4]) > 0 and float(x[5]) > 0 for x in rows) and sum(x[-1].endswith("x") for x in rows) == 4

@pytest.mark.gpu
def test_cuda_train_step_bf16_with_fp32_targets():
    "On a GPU: a MuQ-small step under bf16 autocast trains, its targets are the fp32 ones, and MFU can be reported."
    cfg = MuQConfig.preset("small"); torch.manual_seed(0); m = MuQ(cfg).cuda().train()
    w = torch.randn(4, 24000 * 6, device="cuda") * 0.1
    ref = m.tokenize(w)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert torch.equal(m.tokenize(w), ref)
        out = m.train_forward(w, generator=torch.Generator("cuda").manual_seed(0))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and all(p.grad is not None for p in m.model.conformer.parameters())
    assert peak_flops("cuda", bf16=True) is None or peak_flops("cuda", bf16=True) > 1e13
