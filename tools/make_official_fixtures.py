"""Build parity fixtures from the OFFICIAL MuQ and MuQ-MuLan implementations (PyPI `muq==0.1.0`), offline, random weights.

The official package has the same import name as ours, so it is installed into its own folder
(default ~/.cache/muq-official, with `pip install --target`, never into the project's environment) and this script
re-runs itself with that folder first on PYTHONPATH, from a directory where our `muq` is not importable.
It reuses torch/torchaudio/numpy/einops/safetensors from the running interpreter.

    .venv/bin/python tools/make_official_fixtures.py            # writes tests/fixtures/official_*.safetensors + official_muq_tiny/
                                                                 #        + official_mulan_tiny/ (+ _tokenizer/, _io.safetensors)
                                                                 #        + official_signatures.json
    .venv/bin/python tools/make_official_fixtures.py --signatures   # only official_signatures.json
The official MuQ-MuLan builds MuQ and XLM-RoBERTa from hub names; offline, they are local folders whose names contain
'muq' and 'xlm-roberta' (what its loader dispatches on): a tiny random MuQ, a tiny random XLM-R, and a word-level
stand-in tokenizer (tokenizer.json) that the official code and ours both read.
"""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures"
PKGS = ["muq==0.1.0", "transformers==4.57.6", "tokenizers>=0.22,<0.23", "huggingface_hub>=0.34,<1.0", "easydict",
        "x_clip", "ftfy", "regex", "pyyaml", "beartype", "wcwidth", "torchvision==0.29.1"]
STAT = {"melspec_2048_mean": 6.768444971712967, "melspec_2048_std": 18.417922652295623}
# the encoder reads only these keys (MUQ_SPEC §9); tiny sizes so the fixture is small
W2V2 = dict(position_embeddings_type="rotary", rotary_embedding_base=10000, num_attention_heads=4, intermediate_size=128,
            hidden_act="swish", activation_dropout=0.1, hidden_dropout=0.1, attention_dropout=0.1, conformer_conv_dropout=0.1,
            conv_depthwise_kernel_size=31, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
            feat_extract_activation="gelu", layer_norm_eps=1e-5, layerdrop=0.0)
TINY = dict(label_rate=25, num_codebooks=1, codebook_dim=16, codebook_size=8192, conv_dim=32, encoder_dim=64, encoder_depth=2,
            use_rvq_target=True, rvq_n_codebooks=8, stat=STAT, w2v2_config=W2V2)

def ensure_env(env: Path):
    if (env / "muq" / "muq" / "muq.py").exists(): return
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(env), "--no-deps", *PKGS], check=True)

def randomize_norms(model, torch):
    "BatchNorm/LayerNorm start as identities; give them random stats/affines so parity tests see them."
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
            m.weight.data.copy_(1 + torch.randn(m.weight.shape, generator=g) * 0.1)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)

