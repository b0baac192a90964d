"""Every chapter executed once, top to bottom, in a real Jupyter kernel (`tools/run_notebooks.py`, what `nbconvert --execute`
does): `#| slow` cells skipped, `#| cuda` cells only where CUDA is present. A failing cell fails its notebook's test and is
named. (nbdev's flags are the same ones: `nbdev_test` would run the same cells in-process.)"""
import configparser, sys
from pathlib import Path
import nbformat, pytest, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import run_notebooks

NOTEBOOKS = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))

def test_the_skipped_flags_are_nbdevs():
    "The runner skips what nbdev_test skips (settings.ini's tst_flags), so the two cannot disagree on which cells run."
    ini = configparser.ConfigParser(); ini.read(ROOT / "settings.ini")
    assert set(ini["DEFAULT"]["tst_flags"].split()) == {"notest", "slow", "cuda"}
    cell = dict(cell_type="code", source=["#| slow\n", "x = 1\n"])
    assert run_notebooks.flags(cell) == {"slow"} and run_notebooks.flags(dict(cell_type="markdown", source=["#| slow"])) == set()

@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_a_kernel(name):
    ok, msg = run_notebooks.run(ROOT / "nbs" / name, slow=False, cuda=torch.cuda.is_available(), cell_timeout=1800, nb_timeout=3600,
                                write=False)
    assert ok, msg

def test_a_failing_cell_fails_and_is_named(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 2"), nbformat.v4.new_code_cell("#| slow\nraise SystemExit"),
                                         nbformat.v4.new_code_cell("assert x == 3, 'x is not three'")])
    p = tmp_path / "broken.ipynb"; nbformat.write(nb, p)
    ok, msg = run_notebooks.run(p, slow=False, cuda=False, cell_timeout=60, nb_timeout=120, write=False)
    assert not ok and msg.startswith("broken.ipynb: cell 2:") and "x is not three" in msg, msg
