"""Follow a run directory on another machine over ONE long-lived OpenSSH connection.

The remote side is remote_script.SCRIPT run by the login shell (nothing installed). It keeps
byte offsets per inode and prints only appended bytes, framed (see frames.py). We keep our
own offsets too, so after a dropped connection we reconnect with them and nothing is read
twice. Reading happens in a thread; ``read()`` only drains what it queued.
"""

from __future__ import annotations

import queue
import threading
import time

from nsa_tui.remote.ssh import SSHError, describe_ssh_failure, popen_remote, remote_script
from nsa_tui.tail.frames import Frame, FrameError, FrameParser
from nsa_tui.tail.lines import LineSplitter
from nsa_tui.tail.remote_script import SCRIPT
from nsa_tui.tail.source import HEARTBEAT_WINDOW, Update

MAX_CHUNK = 16 << 20  # bytes per file per round: a huge history streams in bounded pieces
RECONNECT_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


class _FileState:
    def __init__(self) -> None:
        self.inode = 0
        self.offset = 0
        self.head_sum = 0  # the remote's checksum of the first 64 bytes, handed back on reconnect
        self.split = LineSplitter()


class RemoteRunSource:
    def __init__(self, host: str, run_dir: str, *, interval: float = 1.0, clock=time.time) -> None:
        self.host = host
        self.run_dir = run_dir
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
        self._proc = None
        self.connected = False
        self.disconnected_since: float | None = clock()
        self.last_error = ""
        self.rounds = 0
        self.dir_missing = False
        # newest mtime per log file on our clock (the health engine's last_write_ts), from the remote's
        # mtimes shifted by its clock offset; empty where the remote cannot tell (no GNU/busybox stat)
        self.mtimes: dict[str, float] = {}
        self._remote_mtimes: dict[str, int] = {}
        self._pending_sum: dict[str, tuple[int, int]] = {}  # name -> (inode, head sum) awaiting its D frame
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
            return f"ssh {self.host}" + (" (run directory not there yet)" if self.dir_missing else "")
        since = self.disconnected_since or self._clock()
        what = f"disconnected since {time.strftime('%H:%M:%S', time.localtime(since))}"
        return f"ssh {self.host}: {what}" + (f" — {self.last_error}" if self.last_error else "")

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
        resume = [
            f"{st.inode}:{st.offset}" + (f":{st.head_sum}" if st.head_sum else "")
            for st in self._files.values()
            if st.inode
        ]
        args = [self.run_dir, f"{self.interval:g}", str(MAX_CHUNK), str(HEARTBEAT_WINDOW), *resume]
        return remote_script(SCRIPT, args)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self._restart.is_set():
                self._restart.clear()
                self._files.clear()
                self.mtimes.clear()
                self._remote_mtimes.clear()
                self._whole_present.clear()
                self._whole_last.clear()
                self._queue.put(Update("", reset=True))  # "" = every file: the consumer starts over
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
        parser = FrameParser()
        got_round = False
        try:
            while True:
                data = proc.stdout.read1(1 << 20)  # type: ignore[union-attr]
                if not data:
                    break
                for fr in parser.feed(data):
                    self._mark_connected()  # any well-formed frame: the link works
                    if fr.kind == "E":
                        got_round = True
                        self._on_round(fr.now)
                    else:
                        self._on_frame(fr)
        except FrameError as e:
            self.last_error = f"garbled stream ({e}); reconnecting"
        finally:
            proc.kill()
            err = proc.stderr.read().decode("utf-8", errors="replace") if proc.stderr else ""  # type: ignore[union-attr]
            proc.wait()
            if self.connected or self.disconnected_since is None:
                self.disconnected_since = self._clock()
            self.connected = False
            if err.strip() and not self._restart.is_set() and not self._stop.is_set():
                self.last_error = describe_ssh_failure(self.host, err)
            self._wake.set()
        return got_round

    def _mark_connected(self) -> None:
        if not self.connected:
            self.connected = True
            self.disconnected_since = None
            self.last_error = ""

    def _on_round(self, remote_now: int) -> None:
        self.rounds += 1
        if remote_now:
            skew = self._clock() - remote_now  # includes the link's delay: seconds, like the mtimes
            self.mtimes = {n: m + skew for n, m in self._remote_mtimes.items() if m}
        for name in sorted(self._whole_last - self._whole_present):
            self._queue.put(Update(name, deleted=True))
        self._whole_last, self._whole_present = self._whole_present, set()
        self._wake.set()

    def _on_frame(self, fr: Frame) -> None:
        if fr.kind == "N":
            self.dir_missing = True
            return
        self.dir_missing = False
        if fr.kind == "F":
            self._whole_present.add(fr.name)
            return
        if fr.kind == "W":
            self._queue.put(Update(fr.name, content=fr.data))
            return
        if fr.kind == "M":
            self._remote_mtimes[fr.name] = fr.mtime
            st = self._files.get(fr.name)
            if st is not None and st.inode == fr.inode:
                st.head_sum = fr.head_sum
            else:  # the D frame that follows introduces the file; keep the sum for it
                self._pending_sum[fr.name] = (fr.inode, fr.head_sum)
            return
        st = self._files.get(fr.name)
        if st is None:
            st = self._files[fr.name] = _FileState()
        reset = False
        if not st.inode and fr.offset > 0 and st.offset == 0:
            # first sight of a big heartbeat: the remote starts inside its last window
            st.split.start_mid_line()
            st.offset = fr.offset
        elif (st.inode and fr.inode != st.inode) or fr.offset < st.offset:
            reset = True  # rotated, re-created or truncated
            st.split.reset()
            st.offset = fr.offset
        elif fr.offset > st.offset:
            # The remote resumed past what we hold (should not happen): start the file over.
            reset = True
            st.split.reset()
        st.inode = fr.inode
        st.offset = fr.offset + len(fr.data)
        ino, head_sum = self._pending_sum.pop(fr.name, (0, 0))
        if ino == fr.inode:
            st.head_sum = head_sum
        blob = st.split.feed_blob(fr.data)
        if blob or reset:
            self._queue.put(Update(fr.name, data=blob, reset=reset))
