"""From a run directory (or a RunBundle) to a RunHistory with its context filled in."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsa_train.telemetry import schema
from nsa_tui.launch import tmux
from nsa_tui.runs.bundle import FileWindow, RunBundle, collect_local
from nsa_tui.runs.history import FORMAT_GENERIC, FORMAT_V1, FORMAT_VIBE, RunHistory, heartbeat_mtimes, source_kind
from nsa_tui.runs.tail import iter_complete_lines, split_complete_lines
from nsa_tui.stopped_ranks import Stop, StoppedRank

if TYPE_CHECKING:
    from nsa_tui.launch.dump import RankProcess

# the line nsa launch's wrapper writes into console.log as it starts torchrun (nsa_tui.launch.runner)
LAUNCH_START_RE = re.compile(r"\[nsa \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] starting: ")
CONSOLE_TAIL_LINES = 60  # enough to hold the trainer's error above torchrun's ~25-line failure report

# training.csv first (cheap, long history), then the heartbeats (events, fallbacks, newest rows)
_FEED_ORDER = {"training_csv": 0, "val_csv": 1, "fallback_csv": 2, "csv": 3, "jsonl": 4, "heartbeat": 5}


def _first_line(w: FileWindow) -> bytes:
    """A file's first line as read (its head, when the bundle read only its tail): a table's header."""
    return (w.head or w.data[:4096]).split(b"\n", 1)[0]


def detect_format_from_bundle(bundle: RunBundle) -> str | None:
    """'nsa-v1', 'nsa-vibe', 'generic', or None when no telemetry is there."""
    files = bundle.files
    info = _json(bundle.text(schema.RUN_JSON))
    if info.get(schema.RUN_FORMAT) == schema.FORMAT_NAME:
        return FORMAT_V1
    hb = sorted(n for n in files if source_kind(n) == "heartbeat")
    records = False  # a heartbeat with a record in it: empty or all garbage, nothing says it is a run's
    for name in hb:
        for line in reversed(split_complete_lines(files[name].data, from_middle=files[name].from_middle)[-50:]):
            rec = schema.decode(line)
            if rec is None:
                continue
            records = True
            if "kind" in rec:
                return FORMAT_V1
            if "msg" in rec:
                return FORMAT_VIBE
    if schema.TRAINING_CSV in files:
        w = files[schema.TRAINING_CSV]
        first = _first_line(w)
        if first.startswith(b"step,") and first.count(b",") + 1 == len(schema.TRAINING_CSV_HEADER):
            return FORMAT_V1
        if first and first[:1].isdigit():
            return FORMAT_VIBE
    if hb and (schema.RUN_JSON in files or schema.LAUNCH_JSON in files):
        return FORMAT_V1
    if hb and records:
        return FORMAT_VIBE
    if any(source_kind(n) in ("jsonl", "csv") for n in files):
        return FORMAT_GENERIC
    if schema.LAUNCH_JSON in files:
        return FORMAT_V1  # started by `nsa launch`, no record yet (or it died before writing one)
    return None


def detect_format(run_dir: Path) -> str | None:
    """The telemetry format of a local run directory ('nsa-v1', 'nsa-vibe', 'generic') or None."""
    return detect_format_from_bundle(collect_local(Path(run_dir)))


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        obj = json.loads(text)
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _what(obj: object) -> str:
    """What a parsed file holds instead of a mapping, in words."""
    if isinstance(obj, bool):
        return "true/false"
    if isinstance(obj, (int, float)):
        return "a number"
    return {list: "a list", str: "text", type(None): "null"}.get(type(obj), type(obj).__name__)


def _window_problem(w: FileWindow) -> str | None:
    """Why a context file's window cannot be parsed whatever it holds: cut (larger than its limit), or empty."""
    if w.from_middle:
        return f"{w.size:,} bytes, more than the {len(w.data):,} read"
    if not w.data.strip():
        return "empty"
    return None


def _read_mapping(
    w: FileWindow | None, parse: Callable[[str], tuple[Any, str | None]], what: str
) -> tuple[dict[str, Any], str | None]:
    """A context file's mapping, and why it cannot be read when it is there but unusable ({} then): its window (cut,
    empty), ``parse`` (text -> (object, None) or (None, why)), or an object that is no mapping (``what`` it must be)."""
    if w is None:
        return {}, None
    problem = _window_problem(w)
    if problem is not None:
        return {}, problem
    obj, problem = parse(w.data.decode("utf-8", errors="replace"))
    if problem is not None:
        return {}, problem
    if not isinstance(obj, dict):
        return {}, f"not {what} ({_what(obj)})"
    return obj, None


