"""A remote machine whose clock runs ahead: ages and health come out as on that machine (records carry
its timestamps), not an hour off. The "remote" is the loopback sshd with a `date` that runs ahead, and
a run whose record timestamps and file mtimes are on that clock, as a skewed machine writes them."""

from __future__ import annotations

import os
import time

import pytest
from fixtures.runs import make_v1_run

from nsa_tui.tail.remote import RemoteRunSource
from nsa_tui.watch.app import WatchApp
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.widgets.run_header import RunHeader

AHEAD_S = 3600


def _date_ahead(bin_dir):
    bin_dir.mkdir()
    real = "/bin/date" if os.path.exists("/bin/date") else "/usr/bin/date"
    script = bin_dir / "date"
    # `date +%s` is the remote script's clock; other formats pass through unchanged
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = "+%s" ]; then echo $(( $({real} +%s) + {AHEAD_S} )); else exec {real} "$@"; fi\n'
    )
    script.chmod(0o755)
    return bin_dir


@pytest.mark.slow
def test_watch_over_ssh_judges_ages_on_the_remote_clock(sshd_factory, tmp_path, monkeypatch):
    s = sshd_factory(with_nsa=False, path_prefix=_date_ahead(tmp_path / "fakebin"))
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    remote_now = time.time() + AHEAD_S
    run = tmp_path / "run"
    make_v1_run(run, steps=400, state="running", now=remote_now, age_s=2.0, log_every=10)
    for p in run.iterdir():
        os.utime(p, (remote_now - 2, remote_now - 2))

    async def check():
        model = RunModel("run", RemoteRunSource(s.host, str(run), interval=0.2), where=f"{s.host}:{run}")
        app = WatchApp([model], host=s.host, remote_runs=[str(run)])
        async with app.run_test(size=(200, 50)) as pilot:
            deadline = time.monotonic() + 20
            header = app.query_one(RunHeader)
            while time.monotonic() < deadline and (header.info.get("step") != 400 or not model.clock_offset_s):
                await pilot.pause(0.1)
            app._redraw(force=True)
            await pilot.pause()
            return model.clock_offset_s, dict(header.info), app.verdicts[0]

    import asyncio

    offset, info, verdict = asyncio.run(check())
    assert offset == pytest.approx(-AHEAD_S, abs=3)
    assert info["step"] == 400
    assert info["hb_age"] is not None and 0 <= info["hb_age"] < 15  # not an hour in the future or past
    assert verdict.state == "running" and verdict.health == "ok", verdict