def make_mulan(torch, np):
    "A tiny official MuQ-MuLan with random weights, its inputs and its audio and text latents."
    import tempfile
    from muq import MuQ, MuQConfig, MuQMuLan
    from transformers import XLMRobertaConfig, XLMRobertaModel, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from safetensors.torch import save_file
    work = Path(tempfile.mkdtemp())
    torch.manual_seed(0)                                     # the audio encoder: d_model 64 with 1 head (heads = d_model / 64)
    MuQ(MuQConfig(**dict(TINY, w2v2_config=dict(W2V2, num_attention_heads=1)))).save_pretrained(str(work / "muq-tiny"))
    texts = ["a slow baroque chorale on the organ", "fast irish fiddle tune played on a violin", "piano"]
    words = sorted({w for t in texts for w in t.split()} | {"music", "guitar", "minor", "major"})
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>"] + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>")); tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    xdir = work / "xlm-roberta-tiny"; xdir.mkdir()
    PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>").save_pretrained(str(xdir))
    torch.manual_seed(1)
    XLMRobertaModel(XLMRobertaConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=1, intermediate_size=128,
                                     max_position_embeddings=40, type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5)).save_pretrained(str(xdir))
    cfg = dict(mulan=dict(sr=24000, clip_secs=1, dim_latent=32, decoupled_contrastive_learning=True, hierarchical_contrastive_loss=False,
                          hierarchical_contrastive_loss_layers=None, sigmoid_contrastive_loss=False, rank_contrast=True),
               audio_model=dict(name=str(work / "muq-tiny"), model_dim=64, use_layer_idx=-1),
               text_model=dict(name=str(xdir), model_dim=64),
               audio_transformer=dict(dim=48, tf_depth=0, heads=2, dim_head=16, attn_dropout=0.0, ff_dropout=0.0, ff_mult=4),
               text_transformer=dict(dim=48, tf_depth=2, max_seq_len=64, heads=2, dim_head=16, attn_dropout=0.0, ff_dropout=0.0, ff_mult=4))
    torch.manual_seed(2); m = MuQMuLan(cfg).eval()
    with torch.no_grad():                                    # random, non-trivial values where init is 1 or 0
        for n, p_ in m.named_parameters():
            if n.endswith(("q_scale", "k_scale", "learned_gamma")): p_.copy_(1 + 0.2 * torch.randn_like(p_))
    out = OUT / "official_mulan_tiny"; m.save_pretrained(str(out))
    (out / "config.json").write_text(json.dumps(cfg, indent=1))       # as the hub mixin writes it
    tok = OUT / "official_mulan_tiny_tokenizer"; tok.mkdir(exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (xdir / f).exists(): (tok / f).write_bytes((xdir / f).read_bytes())
    g = torch.Generator().manual_seed(0); t = torch.arange(60000) / 24000                       # 2.5 s: two clips + a wrapped third
    wav = torch.stack([0.3 * torch.sin(2 * np.pi * 220 * t) + 0.05 * torch.randn(60000, generator=g),
                       0.2 * torch.sin(2 * np.pi * 330 * t) + 0.1 * torch.randn(60000, generator=g)])
    with torch.no_grad(): a, tl = m(wavs=wav), m(texts=texts)
    save_file({"wav": wav.contiguous(), "audio_latents": a.contiguous(), "text_latents": tl.contiguous()}, str(OUT / "official_mulan_tiny_io.safetensors"))
    (OUT / "official_mulan_tiny_texts.json").write_text(json.dumps(texts))
    print(f"wrote the MuQ-MuLan fixture: {sum(p_.numel() for p_ in m.parameters())} parameters, audio latents {tuple(a.shape)}")

PUBLIC = {"MuQ": ["forward"], "MuQMuLan": ["forward", "extract_audio_latents", "extract_text_latents", "calc_similarity"]}

def signatures():
    "The public call signatures of the official MuQ and MuQMuLan (names, order, kinds, defaults) and their public attributes."
    import inspect, torch, muq
    rec = {}
    for cls_name, methods in PUBLIC.items():
        cls = getattr(muq, cls_name); rec[cls_name] = {}
        for m in methods:
            rec[cls_name][m] = [dict(name=p.name, kind=p.kind.name, default=repr(p.default) if p.default is not p.empty else None)
                                for p in inspect.signature(getattr(cls, m)).parameters.values()]
        own = [n for n in dir(cls) if not n.startswith("_") and n not in dir(torch.nn.Module)]
        rec[cls_name]["attributes"] = sorted(set(own) | ({"config", "model"} if cls_name == "MuQ" else {"config", "mulan", "sr", "clip_secs"}))
    (OUT / "official_signatures.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(f"wrote {OUT / 'official_signatures.json'}")

def inside():
    import numpy as np, torch, muq
    from safetensors.torch import save_file
    assert "muq-official" in muq.__file__ or "site-packages" in muq.__file__, muq.__file__
    from muq import MuQ, MuQConfig
    torch.manual_seed(0)
    model = MuQ(MuQConfig(**TINY)).eval()
    with torch.no_grad(): randomize_norms(model, torch)
    OUT.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(OUT / "official_muq_tiny"))
    # input: a harmonic tone plus noise, 2 s (a multiple of 960 samples, as the official target path needs)
    g = torch.Generator().manual_seed(0); t = torch.arange(48000) / 24000
    wav = torch.stack([0.3 * torch.sin(2 * np.pi * 220 * t) + 0.05 * torch.randn(48000, generator=g),
                       0.2 * torch.sin(2 * np.pi * 330 * t) + 0.1 * torch.randn(48000, generator=g)])
    att = torch.ones(2, 48000, dtype=torch.long); att[1, 30000:] = 0
    with torch.no_grad():
        out = model(wav, output_hidden_states=True)
        out_m = model(wav, attention_mask=att, output_hidden_states=True)
        mm = model.model
        x = mm.rearrange(mm.normalize(mm.preprocessing(wav, features=mm.features)))["melspec_2048"]   # (b, t, 512)
        q, codes, _, commit, cb, _ = mm.rvq(x.permute(0, 2, 1))                                      # eval: (b, 8, t)
        targets, _ = mm.get_targets(wav)
        torch.manual_seed(123)
        mx, masked_indices = mm.masking(wav)
        logits, _ = mm.get_predictions(mx)
        losses, accs = mm.get_loss(logits, dict(targets), masked_indices)
    token_mask = torch.zeros(2, codes.shape[-1], dtype=torch.bool); token_mask[tuple(masked_indices.t())] = True
    t_ = {"wav": wav, "attention_mask": att, "rvq_input": x.contiguous(), "rvq_codes": codes, "rvq_recon": q.permute(0, 2, 1).contiguous(),
          "rvq_commitment": commit.reshape(1), "rvq_codebook": cb.reshape(1), "targets_flat": targets["melspec_2048"],
          "masked_wav": mx, "token_mask": token_mask, "loss": losses["melspec_2048"].reshape(1), "accuracy": accs["melspec_2048"].reshape(1)}
    for i, h in enumerate(out.hidden_states): t_[f"hidden_{i}"] = h.contiguous()
    for i, h in enumerate(out_m.hidden_states): t_[f"hidden_masked_{i}"] = h.contiguous()
    save_file({k: v.contiguous() for k, v in t_.items()}, str(OUT / "official_muq_tiny_io.safetensors"))
    keys = sorted(model.state_dict())
    (OUT / "official_muq_tiny_keys.json").write_text(json.dumps(keys, indent=0))
    print(f"wrote fixtures to {OUT}: {len(keys)} state-dict keys, {len(out.hidden_states)} hidden states, "
          f"loss {losses['melspec_2048'].item():.4f}")
    make_mulan(torch, np)

if __name__ == "__main__":
    if "--inside" in sys.argv:
        if "--signatures" in sys.argv: signatures()           # only the signature record (the weights fixtures stay as they are)
        else: inside(); signatures()
        sys.exit(0)
    env = Path(os.environ.get("MUQ_OFFICIAL_ENV", Path.home() / ".cache" / "muq-official"))
    ensure_env(env)
    envv = {**os.environ, "PYTHONPATH": str(env)}
    # run from / so neither the repo's muq/ nor an editable install of ours shadows the official package
    envv.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")    # nothing is downloaded: the hub names are local folders
    subprocess.run([sys.executable, "-P", str(Path(__file__).resolve()), "--inside", *sys.argv[1:]], env=envv, cwd="/", check=True)
