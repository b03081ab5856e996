"""TextLine draws a cached strip: same cells as Textual's own text rendering, redrawn on a new text or width."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import Static

from nsa_tui.watch.widgets.text_line import TextLine
from watch.helpers import async_test


class _Pair(App):
    CSS = "TextLine, Static { height: 1; width: 1fr; background: $boost; }"

    def compose(self) -> ComposeResult:
        yield TextLine()
        yield Static()


def _title() -> Text:
    t = Text("loss 3.38", style="bold", no_wrap=True, overflow="crop")
    t.append("  ■", style="red")
    t.append("val ", style="grey62")
    return t


def _cells(strip) -> list[tuple]:
    """(char, fg, bg, bold) per cell, as drawn: a blank's foreground is not visible; links and mouse
    metadata aside."""

    def rgb(c):
        return c.get_truecolor() if c is not None else None

    return [
        (ch, rgb(s.style.color) if ch != " " else None, rgb(s.style.bgcolor), bool(s.style.bold) and ch != " ")
        for s in strip
        for ch in s.text
    ]


@async_test
async def test_cells_match_textual_rendering_and_follow_width():
    app = _Pair()
    async with app.run_test(size=(40, 4)) as pilot:
        line, ref = app.query_one(TextLine), app.query_one(Static)
        # with spans, and without (where Text.render leaves the base style to its caller)
        for text in (_title(), Text("loss 3.38", style="bold", no_wrap=True, overflow="crop")):
            line.show(text)
            ref.update(text)
            await pilot.pause()
            ours, theirs = (_cells(w.render_lines(Region(0, 0, 40, 1))[0]) for w in (line, ref))
            assert ours == theirs
            assert len(ours) == 40 and ours[0][3], "the text's base style (bold) was dropped"

        line.show(Text("x" * 60, no_wrap=True, overflow="crop"))
        await pilot.pause()
        assert line.render_line(0).text == "x" * 40, "text wider than the widget is cropped"
        await pilot.resize_terminal(50, 4)
        await pilot.pause()
        assert line.render_line(0).text == "x" * 50, "the cached strip follows a new width"
