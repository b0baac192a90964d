"""README.md from nbs/index.ipynb (what `nbdev_readme` produces, without rendering every notebook through quarto):
markdown cells as they are, visible code cells as python blocks, `#| hide` cells dropped."""
import json
from pathlib import Path
root = Path(__file__).resolve().parents[1]
nb = json.loads((root / "nbs" / "index.ipynb").read_text())
parts = []
for c in nb["cells"]:
    src = "".join(c["source"]).strip()
    if c["cell_type"] == "markdown": parts.append(src)
    elif not src.startswith("#| hide") and not src.startswith("#|hide"): parts.append(f"```python\n{src}\n```")
(root / "README.md").write_text("\n\n".join(parts) + "\n")
print(f"wrote {root / 'README.md'}")
