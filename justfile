# Targets mirror the README's commands.

venv := ".venv"
py := venv / "bin/python"

# Install into ./.venv (the CPU torch wheel first: plain `torch` pulls GBs of CUDA).
setup:
    python3 -m venv {{venv}}
    {{venv}}/bin/pip install torch==2.13.0
    {{venv}}/bin/pip install -e '.[dev]'

# The main job: launch the tiny CPU default in tmux and watch it.
run *ARGS:
    {{venv}}/bin/nsa launch --watch {{ARGS}}

# Train the default directly in this terminal (no tmux), in a new runs/direct-<UTC time> each time (a used run
# directory is refused without --resume or --force).
train *ARGS:
    {{py}} -m nsa_train.train --run-dir runs/direct-$(date -u +%Y%m%d-%H%M%S) {{ARGS}}

# The test suite (what CI runs, two xdist workers); `just test -m "not slow"`: the quick part; `-n 0`: one process.
test *ARGS:
    {{py}} -m pytest -q {{ARGS}}

lint:
    {{venv}}/bin/ruff check .
    {{venv}}/bin/ruff format --check .

fmt:
    {{venv}}/bin/ruff format .
    {{venv}}/bin/ruff check --fix .

# Benchmarks whose output fills the README's tables.
bench:
    {{py}} bench/attention.py --table
    {{py}} bench/train_throughput.py
    {{py}} bench/selection_short.py
    {{py}} bench/status_speed.py
    {{py}} bench/file_checks.py

# On a CUDA box: GPU tests, Triton bench and 125M throughput in one go (README, GPU).
gpu-check:
    bash bench/gpu_check.sh
