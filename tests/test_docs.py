"""The docs site (`make docs`): built from the committed notebooks, opened in headless Chromium.

The page checks read the DOM Chromium renders (title, a figure, the navigation between chapters); a screenshot of
each page is kept in the built site's `_check/` folder."""
import importlib.util, json, re, shutil, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("docs", ROOT / "tools" / "docs.py"); docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs)

def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Debian's chromium is needed for the page checks (tools/setup.sh installs it as root)"
    return exe

def render(page: Path, shot: Path) -> str:
    "The DOM of `page` after Chromium ran it, and a screenshot."
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--virtual-time-budget=15000"]                              # let the page's scripts (MathJax) finish first
    subprocess.run(base + [f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()], check=True, capture_output=True, timeout=300)
    return subprocess.run(base + ["--dump-dom", page.as_uri()], check=True, capture_output=True, text=True, timeout=300).stdout

def test_clean_notebook_drops_directives():
    nb = dict(cells=[dict(cell_type="code", source="#| hide\nimport secret", outputs=[]),
                     dict(cell_type="code", source="#| export\ndef f(): pass", outputs=[]),
                     dict(cell_type="code", source="#|slow\nx = 1", outputs=[]),
                     dict(cell_type="markdown", source="## Export -"),
                     dict(cell_type="code", source="import nbdev; nbdev.nbdev_export()", outputs=[])])
    out = docs.clean_notebook(nb)["cells"]
    assert [c["source"] for c in out] == ["def f(): pass", "x = 1"]

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The site built in a folder of this test process's own (side-by-side test workers never share a build)."
    base = tmp_path_factory.mktemp("docs"); out = base / "site"; index = docs.build(out, base / "_docs_src")
    (out / "_check").mkdir(exist_ok=True); return index

def test_site_has_every_chapter(site):
    pages = {p.stem for p in (site.parent / "chapters").glob("*.html")}
    assert pages == {p.stem for p in (ROOT / "nbs").glob("*.ipynb")} - {"index"}
    html = (site.parent / "chapters" / "03_mel_rvq.html").read_text()
    assert not re.search(r"#\s*\|\s*(hide|export|slow|default_exp)", html), "an nbdev directive leaked into a page"

@pytest.mark.parametrize("page, title", [("index.html", "muq"), ("chapters/01_audio.html", "Audio front end")])
def test_page_renders_in_chromium(site, page, title):
    p = site.parent / page; shot = site.parent / "_check" / (Path(page).stem + ".png")
    dom = render(p, shot)
    assert title in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert shot.stat().st_size > 10_000                                          # a real screenshot, not a blank page
    assert 'class="md-nav__link' in dom and re.search(r'href="[^"]*03_mel_rvq\.html"', dom)   # navigation between chapters
    if page != "index.html":
        assert re.search(r'<img[^>]+src="data:image/png;base64,', dom), "no figure on the chapter page"
        assert "<audio" in dom, "no audio player on the chapter page"

def maths_in(nb: dict) -> tuple[int, int]:
    "(inline, display) TeX segments in a notebook's markdown cells (code spans left out)."
    md = re.sub(r"`[^`\n]*`", "", "\n".join(docs._src(c) for c in nb["cells"] if c["cell_type"] == "markdown"))
    display = re.findall(r"\$\$.+?\$\$", md, re.S)
    inline = re.findall(r"(?<![\\$])\$[^$\n]+?(?<!\\)\$", re.sub(r"\$\$.+?\$\$", "", md, flags=re.S))
    return len(inline), len(display)

def test_maths_counter():
    nb = dict(cells=[dict(cell_type="markdown", source="A $x$ and $y_1$, not `$HOME`, and\n$$a = b$$"),
                     dict(cell_type="code", source="'$x$'")])
    assert maths_in(nb) == (2, 1)

MATHS_PAGES = [p.stem for p in sorted((ROOT / "nbs").glob("*.ipynb")) if p.stem != "index" and any(maths_in(json.loads(p.read_text())))]

@pytest.mark.parametrize("stem", MATHS_PAGES)
def test_equations_render_offline(site, stem):
    """MathJax ships with the site: on every chapter page with maths, Chromium typesets at least as many equations as
    the chapter's markdown holds, and no TeX source is left in the text."""
    p = site.parent / "chapters" / f"{stem}.html"
    assert 'src="../assets/mathjax/MathJax.js' in p.read_text() and (site.parent / "assets" / "mathjax" / "MathJax.js").exists()
    inline, display = maths_in(json.loads((ROOT / "nbs" / f"{stem}.ipynb").read_text()))
    dom = render(p, site.parent / "_check" / f"{stem}.png")
    assert len(re.findall(r'class="MathJax_Display"', dom)) >= display
    assert len(re.findall(r'class="MathJax"', dom)) >= inline               # (display equations are MathJax_Display)
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<pre.*?</pre>|<code.*?</code>|<[^>]+>", "", dom, flags=re.S)
    assert "$$" not in text and not re.search(r"\\\(|\\\[", text), "maths left as TeX source"

def test_navigation_follows_the_reading_order(site):
    "The site's navigation lists the chapters in the README's reading order, in its parts."
    parts = docs.reading_order((ROOT / "README.md").read_text())
    assert [t for t, _ in parts] == ["Part I: MuQ", "Part II: the engineering"]
    want = [s for _, ss in parts for s in ss]
    html = (site.parent / "chapters" / "03_mel_rvq.html").read_text()
    nav = html[html.index('class="md-nav md-nav--primary"') : html.index('class="md-content"')]
    got = list(dict.fromkeys(re.findall(r'href="(\w+)\.html"', nav)))
    assert [g for g in got if g in want] == want
    assert want[:3] == ["01_audio", "03_mel_rvq", "04_conformer"] and "00_core" in parts[1][1]
    with pytest.raises(SystemExit, match="12_export"):               # a chapter the README forgets is refused
        docs.reading_order((ROOT / "README.md").read_text().replace("| `12_export` |", "| x |"))

def test_committed_notebooks_hold_no_progress_bar_residue():
    "Outputs are written through run_notebooks.strip_progress: no tqdm bars in what readers (and the site) see."
    bars = re.compile(r"\d+%\|[^\n]*\|[^\n]*it/s\]|\x1b\[")
    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        for c in json.loads(p.read_text())["cells"]:
            for o in c.get("outputs", []):
                for t in (o.get("text", ""), o.get("data", {}).get("text/plain", "")):
                    assert not bars.search("".join(t) if isinstance(t, list) else t), f"{p.name}: a progress bar in a committed output"
