"""Follow a run directory on another machine over ONE long-lived OpenSSH connection.

The remote side is remote_script.SCRIPT run by the login shell (nothing installed). It keeps
byte offsets per inode and prints only appended bytes, framed (see frames.py); it says when a
file starts over (first sight, truncation, or replacement detected by the checksum of the last
bytes sent). We keep our own offsets and those checksums too, so after a dropped connection we
reconnect with them and nothing is read twice or joined to another file's bytes. Reading
happens in a thread; ``read()`` only drains what it queued.
"""

from __future__ import annotations

import queue
import threading
import time

from nsa_tui.remote.liveness import parse_pids, parse_stopped
from nsa_tui.remote.ssh import SSHError, describe_ssh_failure, popen_remote, remote_script
from nsa_tui.stopped_ranks import Stop
from nsa_tui.tail.frames import Frame, FrameError, FrameParser
from nsa_tui.tail.lines import LineSplitter
from nsa_tui.tail.remote_script import MTIME_TOOLS, SCRIPT, script_args
from nsa_tui.tail.source import Update

RECONNECT_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
# The host sends a round every --interval, changes or not: a connection with no byte for this long went quiet (a
# laptop that slept, a NAT or VPN that dropped it: TCP stays up, nothing comes) and is dropped and made again.
# Without it the run's old data aged into a false `stalled`, CRITICAL, with the header saying "ssh HOST".
SILENT_ROUNDS = 5
SILENT_MIN_S = 10.0
FIRST_ROUND_SILENT_S = 30.0  # before its first frame: a login and a first listing of a large run directory


class _FileState:
    def __init__(self) -> None:
        self.inode = 0
        self.offset = 0
        self.edge = (0, 0)  # (length, cksum) of the last bytes we got, handed back on reconnect
        self.window_start = 0  # where the file's first bytes we got start (a heartbeat's window), till it restarts
        self.split = LineSplitter()


