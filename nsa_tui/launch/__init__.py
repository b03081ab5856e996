"""Starting and stopping runs: tmux sessions, torchrun command lines, launch.json,
preflight checks, the exit-status wrapper, and the same over SSH.

Standard library only (plus the stdlib-only config and telemetry modules): the
tools never import torch.
"""
