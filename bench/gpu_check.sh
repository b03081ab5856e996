#!/usr/bin/env bash
# The GPU check in one command, on a CUDA box, from a checkout (installed or not):
#
#   OUT=gpu-results bash bench/gpu_check.sh         # default OUT: bench/out/gpu_check
#   bash bench/gpu_check.sh trainer-125m attention-layers   # only these parts (names below, in summary.txt)
#
# Parts, each under its own time limit so that the whole stays under 10 minutes, each writing one file (8 files
# in all with summary.txt: what a lent machine gives back at most):
#   env.txt              GPU, driver, Python, torch, triton
#   pytest_gpu.log       the GPU tests: the Triton kernels of all three branches against the reference
#                        (fp32 and bf16, outputs and gradients, the block choice), determinism, auto dispatch
#                        without fallback, the NSA layer on CUDA (impl auto and triton) against the reference layer
#   ops.md               bench/triton_vs_fast.py: each branch's Triton kernels against the fast path, 8k-64k
#                        tokens (what decides dispatch.AUTO_TRITON_OPS), and the compressed branch's block
#                        choice in the kernel against scores + top-k; then bench/attention_triton.py --branches
#                        (the paper's comparison: the three branches' kernels against causal SDPA/FlashAttention,
#                        our 8/2 heads of 64 at 8k-64k and the paper's 64/4 heads of 128 at 32k and 64k) and the
#                        selection kernels alone against it, 8k-64k tokens, bf16
#   attention_layers.md  bench/attention_triton.py --layer: the whole NSA layer against its dense twin, nsa.impl
#                        triton (all three branches on Triton) and auto (Triton selection only) with TF32 fp32
#                        matmuls (the trainer's default); auto again with full fp32 ones
#   train_125m.md        bench/train_throughput.py on configs/m7c-125m.yaml, NSA (nsa.impl auto and triton) and
#                        dense, on the bundled corpus instead of FineWeb-Edu (no network needed)
#   trainer_125m.md      `nsa check` of that config and corpus (versions, GPU memory estimate, the NSA self-test
#                        on the GPU path), then the trainer itself (torchrun, one process) for 60 steps with
#                        train.compile=true: its console and `nsa status` of the run (path, fallbacks, tokens/s,
#                        GPU memory, gates)
#   layer_profile.md     bench/layer_profile.py: the NSA layer's (nsa.impl triton) device time against its wall
#                        time, the ops with the most device and host time, at 8k and 64k tokens
#   summary.txt          each part's exit status and seconds
# Exit status: 0 when every part passed, 2 when there is no CUDA device or a PART is not one of the names above
# (nothing else is run), 1 otherwise.
#
# Python: $PYTHON, else .venv/bin/python if there is one, else python3. Wheels in .whl/ (bench/gpu_wheels.sh
# fetches them) are installed into /tmp/site once a CUDA device is found: for an offline image that has torch
# and triton but not the data packages.
set -uo pipefail
PARTS=(gpu-tests ops attention-layers train-125m trainer-125m layer-profile)  # in the order they run
usage="usage: [OUT=DIR] bash bench/gpu_check.sh [PART ...]   (no PART: all; parts: ${PARTS[*]})"
# the names are checked before anything else, so that a misspelt one fails on any machine instead of running
# nothing and passing
for arg in "$@"; do
    case $arg in
        -h | --help)
            echo "$usage"
            exit 0
            ;;
    esac
    if [[ " ${PARTS[*]} " != *" $arg "* ]]; then
        echo "error: no part named '$arg'; the parts: ${PARTS[*]}" >&2
        exit 2
    fi
done
[[ -n "${OUT:-}" ]] && OUT=$(realpath -m -- "$OUT")  # relative to where it was called from
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/bench/out/gpu_check}"
mkdir -p "$OUT"
rm -f "$OUT/summary.txt"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1

# env.txt; exits 2 without a CUDA device
"$PY" - >"$OUT/env.txt" 2>&1 <<'EOF'
import platform
import sys

import torch

print(f"python {platform.python_version()} ({sys.executable})")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda})")
try:
    import triton

    print(f"triton {triton.__version__}")
except ImportError as e:
    print(f"triton: not importable ({e})")
if not torch.cuda.is_available():
    print("no CUDA device: torch.cuda.is_available() is False")
    sys.exit(2)
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}")
EOF
rc=$? why=$(tail -n 1 "$OUT/env.txt")
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$OUT/env.txt" 2>&1
fi
cat "$OUT/env.txt"
if [[ $rc -ne 0 ]]; then
    echo "error: $why (bench/gpu_check.sh needs a CUDA GPU; details in $OUT/env.txt)" >&2
    exit "$rc"
fi

# after the CUDA check: wheels for another Python (the GPU image's) need not install on a box without one
if compgen -G ".whl/*.whl" >/dev/null; then
    if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl; then
        echo "error: could not install the wheels in .whl/ into /tmp/site" >&2
        exit 1
    fi
    export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH#"$PWD"}"  # before the image's own packages
fi

