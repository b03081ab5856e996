"""The `?` screen lays out every key with its description wrapped under its own column: its text wrapped by hand
broke at 120 columns (the box narrower than its lines): `with` and `the pane` stood alone at the left margin."""

from __future__ import annotations

import pytest
from fixtures.runs import make_v1_run

from nsa_tui.watch.screens.help import KEYS
from watch.helpers import NOW, async_test, make_app, screen_lines, wait_loaded


@pytest.mark.parametrize("width", [120, 80, 60])
@async_test
async def test_every_help_line_wraps_under_its_description(tmp_path, width):
    make_v1_run(tmp_path / "r", now=NOW)
    app = make_app(tmp_path / "r")
    async with app.run_test(size=(width, 40)) as pilot:
        await wait_loaded(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        rows = [ln.split("█")[1] for ln in screen_lines(app) if ln.count("█") >= 2]
        body = [r for r in rows if r.strip() and not r.strip().startswith("nsa watch") and set(r) != {"▀"}]
        body = [r for r in body if set(r.strip()) - set("▀▄")]
        keys = [r for r in body if r[2:3] != " "]
        assert [r[2:].split("   ")[0].strip() for r in keys] == [k for k, _ in KEYS], body
        desc_col = keys[0].index("quit")
        for r in body:  # a key's row, or a wrapped row that starts where the descriptions do
            assert r[2:3] != " " or (r[:desc_col].strip() == "" and r[desc_col] != " "), (width, r, body)
        said = " ".join(" ".join(r[desc_col:].split()) for r in body)
        for _, what in KEYS:  # every description whole
            assert what in said, (width, what, said)