def _parse_json(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
    except (ValueError, RecursionError) as e:  # an integer of too many digits, nesting too deep
        return None, f"not valid JSON ({e or type(e).__name__})"


def read_json_object(w: FileWindow | None) -> tuple[dict[str, Any], str | None]:
    """A JSON object file's content, and why it cannot be read when it is there but unusable ({} then)."""
    return _read_mapping(w, _parse_json, "a JSON object")


# the sections of our config (nsa_train.config.Config): a config.yaml with none of them is no config of this trainer
CONFIG_SECTIONS = ("model", "nsa", "data", "train", "runtime", "monitor")


def _parse_yaml(text: str) -> tuple[Any, str | None]:
    import yaml  # only for runs without run.json's config copy

    try:
        return yaml.safe_load(text), None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return None, f"not valid YAML ({getattr(e, 'problem', None) or type(e).__name__}{at})"
    except RecursionError:
        return None, "not valid YAML (nested too deeply)"


def read_config_yaml(w: FileWindow | None) -> tuple[dict[str, Any], str | None]:
    """config.yaml's mapping, and why it cannot be read when it is there but unusable ({} then)."""
    obj, problem = _read_mapping(w, _parse_yaml, "a mapping")
    # ':::: x' is YAML, a mapping even, and no config
    if w is not None and problem is None and not any(k in obj for k in CONFIG_SECTIONS):
        return {}, f"not a config (it has no {', '.join(CONFIG_SECTIONS[:-1])} or {CONFIG_SECTIONS[-1]} section)"
    return obj, problem


def tmux_session_name(launch: dict[str, Any], run_name: str) -> str:
    """The tmux session `nsa launch` used for this run."""
    for key in ("tmux_session", "session"):
        if isinstance(launch.get(key), str) and launch[key]:
            return launch[key]
    name = launch.get("name") if isinstance(launch.get("name"), str) else run_name
    return tmux.session_name(name)  # as nsa launch names it (and halt and attach look for it)


def local_tmux_sessions(socket_name: str | None = None) -> list[str] | None:
    """Session names of a local tmux server (``socket_name``, the one a run's launch.json records, else
    $NSA_TMUX_SOCKET, else the default server); None if tmux is absent."""
    if shutil.which("tmux") is None:
        return None
    try:
        # the launcher's own addressing: the recorded server, never the one $TMUX names (nsa_tui.launch.tmux)
        proc = subprocess.run(
            tmux.tmux_argv("list-sessions", "-F", "#{session_name}", socket=socket_name),
            capture_output=True,
            text=True,
            timeout=5,
            env=tmux.tmux_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # no server running means no sessions (exit 1 with "no server running")
    return [s for s in proc.stdout.splitlines() if s] if proc.returncode == 0 else []


def config_file(h: RunHistory) -> str:
    """The file ``h.config`` was read from (fill_context): run.json's copy of the config, else config.yaml (a run
    before its model is built has no run.json yet). An error in the config names this file, the one read."""
    return schema.RUN_JSON if isinstance(h.run_info.get(schema.RUN_CONFIG), dict) else schema.CONFIG_YAML


_LAUNCH_START_INSIDE = re.compile(LAUNCH_START_RE.pattern.replace("\\[nsa", "(?<=.)\\[nsa", 1))


def _unglued(line: str) -> list[str]:
    """A console line with a launch's `starting:` line glued to its end, as two: the launch before it ended with its
    last line cut (a full disk) and the next launch's wrapper appended to it."""
    m = _LAUNCH_START_INSIDE.search(line)
    return [line[: m.start()], line[m.start() :]] if m else [line]


def fill_context(h: RunHistory, bundle: RunBundle) -> None:
    """The non-metric facts about a run: config, launch record, exit status, console tail,
    halt/anomaly markers, stack dumps, and whether its tmux session still exists."""
    unreadable: dict[str, str] = {}

    def read(name: str, reader: Callable[[FileWindow | None], tuple[dict[str, Any], str | None]]) -> dict[str, Any]:
        obj, problem = reader(bundle.files.get(name))
        if problem is not None:  # said by every tool (status, runs, report): never an empty file's silence
            unreadable[name] = problem
        return obj

    h.run_info = read(schema.RUN_JSON, read_json_object)
    cfg = h.run_info.get(schema.RUN_CONFIG)  # the copy in run.json first (config_file says which was read)
    h.config = cfg if isinstance(cfg, dict) else read(schema.CONFIG_YAML, read_config_yaml)
    h.launch = read(schema.LAUNCH_JSON, read_json_object)
    h.launcher_status = _exit_status(bundle, schema.EXIT_STATUS, unreadable)
    h.previous_launcher_status = _exit_status(bundle, schema.EXIT_STATUS_PREVIOUS, unreadable)
    console = bundle.files.get(schema.CONSOLE_LOG)
    if console is not None:
        lines = console.data.decode("utf-8", errors="replace").splitlines()
        if console.from_middle and lines:
            lines = lines[1:]
        kept = [part.rstrip() for ln in lines if ln.strip() for part in _unglued(ln) if part.strip()]
        h.launcher_console = kept[-CONSOLE_TAIL_LINES:]
        starts = [i for i, ln in enumerate(kept) if LAUNCH_START_RE.match(ln)]
        # per launch: a run refused at --resume twice is judged by the launch before both (RunHistory.console_tail)
        h.console_before_launches = [kept[max(0, i - CONSOLE_TAIL_LINES) : i] for i in starts]
    summaries = [n for n in bundle.files if n == schema.SUMMARY_JSON or n.endswith("_summary.json")]
    h.summary = read(summaries[0], read_json_object) if summaries else {}
    h.unreadable_files = {**bundle.unreadable, **unreadable}
    # read as this nsa's version, as a newer heartbeat is, and said the same way
    # (a generic trainer's *_summary.json has its own keys)
    newer = {schema.RUN_JSON: newer_version(h.run_info)}
    if summaries and summaries[0] == schema.SUMMARY_JSON:
        newer[schema.SUMMARY_JSON] = newer_version(h.summary)
    h.newer_context = {name: v for name, v in newer.items() if v is not None}
    h.halt_requested = schema.HALT_FILE in bundle.files
    h.halt_requested_ts = bundle.files[schema.HALT_FILE].mtime if h.halt_requested else None
    anomaly = (bundle.text(".anomaly_type") or "").strip()
    h.anomaly = anomaly or None
    h.stackdumps = sorted(n for n in bundle.files if n.startswith("stackdump_"))
    mtimes = [w.mtime for n, w in bundle.files.items() if w.mtime and source_kind(n) != "ignore"]
    h.last_write_ts = max(mtimes) if mtimes else None
    h.heartbeat_mtimes = heartbeat_mtimes({n: w.mtime for n, w in bundle.files.items() if w.mtime})
    # a `cp -r` copy of a live run names the original's session: it read `running` for as long as the original ran
    from nsa_tui.launch.runstate import launched_here  # here: runstate imports nsa_tui.runs

    local = bundle.host is None  # over ssh the paths are the host's (its copies are left to its pids)
    h.launch_elsewhere = bool(h.launch) and local and not launched_here(Path(bundle.path), h.launch)
    if h.launch and bundle.tmux_sessions is not None and not h.launch_elsewhere:
        h.process_alive = tmux_session_name(h.launch, bundle.run) in bundle.tmux_sessions
    else:
        h.process_alive = None


_FORMAT_VERSION = re.compile(r"nsa-v(\d+)")  # schema.FORMAT_NAME of another version


def newer_version(obj: dict[str, Any]) -> int | None:
    """The telemetry version of a run.json or summary.json when newer than this nsa's: its `v`, or its `format`
    (`nsa-v2`); None when it is this version or older, or says none."""
    v = obj.get(schema.RUN_VERSION)  # summary.json's SUMMARY_VERSION is the same key
    found = [v] if type(v) is int else []
    fmt = obj.get(schema.RUN_FORMAT)
    if isinstance(fmt, str) and (m := _FORMAT_VERSION.fullmatch(fmt)):
        found.append(int(m.group(1)))
    newest = max(found, default=schema.SCHEMA_VERSION)
    return newest if newest > schema.SCHEMA_VERSION else None


def _exit_status(bundle: RunBundle, name: str, unreadable: dict[str, str]) -> int | None:
    """An exit status file's integer; None when it is not there, and said in ``unreadable`` when it holds another
    thing."""
    status = (bundle.text(name) or "").strip()
    # one optional '-', then decimal digits: '--1' or '²' (isdigit, not int) must not raise
    if status.removeprefix("-").isdecimal():
        return int(status)
    if status:
        unreadable[name] = f"not an exit status ({status[:40]!r})"
    return None


NO_TELEMETRY_FILES = "no heartbeat_rank*.jsonl, training.csv or *_log.jsonl"


def no_telemetry(where: str, h: RunHistory) -> str:
    """The one line for a run directory whose files hold no telemetry: why each telemetry file there is none (empty,
    unreadable, a table it does not read), else which files were looked for."""
    why = "; ".join(f"{name} {problem}" for name, problem in sorted(h.unreadable_files.items()))
    return f"no telemetry in {where} ({why or NO_TELEMETRY_FILES})"


def _feed_key(name: str) -> tuple[int, int, str]:
    """Tables first, then the heartbeats by rank number (as text, heartbeat_rank10 would come before rank2)."""
    rank = schema.heartbeat_rank(name)
    return (_FEED_ORDER[source_kind(name)], -1 if rank is None else rank, name)


def history_from_bundle(bundle: RunBundle, *, max_points: int | None = None, whole: bool = False) -> RunHistory:
    """The history of a bundle's files. ``whole``: the files are read whole (a report), the plain lines of the long
    ones are parsed in blocks (nsa_tui.runs.bulk: the same history, faster), and each telemetry file's bytes are
    dropped from the bundle once fed."""
    h = RunHistory(detect_format_from_bundle(bundle), max_points=max_points)
    fill_context(h, bundle)
    if h.format is None:  # why a heartbeat there is no telemetry (the verdict was `unknown`, health ok, exit 0)
        for name, w in bundle.files.items():
            if name in h.unreadable_files:
                continue
            if source_kind(name) == "heartbeat":
                h.unreadable_files[name] = "is empty" if w.size == 0 else "holds no readable record"
            elif name == schema.TRAINING_CSV:  # there, but not a table this nsa reads ("no training.csv" said)
                first = _first_line(w).decode("utf-8", "replace").strip()
                h.unreadable_files[name] = (
                    f"has a header this nsa does not read ({first[:60]!r})" if first else "is empty"
                )
    names = [n for n in bundle.files if source_kind(n) != "ignore"]
    if h.format != FORMAT_GENERIC:
        names = [n for n in names if source_kind(n) not in ("jsonl", "csv")]
    names.sort(key=_feed_key)
    for name in names:
        w = bundle.files[name]
        if whole:
            from nsa_tui.runs.bulk import feed_whole

            # read once: a long run's files are hundreds of MB, let go of each once it is fed
            bundle.files[name] = dataclasses.replace(w, data=b"")
            feed_whole(h, name, w.data, from_middle=w.from_middle, head=w.head)
            del w
            continue
        lines: Iterable[bytes] = iter_complete_lines(w.data, from_middle=w.from_middle)
        if w.head:
            lines = itertools.chain([w.head], lines)
        # a final line without newline in a file that stopped growing is complete (a crash mid-write is not)
        h.feed(name, lines)
    if bundle.live_pids is not None:  # over ssh: the host's processes came with the files
        settle_liveness(h, listed_pids_alive(h, bundle.pid_host, bundle.live_pids))
        h.stopped_ranks = listed_stopped_ranks(h, bundle.pid_host, bundle.live_pids, bundle.stopped_pids, bundle.host)
    return h


def settle_liveness(h: RunHistory, pids_alive: bool | None, trainer_alive: bool | None = None) -> None:
    """The tmux answer (``h.process_alive`` from fill_context) with the ranks' pids: without a launch.json the
    pids decide. A session reported gone is overruled only by ``trainer_alive``: a rank's pid that is this run's
    trainer by its command line (a pid that merely exists may be reused after a reboot or a kill), as `nsa halt`
    and `nsa dump` check it: the process outlived its session, or the session lives on a server this shell does
    not see (a launch.json from before the socket path was recorded, read with another $TMUX_TMPDIR). Never the
    other way: a live session with no pid found is a run between its ranks' processes."""
    if h.process_alive is None:
        h.process_alive = pids_alive
    elif h.process_alive is False and trainer_alive:
        h.process_alive = True


def local_trainer_alive(h: RunHistory, run_dir: Path) -> bool | None:
    """A rank of the current attempt is alive here as this run's trainer (its command line names nsa_train and
    this run directory); None for another machine's run."""
    if h.run_host != socket.gethostname():
        return None
    from nsa_tui.launch.dump import check_process

    ranks = h.attempt_ranks.items()
    return any(check_process(r, st.pid, run_dir, st.last_ts).problem is None for r, st in ranks if st.pid)


def pid_alive(pid: int) -> bool:
    if pid <= 0:  # kill(0) and kill(-1) signal process groups: they always "succeed"
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


PID_START_SLACK_S = 10.0  # whole-second boot time, and room for a small clock step (NTP) after the record


def started_after(pid: int, ts: float | None) -> bool:
    """Whether the process now holding pid started after ``ts``, when a record of that pid was written: it is
    another process that got the pid since (pids are reused; after a reboot, soon)."""
    from nsa_train.runtime.control import process_start_time  # torch-free

    return later_process(process_start_time(pid), ts)


def later_process(start: float | None, ts: float | None) -> bool:
    """The rule of ``started_after`` for a process that started at ``start`` (unix seconds, None: unknown), here or
    as another host's /proc says (the `live_pids` shell function of nsa_tui/remote/liveness.py's LIVENESS_SH)."""
    return start is not None and ts is not None and start > ts + PID_START_SLACK_S


def pids_alive_on(h: RunHistory, host: str | None, alive: Callable[[int], bool]) -> bool | None:
    """For a run of ``host`` (``h.run_host``: its boot record's, else run.json's): is any rank's pid still there, as
    ``alive`` says? None when the run is another machine's or no record named a pid."""
    if not host or h.run_host != host:
        return None
    pids = [r.pid for r in h.attempt_ranks.values() if r.pid]  # not an earlier attempt's: its pid may be reused
    return any(alive(p) for p in pids) if pids else None


def _written(h: RunHistory) -> dict[int, float | None]:
    """The current attempt's ranks' pids, each with when its newest record was written."""
    return {st.pid: st.last_ts for st in h.attempt_ranks.values() if st.pid}


def local_pids_alive(h: RunHistory) -> bool | None:
    """For a run of this machine: is any rank's pid still there, held by the process that wrote its records?"""
    written = _written(h)
    return pids_alive_on(h, socket.gethostname(), lambda pid: pid_alive(pid) and not started_after(pid, written[pid]))


def listed_pids_alive(h: RunHistory, host: str | None, starts: Mapping[int, float | None]) -> bool | None:
    """For a run of ``host``: is any rank's pid among the host's processes (``starts``: {pid: its start}, as its
    script listed them over ssh), held by the process that wrote its records? local_pids_alive's rule."""
    written = _written(h)
    return pids_alive_on(h, host, lambda pid: pid in starts and not later_process(starts[pid], written[pid]))


def listed_stopped_ranks(
    h: RunHistory,
    host: str | None,
    starts: Mapping[int, float | None],
    stopped: Mapping[int, Stop],
    reached_as: str | None,
) -> list[StoppedRank]:
    """The ranks of a run of ``host`` whose pid the host's listing (``starts``, as listed_pids_alive reads it) holds
    as the process that wrote its records, marked stopped (``stopped``: how): rank_stopped's facts over ssh, each
    with the host as ssh reached it (``reached_as``: `--host`'s HOST), where `kill -CONT` must run."""
    if not host or h.run_host != host:
        return []
    written = _written(h)
    ranks = sorted((r, st.pid) for r, st in h.attempt_ranks.items() if st.pid is not None and st.pid in stopped)
    return [
        StoppedRank(r, pid, stopped[pid], reached_as)
        for r, pid in ranks
        if pid in starts and not later_process(starts[pid], written[pid])
    ]


def check_local_pids(h: RunHistory, run_dir: Path | None = None) -> None:
    """A run of this machine: its ranks' pids with what tmux said (``settle_liveness``)."""
    if h.process_alive is None and h.launch_elsewhere and run_dir is not None:
        # a copy: the original's ranks are alive by pid, but they are not this directory's trainer
        settle_liveness(h, local_trainer_alive(h, run_dir))
    elif h.process_alive is None:
        settle_liveness(h, local_pids_alive(h))
    elif h.process_alive is False and run_dir is not None:
        settle_liveness(h, None, local_trainer_alive(h, run_dir))


LAUNCHER_MODULE = "torch.distributed.run"  # what `nsa launch` runs (launch.json's argv), the ranks' parent


def local_rank_processes(h: RunHistory, run_dir: Path) -> list[RankProcess]:
    """The current attempt's ranks alive on this machine as this run's trainer, each with its /proc state
    (check_process, the one place it is read); [] for another machine's run."""
    if h.run_host != socket.gethostname():
        return []
    from nsa_tui.launch.dump import check_process

    ranks = sorted(h.attempt_ranks.items())
    checked = (check_process(rank, st.pid, run_dir, st.last_ts) for rank, st in ranks if st.pid)
    return [p for p in checked if p.problem is None]


def ranks_without_launcher(h: RunHistory, ranks: list[RankProcess]) -> list[tuple[int, int]]:
    """(rank, pid) of ``ranks`` (local_rank_processes) whose parent is not torchrun any more: torchrun was killed
    (`kill -USR1` or `kill -9` on its pid) and the ranks train on with nothing to supervise them, stop them together
    or record how they end. Only for a run `nsa launch` started here, with no exit status yet."""
    argv = h.launch.get("argv") if h.launch else None
    if not isinstance(argv, list) or LAUNCHER_MODULE not in argv or h.launch_elsewhere or h.exit_status is not None:
        return []
    from nsa_tui.launch.dump import process_argv

    out = []
    for p in ranks:
        parent = process_argv(p.ppid) if p.ppid is not None else None
        if parent is not None and LAUNCHER_MODULE not in parent and p.pid is not None:
            out.append((p.rank, p.pid))
    return out


def stopped_ranks(ranks: list[RankProcess]) -> list[StoppedRank]:
    """Those of ``ranks`` (local_rank_processes) whose process is stopped (SIGSTOP, ctrl-z, a debugger):
    rank_stopped's facts."""
    return [StoppedRank(p.rank, p.pid, p.stop) for p in ranks if p.stop is not None and p.pid is not None]


def note_local_ranks(h: RunHistory, run_dir: Path) -> None:
    """launcher_gone's and rank_stopped's facts of a run whose ranks may run here, from one read of their /proc."""
    ranks = local_rank_processes(h, run_dir)
    h.ranks_without_launcher, h.stopped_ranks = ranks_without_launcher(h, ranks), stopped_ranks(ranks)


def check_local_processes(h: RunHistory, run_dir: Path) -> None:
    """Every process check of a run read from this machine's disk (its pids and tmux answer, launcher_gone's and
    rank_stopped's facts): `nsa status` and `nsa report` judge with the same facts (the report had only the first,
    and said `running` of a run a stopped rank held)."""
    check_local_pids(h, run_dir)
    note_local_ranks(h, run_dir)


def launch_tmux_sessions(run_dir: Path) -> list[str] | None:
    """The sessions of the tmux server a local run was launched on (its launch.json names the socket);
    None for a run without a launch.json, or when tmux cannot be asked."""
    if not (run_dir / schema.LAUNCH_JSON).is_file():
        return None
    try:
        launch = json.loads((run_dir / schema.LAUNCH_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        launch = {}
    return local_tmux_sessions(tmux.recorded_socket(launch))


def load_run(run_dir: Path, *, tmux_sessions: list[str] | None = None, check_processes: bool = True) -> RunHistory:
    """A run's history from the bounded tails of its files (the `nsa status` view).

    Liveness: tmux sessions are listed when the run has a launch.json (started by `nsa launch`);
    otherwise, for a run of this host (its boot record's host, else run.json's), the ranks' pids are checked.
    """
    run_dir = Path(run_dir)
    if tmux_sessions is None and check_processes:
        tmux_sessions = launch_tmux_sessions(run_dir)
    h = history_from_bundle(collect_local(run_dir, tmux_sessions=tmux_sessions))
    if check_processes:
        check_local_processes(h, run_dir)
    return h
