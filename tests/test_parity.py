"Parity with the official muq==0.1.0 (fixtures written by tools/make_official_fixtures.py)."
import json, shutil
from pathlib import Path
import pytest, torch
from einops import rearrange
from safetensors.torch import load_file, save_file
from muq import MuQ
from muq.audio import mel_tokens
from muq.mel_rvq import load_official_rvq
from muq.model import masked_ce

FX = Path(__file__).parent / "fixtures"
OFF = FX / "official_muq_tiny"

@pytest.fixture(scope="module")
def io(): return load_file(str(FX / "official_muq_tiny_io.safetensors"))

def test_rvq_codes_and_reconstruction(io):
    rvq = load_official_rvq(load_file(str(OFF / "model.safetensors")))
    assert torch.allclose(mel_tokens(io["wav"]), io["rvq_input"], atol=1e-4)
    assert torch.equal(rvq.encode(io["rvq_input"]), io["rvq_codes"])
    out = rvq(io["rvq_input"])
    assert (out.recon - io["rvq_recon"]).abs().max() < 1e-5
    assert abs(out.commitment.item() - io["rvq_commitment"].item()) < 1e-5 and abs(out.codebook.item() - io["rvq_codebook"].item()) < 1e-5

def test_hidden_states_targets_and_loss(io):
    m = MuQ.from_pretrained(OFF)
    with torch.no_grad():
        out, out_m = m(io["wav"]), m(io["wav"], attention_mask=io["attention_mask"])
        assert len(out.hidden_states) == 3 and torch.equal(out.last_hidden_state, out.hidden_states[-1])
        for i in range(3):
            assert (out.hidden_states[i] - io[f"hidden_{i}"]).abs().max() < 1e-5
            assert (out_m.hidden_states[i] - io[f"hidden_masked_{i}"]).abs().max() < 1e-5
        targets = m.tokenize(io["wav"])
        assert torch.equal(rearrange(targets, "b k t -> b (k t)"), io["targets_flat"])
        hs, _ = m.model.encode(io["masked_wav"])
        loss, acc, *_ = masked_ce(m.model.linear(hs[-1]), targets, io["token_mask"], 8)
    assert abs(loss.item() - io["loss"].item()) < 1e-5 and abs(acc.item() - io["accuracy"].item()) < 1e-6

def test_loss_through_train_forward_with_the_official_mask(io):
    m = MuQ.from_pretrained(OFF)
    blocks = io["token_mask"][:, ::10]
    g = torch.Generator()
    with torch.no_grad(): o = m.train_forward(io["wav"], blocks=blocks, generator=g)
    # same mask, but our own noise draw in the masked blocks: close to, not equal to, the official loss
    assert abs(o["loss"].item() - io["loss"].item()) < 0.05 and o["tokens"].item() == io["token_mask"].sum().item()

def test_other_weight_formats(io, tmp_path):
    sd = load_file(str(OFF / "model.safetensors"))
    # newer torch weight-norm naming, pickled .bin instead of safetensors
    sd2 = {k.replace(".weight_g", ".parametrizations.weight.original0").replace(".weight_v", ".parametrizations.weight.original1"): v for k, v in sd.items()}
    d = tmp_path / "bin"; d.mkdir(); shutil.copy(OFF / "config.json", d)
    torch.save(sd2, d / "pytorch_model.bin")
    m = MuQ.from_pretrained(d)
    with torch.no_grad(): assert (m(io["wav"]).last_hidden_state - io["hidden_2"]).abs().max() < 1e-5

class Payload:
    def __reduce__(self): return (print, ("pwned",))

def test_malicious_pickle_is_refused(tmp_path):
    d = tmp_path / "evil"; d.mkdir(); shutil.copy(OFF / "config.json", d)
    torch.save({"x": Payload()}, d / "pytorch_model.bin")
    with pytest.raises(ValueError, match="refused"): MuQ.from_pretrained(d)

def test_offline_hub_name_error():
    with pytest.raises(FileNotFoundError, match="huggingface-cli download OpenMuQ/MuQ-large-msd-iter"):
        MuQ.from_pretrained("OpenMuQ/MuQ-large-msd-iter")

def test_unused_official_keys_are_present_and_ignored(tmp_path):
    "The official file carries keys the forward never uses; loading drops exactly those, and any other stray key is an error."
    sd = load_file(str(OFF / "model.safetensors"))
    unused = [k for k in sd if k == "model.cls_token" or k.startswith("model.conformer.pos_conv_embed.")]
    assert "model.cls_token" in unused and len(unused) >= 3
    assert sorted(sd) == json.loads((FX / "official_muq_tiny_keys.json").read_text())
    m = MuQ.from_pretrained(OFF)
    assert not set(unused) & set(m.state_dict())
    assert sum(k.endswith("in_proj.weight_g") for k in m.state_dict()) == 8
    d = tmp_path / "stray"; d.mkdir(); shutil.copy(OFF / "config.json", d)
    save_file({**sd, "model.conformer.something_else": torch.zeros(1)}, str(d / "model.safetensors"))
    with pytest.raises(ValueError, match="unexpected \\['model.conformer.something_else'\\]"): MuQ.from_pretrained(d)
