"""Incremental tailing of run files, local (inotify with a polling fallback) and over SSH.

Pure Python, no Textual: the dashboard and benchmarks drive these objects directly.
"""

from nsa_tui.tail.file_tailer import FileTailer, TailChunk
from nsa_tui.tail.lines import LineSplitter

__all__ = ["FileTailer", "LineSplitter", "TailChunk"]
