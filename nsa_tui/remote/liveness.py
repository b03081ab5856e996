"""Is a run's process still there, asked on the host it runs on (POSIX sh, shared by the `--host` scripts).

A run started by `nsa launch` is alive while its tmux session is (the server its launch.json names); one
started some other way while any rank's pid (from its records) exists on the host its boot record (else
run.json) names. Over ssh the script lists the host's live pids (from /proc: Linux, busybox too) and our side
looks the ranks' pids up, as nsa_tui.runs.load does for a local run with os.kill(pid, 0).
"""

from __future__ import annotations

# live_pids: the host's process ids on one line, space-separated; returns 1 (prints nothing) without /proc.
# launch_socket DIR: the tmux server DIR/launch.json names: its absolute socket path (tmux_socket_path), else its
# socket name ("" for null: the default server); returns 1 without launch.json or without either key
# (nsa_tui.launch.tmux.recorded_socket is the same rule in Python).
# tmux_on SOCKET ARGS...: tmux on that server (a path: -S, a name: -L, "": the default server).
# recorded_tmux DIR: the sessions of the tmux server DIR/launch.json names (none named: the default server),
# one a line; returns 1 without launch.json or tmux. TMUX is unset by the scripts first.
LIVENESS_SH = r"""
live_pids() {
  [ -r /proc/self/stat ] || return 1
  ls /proc 2>/dev/null | grep '^[0-9][0-9]*$' | tr '\n' ' '
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


def parse_pids(body: bytes) -> frozenset[int]:
    """live_pids' output as a set (anything that is not a number is ignored)."""
    return frozenset(int(p) for p in body.split() if p.isdigit())
