"Audio loading and the log-mel front end (issue: foundation)."
import numpy as np, pytest, soundfile as sf, torch, torchaudio
from muq.audio import (AudioError, MelConfig, load_audio, log_mel, n_frames, normalize_mel, stack_frames,
                       unstack_frames, mel_tokens, audio_info)

def tone(sr, seconds=1.0, f=1000.0, ch=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * f * t)
    return np.stack([x] * ch, 1).astype(np.float32)

def peak_hz(wav, sr=24000):
    spec = np.abs(np.fft.rfft(wav.numpy()))
    return np.fft.rfftfreq(len(wav), 1 / sr)[spec.argmax()]

FORMATS = [("wav", "PCM_U8"), ("wav", "PCM_16"), ("wav", "PCM_24"), ("wav", "PCM_32"), ("wav", "FLOAT"),
           ("flac", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS")]

@pytest.mark.parametrize("ext,subtype", FORMATS)
@pytest.mark.parametrize("sr,ch", [(8000, 1), (22050, 2), (44100, 2), (48000, 6), (24000, 1)])
def test_load_formats_rates_channels(tmp_path, ext, subtype, sr, ch):
    p = tmp_path / f"x.{ext}"
    sf.write(p, tone(sr, 1.0, 1000.0, ch), sr, subtype=subtype)
    w = load_audio(p)
    assert w.dtype == torch.float32 and w.ndim == 1
    assert abs(len(w) - 24000) <= 2                      # 1 s at 24 kHz whatever the source rate
    assert abs(peak_hz(w) - 1000.0) <= 2.0               # resampling keeps the pitch
    tol = 0.05 if subtype in ("PCM_U8", "VORBIS") else 0.01
    assert abs(w.abs().max().item() - 0.5) < tol         # mono mix keeps the level of identical channels

def test_load_segment(tmp_path):
    p = tmp_path / "x.wav"
    x = np.arange(48000, dtype=np.float32) / 48000
    sf.write(p, x, 48000, subtype="FLOAT")
    w = load_audio(p, sr=48000, offset=0.25, duration=0.5)
    assert len(w) == 24000 and abs(w[0].item() - 0.25) < 1e-6
    assert audio_info(p) == (48000, 48000, 1)

def test_bad_inputs(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.flac").write_text("not audio at all")
    sf.write(tmp_path / "inf.wav", np.array([0.0, np.inf, 0.0], dtype=np.float32), 24000, subtype="FLOAT")
    sf.write(tmp_path / "nosamples.wav", np.zeros(0, dtype=np.float32), 24000)
    cases = {"missing.wav": (FileNotFoundError, "no such audio file"), "empty.wav": (AudioError, "not a readable"),
             "text.flac": (AudioError, "not a readable"), "inf.wav": (AudioError, "non-finite"),
             "nosamples.wav": (AudioError, "empty audio")}
    for name, (exc, msg) in cases.items():
        with pytest.raises(exc) as e: load_audio(tmp_path / name)
        assert name in str(e.value) and msg in str(e.value)

def official_front_end(x):
    "The official recipe written out independently: torchaudio with MUQ_SPEC §1 arguments, last frame dropped."
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=24000, n_fft=2048, hop_length=240, n_mels=128)
    return torchaudio.transforms.AmplitudeToDB()(mel(x))[..., :-1]

@pytest.mark.parametrize("seed,n", [(0, 24000), (1, 24001), (2, 33333), (3, 240 * 77 + 239), (4, 48000 * 2 + 5)])
def test_log_mel_equals_torchaudio(seed, n):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, n, generator=g) * torch.rand(2, 1, generator=g)
    ours, ref = log_mel(x), official_front_end(x)
    assert ours.shape == ref.shape == (2, 128, n // 240)
    assert torch.equal(ours, ref)

def test_frame_count_rule():
    "Frames come from a centred STFT (1 + n // hop frames) minus the one the official code drops; counted by torch.stft itself."
    for n in [1025, 2400, 2639, 24000, 720000, 720239]:
        x = torch.zeros(n)
        stft = torch.stft(x, n_fft=2048, hop_length=240, window=torch.hann_window(2048), center=True, return_complex=True)
        assert log_mel(x).shape[-1] == n_frames(n) == stft.shape[-1] - 1
    assert log_mel(torch.zeros(720000)).shape == (128, 3000)      # 30 s -> 3000 frames

def test_fp32_under_autocast():
    x = torch.randn(1, 24000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = log_mel(x)
    assert y.dtype == torch.float32 and torch.equal(y, log_mel(x))

def test_stack_unstack_round_trip():
    m = torch.randn(3, 128, 64)
    z = stack_frames(m)
    assert z.shape == (3, 16, 512)
    assert torch.equal(unstack_frames(z), m)
    assert torch.equal(z[1, 3, 2 * 128:3 * 128], m[1, :, 4 * 3 + 2])
    with pytest.raises(ValueError, match="expects \\(b, f, t\\)"): stack_frames(torch.randn(128, 64))

def test_normalisation_constants():
    cfg = MelConfig()
    assert (cfg.mean, cfg.std, cfg.label_rate) == (6.768444971712967, 18.417922652295623, 25.0)
    assert torch.allclose(normalize_mel(torch.tensor([cfg.mean + cfg.std])), torch.tensor([1.0]))
    assert mel_tokens(torch.zeros(1, 24000 * 10)).shape == (1, 250, 512)