failed=0
record() {  # name, exit status, seconds, output file: one line of summary.txt
    printf '%-18s exit %3d  %4ds  %s\n' "$@" >>"$OUT/summary.txt"
    [[ $2 -eq 0 ]] || failed=1
}
wanted=("$@")  # the parts named on the command line; none: all
part() {  # name, time limit (s), output file, command...
    local name=$1 limit=$2 file=$3 t0=$SECONDS rc
    shift 3
    [[ ${#wanted[@]} -eq 0 || " ${wanted[*]} " == *" $name "* ]] || return 0
    echo "== $name (at most ${limit}s) -> $OUT/$file"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$file"
    rc=${PIPESTATUS[0]}
    [[ $rc -eq 124 || $rc -eq 137 ]] && echo "($name: stopped at its ${limit}s limit)" | tee -a "$OUT/$file"
    record "$name" "$rc" "$((SECONDS - t0))" "$file"
}

trainer_run() {  # as a user would: nsa check, the trainer on the 125M config for 60 steps, then nsa status;
    # compiled (train.compile): train_125m.md has the same model eager, and this is compile's one GPU check
    local run=/tmp/nsa_gpu_check_run rc
    rm -rf "$run" "$run-check"
    "$PY" -c 'from nsa_tui.cli import main; main()' check --config configs/m7c-125m.yaml --set data.source=embedded \
        --set data.val_docs=24 --set train.compile=true --run-dir "$run-check"
    rc=$?
    [[ $rc -eq 0 ]] || echo "(nsa check exited $rc; training anyway, to measure it)"
    "$PY" -m torch.distributed.run --standalone --nproc-per-node 1 -m nsa_train.train \
        --config configs/m7c-125m.yaml --run-dir "$run" --set data.source=embedded --set data.val_docs=24 \
        --set train.steps=60 --set train.log_every=10 --set train.warmup_steps=10 --set train.eval_every=60 \
        --set train.eval_batches=2 --set train.save_every=60 --set train.compile=true || return
    "$PY" -c 'from nsa_tui.cli import main; main()' status "$run"
    "$PY" - "$run" <<'EOF'  # what status leaves out: the path run.json recorded and the last progress record
import json
import sys
from pathlib import Path

run = Path(sys.argv[1])
last = [r for r in map(json.loads, (run / "heartbeat_rank0.jsonl").open()) if r["kind"] == "progress"][-1]
keep = ("step", "toks_per_s", "dt_step_s", "gpu_mem_alloc_gb", "gpu_mem_reserved_gb", "fallbacks")
print("attention_impl", json.loads((run / "run.json").read_text())["attention_impl"], {k: last[k] for k in keep})
EOF
}
export -f trainer_run
export PY  # timeout runs trainer_run in a new bash

layers_both() {  # the layer table, both impls with the trainer's TF32 matmuls, then auto with full fp32 ones
    "$PY" bench/attention_triton.py --layer --warmup 2 --reps 5 --nsa-impl triton && echo &&
        "$PY" bench/attention_triton.py --layer --warmup 2 --reps 5 && echo &&
        "$PY" bench/attention_triton.py --layer --warmup 2 --reps 5 --fp32-matmul highest
}
export -f layers_both
ops() {  # each branch's kernels against the fast path; NSA's three branches (our heads, then the paper's: 64
    # query / 4 KV heads of 128, a group of 16), then selection alone, against SDPA
    "$PY" bench/triton_vs_fast.py && echo && "$PY" bench/attention_triton.py --branches && echo &&
        "$PY" bench/attention_triton.py --branches --heads 64 --kv-heads 4 --head-dim 128 --seq-lens 32768 65536 \
            --warmup 1 --reps 3 && echo && "$PY" bench/attention_triton.py
}
export -f ops

# In order of what the lease must not miss: the kernels' correctness, which kernels auto should run, the
# paper's comparison, tokens/s.
# one process (not pyproject's two xdist workers): one GPU, and an image that may lack pytest-xdist
part gpu-tests 100 pytest_gpu.log "$PY" -m pytest -q -m gpu -p no:cacheprovider -p no:xdist \
    -o addopts="-ra --strict-markers" tests/nsa_triton \
    tests/trainer/test_gpu_memory.py
part ops 110 ops.md bash -c ops
part attention-layers 80 attention_layers.md bash -c layers_both
if why=$("$PY" -c "import datasets" 2>&1); then
    part train-125m 100 train_125m.md "$PY" bench/train_throughput.py --config configs/m7c-125m.yaml \
        --set data.source=embedded --steps 20 --warmup 5 --nsa-impls auto triton
    part trainer-125m 150 trainer_125m.md bash -c trainer_run
else  # the data path needs datasets (and the pyarrow it wants): say which wheels would bring it
    for name in train-125m trainer-125m; do  # each one asked for is a failure under its own name
        [[ ${#wanted[@]} -eq 0 || " ${wanted[*]} " == *" $name "* ]] || continue
        file=${name//-/_}.md
        echo "$name: not run: datasets does not import ($(tail -n 1 <<<"$why")); on a machine with pip access" \
            "run bash bench/gpu_wheels.sh (or bash bench/gpu_wheels.sh --pyarrow if it is pyarrow) and bring .whl/" \
            | tee "$OUT/$file"
        record "$name" 1 0 "$file"
    done
fi
part layer-profile 40 layer_profile.md "$PY" bench/layer_profile.py --seq-lens 8192 65536 --nsa-impl triton --no-sweep

if [[ ! -s "$OUT/summary.txt" ]]; then  # cannot happen with the names checked above; a pass must mean a part ran
    echo "error: no part ran" >&2
    exit 1
fi
echo "== summary"
cat "$OUT/summary.txt"
exit "$failed"
