"""The trainer's process exits without the interpreter's collections over every imported module's objects."""

from __future__ import annotations

import subprocess
import sys

from trainer_helpers import REPO, clean_env

# an atexit hook registered before the trainer's module runs as __main__ (as `python -m nsa_train.train` does):
# it runs at the interpreter's exit, before the module teardown whose collections the freeze spares
PROBE = """
import atexit, gc, runpy, sys
atexit.register(lambda: print(f"frozen {gc.get_freeze_count()}"))
sys.argv = ["nsa_train.train", *sys.argv[1:]]
runpy.run_module("nsa_train.train", run_name="__main__", alter_sys=True)
"""


def test_the_trainer_exits_with_its_objects_frozen_out_of_the_final_collections(tmp_path):
    """Each full collection at exit walked ~360k objects (torch, datasets), several times: 1-2 s of a core after
    every run's end record, in every test that starts a trainer. A refused start (an unknown key) takes the same
    exit as a finished run."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "--run-dir", str(tmp_path / "run"), "--set", "train.no_such_key=1"],
        cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    frozen = int(proc.stdout.split("frozen ")[-1])
    assert frozen > 1000, proc.stdout  # the imported modules' objects, not a handful
