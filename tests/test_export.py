"""`python -m muq.export`: ONNX Runtime equals PyTorch on a checkpoint shape used nowhere else in the tests, any batch and length."""
import subprocess, sys
import numpy as np, pytest, torch
from muq import MuQ, MuQConfig

pytestmark = pytest.mark.slow

def test_onnx_export_matches_torch_on_an_unseen_shape(tmp_path):
    cfg = MuQConfig.preset("tiny", encoder=dict(conv_dim=16, d_model=48, n_heads=3, ffn_dim=96, n_layers=3, kernel_size=15))
    torch.manual_seed(3); m = MuQ(cfg).eval()
    with torch.no_grad():                                                 # trained-looking BatchNorm statistics, so folding is exercised
        for bn in (x for x in m.modules() if isinstance(x, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))):
            bn.running_mean.normal_(0, 0.2); bn.running_var.uniform_(0.5, 2.0)
    m.save_pretrained(tmp_path / "ck")
    r = subprocess.run([sys.executable, "-m", "muq.export", "--onnx", str(tmp_path / "m.onnx"), "--ckpt", str(tmp_path / "ck"), "--layers", "0,-1",
                        "--seconds", "4"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "max |onnx - torch|" in r.stdout and "onnxruntime" in r.stdout
    import onnxruntime as ort
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    m = MuQ.from_pretrained(tmp_path / "ck")
    for b, secs in ((1, 1.37), (3, 6.0)):
        x = torch.randn(b, int(secs * 24000), generator=torch.Generator().manual_seed(b)) * 0.2
        with torch.no_grad(): hs = m(x).hidden_states; ref = torch.stack([hs[0], hs[-1]]).numpy()
        out = sess.run(None, {"wav": x.numpy()})[0]
        from muq.conformer import subsampled_length
        assert out.shape == ref.shape == (2, b, subsampled_length(int(secs * 24000) // 240), 48)
        assert np.abs(out - ref).max() / np.abs(ref).max() < 1e-4
