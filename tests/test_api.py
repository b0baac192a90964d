"The drop-in contract: code written against the official `muq` package runs on ours (signatures, attributes, calls)."
import inspect, json
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from muq import MuQ, MuQConfig, MuQMuLan, MuQMuLanConfig
from muq.mulan_towers import WordTokenizer

FX = Path(__file__).parent / "fixtures"
REC = json.loads((FX / "official_signatures.json").read_text())
HUB_ONLY = {"push_to_hub", "generate_model_card"}     # the official hub mixin's upload helpers: this package never goes online

def sig(f):
    return [dict(name=p.name, kind=p.kind.name, default=repr(p.default) if p.default is not p.empty else None)
            for p in inspect.signature(f).parameters.values()]

def tiny_mulan():
    vocab = WordTokenizer.build_vocab(["a slow piano piece", "fast violin"])
    return MuQMuLan(MuQMuLanConfig.preset("tiny", text=dict(name="tiny", vocab=list(vocab), model_dim=64))).eval()

@pytest.mark.parametrize("cls_name", ["MuQ", "MuQMuLan"])
def test_signatures_match_the_official_record(cls_name):
    "Every official parameter, in order, with its kind and default; anything of ours comes after, keyword-only, with a default."
    cls = {"MuQ": MuQ, "MuQMuLan": MuQMuLan}[cls_name]
    methods = {k: v for k, v in REC[cls_name].items() if k != "attributes"}
    assert methods, "the record lists the official methods"
    for name, official in methods.items():
        ours = sig(getattr(cls, name))
        assert ours[: len(official)] == official, (name, ours, official)
        assert all(p["kind"] == "KEYWORD_ONLY" and p["default"] is not None for p in ours[len(official):]), (name, ours)

def test_every_official_attribute_exists():
    for cls_name, obj in (("MuQ", MuQ(MuQConfig.preset("tiny"))), ("MuQMuLan", tiny_mulan())):
        missing = [a for a in REC[cls_name]["attributes"] if a not in HUB_ONLY and not hasattr(obj, a)]
        assert not missing, (cls_name, missing)
        assert obj.device == torch.device("cpu") and obj.dtype == torch.float32

def test_official_checkpoint_called_the_official_way():
    "A benchmark wrapper's call, `model(x=wav, output_hidden_states=True)`, on an official checkpoint gives the official features."
    io = load_file(str(FX / "official_muq_tiny_io.safetensors"))
    m = MuQ.from_pretrained(FX / "official_muq_tiny")
    with torch.no_grad():
        out = m(x=io["wav"], output_hidden_states=True)
        short = m(io["wav"], None, False)                              # positional, as the official forward takes them
    assert len(out.hidden_states) == 3 and short.hidden_states is None
    assert (out.last_hidden_state - io["hidden_2"]).abs().max() < 1e-5 and torch.equal(short.last_hidden_state, out.last_hidden_state)

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_weights_run_on_cpu(dtype):
    "`.half()` / `.to(bfloat16)` then a forward works (the official code fails in its front end); the targets stay fp32-exact."
    io = load_file(str(FX / "official_muq_tiny_io.safetensors"))
    m = MuQ.from_pretrained(FX / "official_muq_tiny").to(dtype)
    with torch.no_grad(): h = m(io["wav"]).last_hidden_state
    rel = ((h.float() - io["hidden_2"]).norm() / io["hidden_2"].norm()).item()
    assert h.dtype == dtype and 0 < rel < 0.03, rel
    assert torch.equal(m.tokenize(io["wav"]), MuQ.from_pretrained(FX / "official_muq_tiny").tokenize(io["wav"]))

def test_mulan_serial_and_parallel_clips_agree():
    m = tiny_mulan(); w = torch.randn(2, int(m.sr * m.clip_secs * 2.5)) * 0.1
    with torch.no_grad(): a, b = m(wavs=w), m(wavs=w, parallel_processing=True)
    assert a.shape == (2, 64) and (a - b).abs().max() < 1e-5
    assert m.mulan_module is m.mulan and m.frozen() is m and not any(p.requires_grad for p in m.parameters())
