"""README.md from nbs/index.ipynb (what `nbdev_readme` produces, without rendering every notebook through quarto):
markdown cells as they are, visible code cells as python blocks, `#| hide` cells dropped.

Tables are not typed by hand: a block `<!-- table:NAME -->` ... `<!-- /table -->` in a markdown cell of the index is
regenerated from the committed results files (nbs/results/*.json) by muq.study_report, in the notebook and in the
README alike, so every number there comes from a file that records what produced it.
"""
import json, re, sys
from pathlib import Path
from muq import study_report as report

root = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- table:([\w.:-]+) -->\n)(.*?)\n?(<!-- /table -->)", re.S)   # an empty block too

def tables() -> dict:
    "NAME -> markdown, for every table the results files can give."
    out = {}
    for p in sorted((root / "nbs" / "results").glob("*.json")):
        d = json.loads(p.read_text())
        if p.stem == "curve":
            out.update(report.curve_tables(d))
        elif p.stem.startswith("curve_"):                          # the curve of a changed recipe (make curve ARGS=--recipe ...)
            out.update({p.stem + k[len("curve"):]: v for k, v in report.curve_tables(d).items()})
            base = root / "nbs" / "results" / "curve.json"
            if base.exists(): out[f"{p.stem}:vs_released"] = report.recipe_table(d, json.loads(base.read_text()))
        elif "markdown" in d:                                      # a results file that carries its own tables
            out.update({f"{p.stem}:{k}": v for k, v in d["markdown"].items()})
    return out

def fill(text: str, t: dict) -> str:
    def sub(m):
        if m.group(2) not in t: sys.exit(f"readme: no results for table {m.group(2)!r} (nbs/results/)")
        return m.group(1) + t[m.group(2)] + '\n' + m.group(4)
    return BLOCK.sub(sub, text)

if __name__ == "__main__":
    check = "--check" in sys.argv          # exit 1 when the index or README.md differ from what the results files give
    p = root / "nbs" / "index.ipynb"; nb = json.loads(p.read_text()); t = tables(); parts = []
    for c in nb["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown":
            new = fill(src, t)
            if new != src: lines = new.split("\n"); c["source"] = [l + "\n" for l in lines[:-1]] + [lines[-1]]
            parts.append(new.strip())
        elif not src.strip().startswith("#| hide") and not src.strip().startswith("#|hide"): parts.append(f"```python\n{src.strip()}\n```")
    nb_text, readme = json.dumps(nb, indent=1, ensure_ascii=False) + "\n", "\n\n".join(parts) + "\n"
    if check:
        stale = [str(f.relative_to(root)) for f, want in ((p, nb_text), (root / "README.md", readme)) if f.read_text() != want]
        if stale: sys.exit(f"readme: {', '.join(stale)} out of date with nbs/index.ipynb and nbs/results/: run tools/readme.py and commit")
        print("[check] README.md and the index's tables match nbs/results/"); sys.exit(0)
    p.write_text(nb_text)
    (root / "README.md").write_text(readme)
    print(f"wrote {root / 'README.md'} ({len(BLOCK.findall(chr(10).join(parts)))} generated tables)")
