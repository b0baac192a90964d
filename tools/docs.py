"""`make docs`: a static site of the chapters, built offline with MkDocs + mkdocs-jupyter (both from PyPI).

nbdev's own site generator needs Quarto, which has no offline installer; this builds the same content from the
committed notebooks (their outputs: figures, tables, audio players) without executing anything:
  - README.md (generated from nbs/index.ipynb) is the front page; every other notebook is a chapter, in the README's reading order
    (its parts become sections of the navigation), titled by its first heading;
  - nbdev directives never reach a page: `#| hide` cells and the `nbdev_export()` footer are dropped, `#| ...` lines
    are stripped from the code that remains.
Usage: python tools/docs.py [--out site]   (the site is a folder of static HTML: open site/index.html)
"""
import argparse, copy, json, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r"^\s*#\s*\|")
MATHJAX = "assets/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"   # relative to the site's root

def _src(c) -> str: return "".join(c["source"]) if isinstance(c["source"], list) else c["source"]

def clean_notebook(nb: dict) -> dict:
    "A copy of `nb` as a reader should see it: no hidden cells, no export footer, no directive lines."
    nb = copy.deepcopy(nb); cells = []
    for c in nb["cells"]:
        s = _src(c); lines = s.splitlines()
        if c["cell_type"] == "code":
            flags = [l for l in lines if DIRECTIVE.match(l)]
            if any(re.search(r"\|\s*hide\b", l) for l in flags) or "nbdev_export()" in s: continue
            body = "\n".join(l for l in lines if not DIRECTIVE.match(l)).strip("\n")
            if not body and not c.get("outputs"): continue
            c["source"] = body
        elif s.strip() in ("## Export -", "## Export"): continue
        cells.append(c)
    nb["cells"] = cells; return nb

def title_of(nb: dict, default: str) -> str:
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", _src(c), re.M)
            if m: return m.group(1).strip()
    return default

def reading_order(readme: str) -> list[tuple[str, list[str]]]:
    """The site's order: the parts (`### ` headings) and chapters (table rows) of the README's "Reading order", which
    must name every notebook of nbs/ once."""
    sec = re.search(r"^## Reading order\n(.*?)(?=^## )", readme, re.S | re.M)
    if not sec: sys.exit("docs: README.md has no '## Reading order' section")
    parts = []
    for line in sec.group(1).splitlines():
        if line.startswith("### "): parts.append((line[4:].strip(), []))
        m = re.match(r"\| `(\w+)` \|", line)
        if m:
            if not parts: parts.append(("Chapters", []))
            parts[-1][1].append(m.group(1))
    listed = [s for _, ss in parts for s in ss]
    have = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if p.stem != "index")
    if sorted(listed) != have:
        sys.exit(f"docs: the README's reading order lists {sorted(set(listed) ^ set(have))} wrongly (missing, extra or twice)"
                 if set(listed) != set(have) else "docs: the README's reading order names a chapter twice")
    return parts

def build(out: Path, build_dir: Path | None = None) -> Path:
    "Build the site into `out` from sources staged in `build_dir` (default _docs_src/; a build of its own never shares it)."
    build_dir = Path(build_dir or ROOT / "_docs_src"); shutil.rmtree(build_dir, ignore_errors=True)
    src = build_dir / "docs"; (src / "chapters").mkdir(parents=True)
    shutil.copy(ROOT / "README.md", src / "index.md")
    import jupyter_server_mathjax                                  # MathJax 2.7 from PyPI: equations render with no network
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", src / "assets" / "mathjax")
    nav = [{"Introduction": "index.md"}]
    for part, stems in reading_order((ROOT / "README.md").read_text()):
        pages = []
        for stem in stems:
            nb = clean_notebook(json.loads((ROOT / "nbs" / f"{stem}.ipynb").read_text()))
            (src / "chapters" / f"{stem}.ipynb").write_text(json.dumps(nb))
            pages.append({f"{stem.split('_')[0]} · {title_of(nb, stem)}": f"chapters/{stem}.ipynb"})
        nav.append({part: pages})
    cfg = dict(site_name="muq: MuQ and MuQ-MuLan, derived in notebooks", docs_dir=str(src), site_dir=str(out.resolve()),
               use_directory_urls=False, nav=nav,
               theme=dict(name="material", font=False, features=["navigation.footer", "navigation.indexes"]),
               plugins=[{"mkdocs-jupyter": dict(include_source=True, execute=False, ignore_h1_titles=False, include_requirejs=False,
                                                 remove_tag_config={}, custom_mathjax_url=f"../{MATHJAX}")}],
               markdown_extensions=["tables", "fenced_code", "toc", {"pymdownx.arithmatex": {"generic": True}}],
               extra_javascript=[])                                         # (the README has no equations)
    yml = build_dir / "mkdocs.yml"; yml.write_text(json.dumps(cfg, indent=1))   # JSON is valid YAML
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(yml)], cwd=ROOT, capture_output=True, text=True, env=env)
    if r.returncode: sys.exit(f"mkdocs build failed:\n{r.stderr[-3000:]}")
    return out / "index.html"

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="site"); a = ap.parse_args()
    print(f"[docs] {build(ROOT / a.out if not Path(a.out).is_absolute() else Path(a.out))}")
