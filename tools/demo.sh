#!/usr/bin/env bash
# `make demo`: the main job on the built-in offline corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -c "
import torch, numpy as np
from muq.audio import log_mel, mel_tokens
x = torch.randn(1, 24000*10) * 0.1
m = log_mel(x); z = mel_tokens(x)
print('log-mel', tuple(m.shape), 'tokens', tuple(z.shape), f'mean {m.mean():.2f} dB')
"
