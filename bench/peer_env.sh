#!/usr/bin/env bash
# Creates bench/.venv-peer for `bench/attention.py --impl lucidrains`: one interpreter that imports both
# lucidrains' native-sparse-attention-pytorch (pinned, from the registry) and this project's NSA layer.
# The peer lives in this separate environment only: never vendored, never a dependency of the project.
# Safe to re-run (it reinstalls nothing that is already at the pinned version).
set -euo pipefail
usage="usage: bash bench/peer_env.sh   (no arguments; \$PYTHON picks the interpreter, default python3)"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    echo "$usage"
    exit 0
elif [[ $# -gt 0 ]]; then  # an argument it would ignore must not start building a venv
    echo "error: bench/peer_env.sh takes no arguments, not: $*; $usage" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
PEER_VERSION=0.2.3
VENV=bench/.venv-peer

"${PYTHON:-python3}" -m venv "$VENV"
# torch first and pinned: the local CPU wheel then satisfies the peer's plain `torch` requirement, which would
# otherwise pull several GB of CUDA packages
"$VENV/bin/pip" install --quiet torch==2.13.0
"$VENV/bin/pip" install --quiet "native-sparse-attention-pytorch==${PEER_VERSION}"
# our layer needs only torch to import; --no-deps keeps the trainer's and the tools' dependencies out
"$VENV/bin/pip" install --quiet --no-deps -e .

if "$VENV/bin/pip" list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "error: CUDA packages were installed into $VENV; remove it and install the CPU torch wheel first" >&2
  exit 1
fi
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version

import native_sparse_attention_pytorch  # noqa: F401
import torch

from nsa_train.nsa import NSAAttention  # noqa: F401

print(f"peer env ready: torch {torch.__version__}, native-sparse-attention-pytorch "
      f"{version('native-sparse-attention-pytorch')}, nsa {version('nsa')}")
EOF
