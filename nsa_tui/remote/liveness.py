"""Is a run's process still there, asked on the host it runs on (POSIX sh, shared by the `--host` scripts).

A run started by `nsa launch` is alive while its tmux session is (the server its launch.json names); one
started some other way while any rank's pid (from its records) exists on the host its boot record (else
run.json) names, held by the process that wrote its records: a process that started after them holds a reused pid
(pids are reused; after a reboot, soon). Over ssh the script lists the host's processes with their start times
(from /proc: Linux, busybox too) and our side looks the ranks' pids up, by the rule nsa_tui.runs.load applies to a
local run (os.kill(pid, 0) and the process's start).
"""

from __future__ import annotations

from collections.abc import Mapping

from nsa_tui.stopped_ranks import Stop

# live_pids [SINCE]: the host's processes on one line, space-separated: PID, or PID:START (when it started, whole
# unix seconds: the boot time plus field 22 of /proc/PID/stat) for each one that started SINCE (seconds after boot,
# /proc/uptime's clock; 0 or none: every one) or later. A caller that lists again every few seconds passes the
# uptime it read before its last listing: a process started before that was in it, its start already told, so
# a round costs bytes only for the processes new since. A stopped process has a mark after its token in every
# listing (rank_stopped's facts over ssh): /T in state T (SIGSTOP, ctrl-z), /t in state t (held by a debugger or
# tracer), followed by the tracer's pid (TracerPid) where it can be read: `1234:1765000000/t987`. Returns 1 (prints
# nothing) without /proc.
# launch_socket DIR: the tmux server DIR/launch.json names: its absolute socket path (tmux_socket_path), else its
# socket name ("" for null: the default server); returns 1 without launch.json or without either key
# (nsa_tui.launch.tmux.recorded_socket is the same rule in Python).
# tmux_on SOCKET ARGS...: tmux on that server (a path: -S, a name: -L, "": the default server).
# recorded_tmux DIR: the sessions of the tmux server DIR/launch.json names (none named: the default server),
# one a line; returns 1 without launch.json or tmux. TMUX is unset by the scripts first.
LIVENESS_SH = r"""
live_pids() {
  [ -r /proc/self/stat ] || return 1
  hz_=$(getconf CLK_TCK 2>/dev/null)
  case $hz_ in ''|0|*[!0-9]*) hz_=100 ;; esac  # USER_HZ: 100 wherever getconf is missing (busybox)
  # the command name (field 2) may hold spaces and parentheses: the fields are counted after its last ") "
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v hz="$hz_" -v since="${1:-0}" '
    BEGIN { while ((getline l_ < "/proc/stat") > 0) if (l_ ~ /^btime /) bt = substr(l_, 7) + 0 }
    $1 !~ /^[0-9]+$/ { next }
    { p = $1; ok = sub(/^.*\) /, ""); t = ok && ($1 == "T" || $1 == "t") ? "/" $1 : ""
      if (t == "/t") { f_ = "/proc/" p "/status"  # read for a traced one only: a handful at most
        while ((getline l_ < f_) > 0)
          if (l_ ~ /^TracerPid:[ \t]*[1-9][0-9]*$/) { sub(/^TracerPid:[ \t]*/, "", l_); t = t l_ }
        close(f_) }
      if (!ok || $20 !~ /^[0-9]+$/ || bt <= 0) { printf "%s%s ", p, t; next }
      s = $20 / hz; if (s >= since) printf "%s:%.0f%s ", p, int(bt + s), t; else printf "%s%s ", p, t }'
}
launch_socket() {
  [ -f "$1/launch.json" ] || return 1
  v_=$(sed -n 's|.*"tmux_socket_path" *: *"\(/[A-Za-z0-9_./-]*\)".*|\1|p' "$1/launch.json" 2>/dev/null | head -n 1)
  if [ -n "$v_" ]; then printf '%s' "$v_"; return 0; fi
  grep -q '"tmux_socket" *: *null' "$1/launch.json" 2>/dev/null && return 0
  v_=$(sed -n 's/.*"tmux_socket" *: *"\([A-Za-z0-9_.-]*\)".*/\1/p' "$1/launch.json" 2>/dev/null | head -n 1)
  [ -n "$v_" ] || return 1
  printf '%s' "$v_"
}
tmux_on() {
  o_=$1; shift
  case $o_ in
    /*) tmux -S "$o_" "$@" ;;
    '') tmux "$@" ;;
    *) tmux -L "$o_" "$@" ;;
  esac
}
recorded_tmux() {
  [ -f "$1/launch.json" ] && command -v tmux >/dev/null 2>&1 || return 1
  s_=$(launch_socket "$1") || s_=
  tmux_on "$s_" list-sessions -F '#{session_name}' 2>/dev/null
  return 0
}
"""


MARK = b"/"  # after a pid's token in live_pids' output, the state of a stopped process
SIGNAL_STOPPED, TRACE_STOPPED = b"T", b"t"


def parse_pids(body: bytes, known: Mapping[int, float | None] | None = None) -> dict[int, float | None]:
    """live_pids' output as {pid: its start (unix seconds), None when unknown}; a pid listed without its start
    keeps the one ``known`` (the same host's previous listing) has. Anything malformed is ignored."""
    out: dict[int, float | None] = {}
    for token in body.split():
        pid, sep, start = token.partition(MARK)[0].partition(b":")
        if not pid.isdigit() or (sep and not start.isdigit()):
            continue
        out[int(pid)] = float(start) if sep else (known or {}).get(int(pid))
    return out


def parse_stopped(body: bytes) -> dict[int, Stop]:
    """The pids live_pids' output marks stopped, and how: a listing tells them all, whatever its SINCE."""
    out: dict[int, Stop] = {}
    for token in body.split():
        head, sep, mark = token.partition(MARK)
        pid = head.partition(b":")[0]
        if not sep or not pid.isdigit():
            continue
        tracer = mark[1:]
        if mark == SIGNAL_STOPPED:
            out[int(pid)] = Stop()
        elif mark[:1] == TRACE_STOPPED and (not tracer or tracer.isdigit()):
            out[int(pid)] = Stop(traced=True, tracer=int(tracer) if tracer else None)
    return out
