#!/usr/bin/env bash
# nbdev_clean and nbdev_export must leave no diff: notebooks clean, package in sync with notebooks.
# Compares the tree's state before and after, so unrelated uncommitted work does not trip it.
set -euo pipefail
cd "$(dirname "$0")/.."
state() { git status --porcelain --untracked-files=all -- nbs muq; git diff -- nbs muq | sha1sum; }
before=$(state)
.venv/bin/nbdev_clean
if [ "$(state)" != "$before" ]; then echo "nbdev_clean changed notebooks: run nbdev_clean (or nbdev_install_hooks) and commit" >&2; git status --short -- nbs >&2; exit 1; fi
.venv/bin/nbdev_export
if [ "$(state)" != "$before" ]; then echo "nbdev_export changed muq/: the package is out of sync with nbs/; run nbdev_export and commit" >&2; git status --short -- muq >&2; exit 1; fi
echo "[check] notebooks clean, package in sync"
.venv/bin/python tools/readme.py --check
