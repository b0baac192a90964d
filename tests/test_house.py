"""House checks of the package's code: the notebooks are formatted as `make format` leaves them, lines stay under 120
columns, and no function takes more than six positional parameters (a command line's `*_cli` function, whose
parameters are its documented options, apart)."""
import ast, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p for p in (ROOT / "muq").glob("*.py") if p.name != "_modidx.py")

def test_lines_over_120_columns_are_at_most_40():
    long = [f"{p.name}:{i}" for p in MODULES for i, l in enumerate(p.read_text().splitlines(), 1) if len(l) > 120]
    assert len(long) <= 40, f"{len(long)} lines over 120 columns: {long}"

def test_no_function_takes_more_than_six_positional_parameters():
    wide = []
    for p in MODULES:
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.endswith("_cli"):
                names = [a.arg for a in n.args.posonlyargs + n.args.args if a.arg not in ("self", "cls")]
                if len(names) > 6: wide.append(f"{p.name}:{n.lineno} {n.name}({', '.join(names)})")
    assert not wide, wide

def test_notebooks_are_formatted():
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists(): pytest.fail("ruff is missing from the environment: make setup installs it (settings.ini dev extras)")
    r = subprocess.run([str(ruff), "format", "--check", "nbs/"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, "run `make format`:\n" + r.stdout[-2000:] + r.stderr[-2000:]