class RemoteRunSource:
    def __init__(
        self,
        host: str,
        run_dir: str,
        *,
        interval: float = 1.0,
        clock=time.time,
        mtime_tool: str = "auto",
        runs_root: str = "",
    ) -> None:
        """``mtime_tool``: "auto" (the remote picks GNU/busybox stat, else perl, else POSIX ls), or one of
        remote_script.MTIME_TOOLS to force it. ``runs_root``: the host's (absolute), where a run directory renamed
        while watched is looked for besides its parent, as a local watch looks."""
        if mtime_tool != "auto" and mtime_tool not in MTIME_TOOLS:
            raise ValueError(f"mtime_tool must be auto or one of {MTIME_TOOLS}, not {mtime_tool!r}")
        self.mtime_tool = mtime_tool
        self.host = host
        self.run_dir = run_dir
        self.runs_root = runs_root
        # the run directory renamed while watched, as the host followed it: (old, new) paths, oldest first; while it
        # is gone, the directories that hold the run when several do (none is followed)
        self.moves: list[tuple[str, str]] = []
        self.went_several: list[str] = []
        self._boot = ""  # the run's first boot record as the host said it: a new connection looks for it too
        self._round_moved = False
        self._round_several: list[str] = []
        self.interval = interval
        self._clock = clock
        self._files: dict[str, _FileState] = {}
        self._whole_present: set[str] = set()  # whole files listed in the round being read
        self._whole_last: set[str] = set()  # ... and in the previous complete round
        self._queue: queue.Queue[Update | None] = queue.Queue()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._restart = threading.Event()
        # a restart asked for and not begun: it forgets what was read once the next connection answers, not before
        # (`r` with the link down wiped the screen until the host answered again)
        self._fresh = False
        self._proc = None
        self.connected = False
        self.disconnected_since: float | None = clock()
        self.last_error = ""
        self.rounds = 0
        self.dir_missing = False  # the last complete round found no run directory
        self._round_missing = False
        # the host's temp file that could not be written in the last round ("" when it could): that round read
        # nothing, which says nothing about the files (not deleted, not idle)
        self.tmp_blocked = ""
        self._round_blocked = ""
        # the run's process, as the host last said (None: not said, or not connected): the sessions of the tmux
        # server its launch.json names, and (host name, {live pid: its start}, the stopped ones among them) for a run
        # started some other way
        self.tmux_sessions: list[str] | None = None
        self.live_pids: tuple[str, dict[int, float | None], dict[int, Stop]] | None = None
        self._round_tmux: list[str] | None = None
        self._round_pids: tuple[str, dict[int, float | None], dict[int, Stop]] | None = None
        # this connection's last P frame: it tells a process's start once, the next ones only for new processes
        self._pid_starts: dict[int, float | None] = {}
        # mtime per file on our clock (the health engine's last_write_ts), from the remote's mtimes shifted
        # by its clock offset: whole seconds, or within a minute/a round where the remote has only POSIX ls
        self.mtimes: dict[str, float] = {}
        self._round_mtimes: dict[str, int] = {}  # this round's M frames, remote clock
        # our clock minus the remote's (plus the link's delay), from the last round; None until known.
        # Record timestamps ("ts") are on the remote clock: subtract this from our now to age them.
        self.clock_offset_s: float | None = None
        self._told_mtimes: dict[str, int] = {}  # log files' remote mtimes as last announced to the reader
        self._thread = threading.Thread(target=self._run, name=f"nsa-watch-ssh-{host}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ RunSource
    def read(self) -> list[Update]:
        out: list[Update] = []
        while True:
            try:
                u = self._queue.get_nowait()
            except queue.Empty:
                return out
            if u is not None:
                out.append(u)

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def restart(self) -> None:
        self._restart.set()
        self._kill()

    def describe(self) -> str:
        if self.connected:
            if self.tmp_blocked:
                return (
                    f"ssh {self.host}: cannot write a temporary file there ({self.tmp_blocked}): is its /tmp full "
                    "or read-only? Nothing new is read until it can be"
                )
            return f"ssh {self.host}" + (" (run directory not there)" if self.dir_missing else "")
        since = self.disconnected_since or self._clock()
        what = f"disconnected since {time.strftime('%H:%M:%S', time.localtime(since))}"
        return f"ssh {self.host}: {what}" + (f" — {self.last_error}" if self.last_error else "")

    def trouble(self) -> str:
        return "" if self.connected and not self.tmp_blocked else self.describe()

    def close(self) -> None:
        self._stop.set()
        self._kill()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------ connection loop
    def _kill(self) -> None:
        p = self._proc
        if p is not None and p.poll() is None:
            p.kill()

    def _command(self) -> str:
        files = {} if self._fresh else self._files
        resume = [f"{st.inode}:{st.offset}:{st.edge[0]}:{st.edge[1]}" for st in files.values() if st.inode]
        args = script_args(self.run_dir, self.interval, self.mtime_tool, resume, root=self.runs_root, boot=self._boot)
        return remote_script(SCRIPT, args)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self._restart.is_set():
                self._restart.clear()
                self._fresh = True
            got_round = self._session()
            if self._stop.is_set():
                break
            if self._restart.is_set():
                continue
            attempt = 0 if got_round else attempt + 1
            delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
            self._stop.wait(delay)

    def _session(self) -> bool:
        """One ssh connection, until it drops. True if at least one round arrived."""
        try:
            proc = popen_remote(self.host, self._command())
        except (SSHError, OSError) as e:
            self.last_error = str(e)
            return False
        self._proc = proc
        proc.stdin.close()  # type: ignore[union-attr]
        parser = FrameParser(wait_for_start=True)  # after whatever the login shell prints first
        got_round = False
        self._round_mtimes = {}
        self._pid_starts = {}  # a new script: its first P frame tells every start
        heard = [time.monotonic(), False]  # when bytes last came, and whether a frame has
        quiet = threading.Event()  # the guard ended the connection
        done = threading.Event()

        def guard() -> None:
            while not done.wait(0.5):
                limit = self.silent_limit_s if heard[1] else max(FIRST_ROUND_SILENT_S, self.silent_limit_s)
                if time.monotonic() - heard[0] > limit:
                    quiet.set()
                    proc.kill()
                    return

        threading.Thread(target=guard, name=f"nsa-watch-ssh-guard-{self.host}", daemon=True).start()
        try:
            while True:
                data = proc.stdout.read1(1 << 20)  # type: ignore[union-attr]
                if not data:
                    break
                heard[0] = time.monotonic()
                for fr in parser.feed(data):
                    heard[1] = True
                    self._mark_connected()  # any well-formed frame: the link works
                    if self._fresh:
                        self._start_over()
                    if fr.kind == "E":
                        got_round = True
                        self._on_round(fr.now)
                    else:
                        self._on_frame(fr)
        except FrameError as e:
            self.last_error = f"garbled stream ({e}); reconnecting"
        finally:
            done.set()
            proc.kill()
            err = proc.stderr.read().decode("utf-8", errors="replace") if proc.stderr else ""  # type: ignore[union-attr]
            proc.wait()
            if self.connected or self.disconnected_since is None:
                self.disconnected_since = self._clock()
            self.connected = False
            self.tmux_sessions = self.live_pids = None  # unknown until the host says again
            self._round_tmux = self._round_pids = None
            if quiet.is_set() and not self._restart.is_set() and not self._stop.is_set():
                waited = self.silent_limit_s if heard[1] else max(FIRST_ROUND_SILENT_S, self.silent_limit_s)
                self.last_error = f"no answer from {self.host} for {waited:.0f}s (the connection went quiet)"
            elif err.strip() and not self._restart.is_set() and not self._stop.is_set():
                self.last_error = describe_ssh_failure(self.host, err)
            self._wake.set()
        return got_round

    @property
    def silent_limit_s(self) -> float:
        return max(SILENT_MIN_S, SILENT_ROUNDS * self.interval)

    def _start_over(self) -> None:
        """Forget every file read, before the first frame of a connection that reads them all again."""
        self._fresh = False
        self._files.clear()
        self.mtimes.clear()
        self._round_mtimes.clear()
        self._told_mtimes.clear()
        self._whole_present.clear()
        self._whole_last.clear()
        self._queue.put(Update("", reset=True))  # "" = every file: the consumer starts over

    def _mark_connected(self) -> None:
        if not self.connected:
            self.connected = True
            self.disconnected_since = None
            self.last_error = ""

    def _on_round(self, remote_now: int) -> None:
        self.rounds += 1
        self.tmp_blocked, self._round_blocked = self._round_blocked, ""
        if self._round_tmux is not None:
            self.tmux_sessions, self._round_tmux = self._round_tmux, None
        if self._round_pids is not None:
            self.live_pids, self._round_pids = self._round_pids, None
        if self.tmp_blocked:  # nothing was looked at: keep what is known (files, mtimes) as it was
            self._round_mtimes, self._whole_present = {}, set()
            self._wake.set()
            return
        # a round says "N" when the directory is not there; one without it (even an empty directory) had it
        back = self.dir_missing and not self._round_missing
        self.dir_missing, self._round_missing = self._round_missing, False
        self.went_several, self._round_several = self._round_several, []
        moved, self._round_moved = self._round_moved, False
        if back and not moved:  # followed to where it was renamed: the same files, every whole one sent again
            # its whole files (run.json, config.yaml, launch.json, ...) were told deleted while it was gone, and the
            # host sends one only when it changes: the run read as stalled, those files unreadable, until `r`. So
            # it is read again from the start, as `r` does (the reset comes first: old and new data never mix)
            self.restart()
        if remote_now:
            skew = self._clock() - remote_now  # includes the link's delay: seconds, like the mtimes
            self.clock_offset_s = skew
            self.mtimes = {n: m + skew for n, m in self._round_mtimes.items() if m}
            # A log whose mtime moved gets an empty update, so a reader that acts on updates (the watch
            # model's last_write_ts) sees it even when no line came with it (a stale run's first round).
            for name in sorted(self._files):
                m = self._round_mtimes.get(name, 0)
                if m and self._told_mtimes.get(name) != m:
                    self._told_mtimes[name] = m
                    self._queue.put(Update(name))
        self._round_mtimes = {}
        for name in sorted(self._whole_last - self._whole_present):
            self._queue.put(Update(name, deleted=True))
        self._whole_last, self._whole_present = self._whole_present, set()
        self._wake.set()

    def _on_frame(self, fr: Frame) -> None:
        if fr.kind == "N":
            self._round_missing = True
            return
        if fr.kind == "B":
            self._boot = fr.data.decode("utf-8", errors="surrogateescape")
            return
        if fr.kind == "V":  # renamed: read on there (the same inodes, so the same offsets)
            new = fr.data.decode("utf-8", errors="surrogateescape")
            self.moves.append((self.run_dir, new))
            self.run_dir, self._round_moved = new, True
            return
        if fr.kind == "C":
            self._round_several = fr.data.decode("utf-8", errors="replace").splitlines()
            return
        if fr.kind == "X":
            self._round_blocked = fr.name
            return
        if fr.kind == "T":
            self._round_tmux = [s for s in fr.data.decode("utf-8", errors="replace").splitlines() if s]
            return
        if fr.kind == "P":
            self._pid_starts = parse_pids(fr.data, self._pid_starts)
            self._round_pids = (fr.name, self._pid_starts, parse_stopped(fr.data))
            return
        if fr.kind == "F":
            self._whole_present.add(fr.name)
            return
        if fr.kind == "W":
            self._queue.put(Update(fr.name, content=fr.data))
            return
        if fr.kind == "M":
            self._round_mtimes[fr.name] = fr.mtime
            return
        st = self._files.get(fr.name)
        if fr.kind == "O":
            # the events before the window of the file as we follow it: not of one replaced or restarted since
            if st is not None and st.inode == fr.inode and 0 < st.window_start == fr.offset and fr.data:
                self._queue.put(Update(fr.name, older=fr.data))
            return
        if st is None:
            st = self._files[fr.name] = _FileState()
        # "R": the remote starts this file over (first sight, truncated, replaced). A "D" that does not
        # continue exactly where we are cannot happen with a sane remote; treat it as a restart too.
        restart = fr.kind == "R" or st.inode != fr.inode or st.offset != fr.offset
        reset = restart and (st.inode != 0 or st.offset != 0)  # lines we passed on are void
        if restart:
            st.split.reset()
            st.window_start = fr.offset
            if fr.offset > 0:
                st.split.start_mid_line()  # a heartbeat's window: its first line is cut
        st.inode = fr.inode
        st.offset = fr.offset + len(fr.data)
        st.edge = fr.edge
        blob = st.split.feed_blob(fr.data)
        if blob or reset:
            self._queue.put(Update(fr.name, data=blob, reset=reset))
