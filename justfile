# Targets mirror the README's commands. Each recipe's doc is one comment line: `just --list` shows only the last.

# the arguments after a recipe's name reach its command as "$@", each one word as typed (quotes kept)
set positional-arguments

venv := ".venv"
py := venv / "bin/python"
nsa := venv / "bin/nsa"

# Install into ./.venv (the CPU torch wheel first: plain `torch` pulls GBs of CUDA).
setup:
    python3 -m venv {{venv}}
    {{venv}}/bin/pip install torch==2.13.0
    {{venv}}/bin/pip install -e '.[dev]'

# The main job: launch the tiny CPU default in tmux and watch it (ARGS: nsa launch's options).
run *ARGS:
    {{nsa}} launch --watch "$@"

# Train here (no tmux) in a new runs/direct-<UTC time>; to resume one: python -m nsa_train.train --run-dir DIR --resume
train *ARGS:
    {{py}} -m nsa_train.train --run-dir runs/direct-$(date -u +%Y%m%d-%H%M%S) "$@"

# The test suite as CI runs it (two xdist workers); `just test -m "not slow"`: the quick part; `-n 0`: one process.
test *ARGS:
    {{py}} -m pytest -q "$@"

# ruff's lint and format checks.
lint:
    {{venv}}/bin/ruff check .
    {{venv}}/bin/ruff format --check .

# Format and fix what ruff can.
fmt:
    {{venv}}/bin/ruff format .
    {{venv}}/bin/ruff check --fix .

# The README's CPU benchmark commands, as its Benchmarks headings give them (not the peer's: bash bench/peer_env.sh).
bench:
    {{py}} bench/corpus_entropy.py
    {{py}} bench/train_throughput.py --steps 15 --warmup 3
    {{py}} bench/selection_short.py
    {{py}} bench/attention.py --table --repeats 3 --lengths 2048,8192,16384,32768
    {{py}} bench/status_speed.py --lines 1000000 --repeat 7
    {{py}} bench/file_checks.py --gib 1 --repeat 3
    {{py}} bench/report_speed.py --lines 100000 1000000 --repeat 2
    {{py}} bench/watch_load.py --app --repeat 10
    {{py}} bench/watch_live.py --seconds 30

# On a CUDA box: GPU tests, Triton benches, 125M throughput (README, GPU); PARTS: only those (--help lists them).
gpu-check *PARTS:
    bash bench/gpu_check.sh "$@"
