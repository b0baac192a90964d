"Installable like a library: the core package, without extras, extracts features in a fresh virtual environment."
import importlib.metadata as md, json, re, subprocess, venv
from pathlib import Path
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

def _closure(names):
    "Distributions of `names` and everything they require (no extras)."
    seen = {}
    def walk(n):
        try: d = md.distribution(n)
        except md.PackageNotFoundError: return
        if d.metadata["Name"].lower() in seen: return
        seen[d.metadata["Name"].lower()] = d
        for r in d.requires or []:
            if "extra ==" not in r: walk(re.match(r"[A-Za-z0-9_.\-]+", r).group(0))
    for n in names: walk(n)
    return seen.values()

def _link_installed(dists, dest: Path):
    "Symlink the installed files of `dists` (top-level modules and dist-info) into `dest`: torch without a multi-GB copy."
    dest.mkdir()
    for d in dists:
        site = Path(d.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in d.files or [] if not str(f).startswith("..")}:
            if (site / top).exists() and not (dest / top).exists(): (dest / top).symlink_to(site / top)

def test_core_install_extracts_features_without_extras(tmp_path):
    env = tmp_path / "venv"; venv.create(env, with_pip=True)
    py = env / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    _link_installed(_closure(["torch", "torchaudio"]), tmp_path / "torch_only")
    (site / "torch_only.pth").write_text(str(tmp_path / "torch_only") + "\n")
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    code = f"""
import sys, json, torch
from muq import MuQ
m = MuQ.from_pretrained({str(ROOT / 'tests' / 'fixtures' / 'official_muq_tiny')!r})
out = m(torch.randn(2, 48000) * 0.1)
extras = [x for x in ('music21', 'fluidsynth', 'sklearn', 'mir_eval', 'matplotlib', 'tensorboard', 'fastcore', 'transformers', 'tqdm') if x in sys.modules]
print(json.dumps(dict(shape=list(out.last_hidden_state.shape), n=len(out.hidden_states), extras=extras, file=__import__('muq').__file__)))
"""
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["shape"] == [2, 50, 64] and res["n"] == 3 and res["extras"] == [] and str(env) in res["file"]
    have = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True).stdout
    names = {p["name"].lower() for p in json.loads(have)}
    assert not names & {"music21", "pyfluidsynth", "scikit-learn", "mir-eval", "matplotlib", "tensorboard", "transformers"}
