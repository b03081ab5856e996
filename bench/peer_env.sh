#!/usr/bin/env bash
# Creates bench/.venv-peer for `bench/attention.py --impl lucidrains`: torch 2.13.0 (the CPU wheel; plain
# `torch` would pull several GB of CUDA) and lucidrains' native-sparse-attention-pytorch, pinned. The peer
# is installed from the registry into this separate environment only: never vendored, never a dependency
# of the project.
set -euo pipefail
cd "$(dirname "$0")"
PEER_VERSION=0.2.3
"${PYTHON:-python3}" -m venv .venv-peer
.venv-peer/bin/pip install --quiet torch==2.13.0
.venv-peer/bin/pip install --quiet "native-sparse-attention-pytorch==${PEER_VERSION}"
.venv-peer/bin/python -c "import native_sparse_attention_pytorch, torch; print('peer env ready: torch', torch.__version__)"
