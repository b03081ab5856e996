"""The remote end of every `--host` command: enter `--remote-dir`, find a RUN there.

One POSIX sh prelude, shared by the scripts that launch, halt, judge and watch runs over
ssh, so that a RUN name means the same run to all of them:

- ``--remote-dir DIR`` is entered first (the login directory without it). A leading ``~``
  is the *remote* home: quoted (``'~/nsa'``) it reaches us unexpanded, and unquoted the
  local shell would have made it the local home.
- the checkout's ``.venv/bin`` goes first on PATH, so its `nsa` is the one used;
- a RUN is a directory (as given, relative to DIR), else a name under the runs root
  (``$NSA_RUNS_DIR``, a leading ``~`` the remote home, else ``runs``), else "" for the newest run there: the
  directory (not a plain file, not a hidden one) with the newest activity that holds a run (holds_run, the
  contract's definition) and can be read, as a local RUN of "" (nsa_tui.rundir.newest_run).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from nsa_train.runtime.rundir import DEFAULT_RUNS_ROOT, RUNS_ROOT_ENV
from nsa_train.telemetry.schema import KIND_BOOT, LAUNCH_JSON, heartbeat_name
from nsa_tui.launch.tmux import RUNNER_MODULE, SESSION_ENCODED, SESSION_PREFIX, TMUX_SOCKET_ENV, tmux_words
from nsa_tui.launched import INDEX_NAME, RECENT, STATE_HOME_ENV
from nsa_tui.moved_runs import HEAD_BYTES
from nsa_tui.remote.holds_sh import HOLDS_RUN_SH
from nsa_tui.rundir import ACTIVITY_FILES

# shared by the lookup below and the tail script of `nsa watch --host` (nsa_tui.tail.remote_script)
JSON_AWK_SH = r"""
# awk functions that read a JSON object json.dumps wrote (no python assumed on the host): jobject(S) sets v[KEY] to
# each top-level key's value (a string decoded), str[KEY] for a string, not to a list or object value, which it
# passes over (then nested_ = 1: a boot record's argv comes before its run_dir); bad = 1 for what is not such JSON
json_awk_='
    # past the list or object at position p of s (its strings passed over whole): pos_; 0 when it does not end
    function jskip(s, p,   depth, c, instr) { depth = 0; instr = 0
      for (; p <= length(s); p++) { c = substr(s, p, 1)
        if (instr) { if (c == "\\") p++; else if (c == "\"") instr = 0; continue }
        if (c == "\"") instr = 1
        else if (c == "[" || c == "{") depth++
        else if ((c == "]" || c == "}") && !--depth) { pos_ = p + 1; return 1 } }
      return 0 }
    function hex(h,   i, c, n) { n = 0
      for (i = 1; i <= 4; i++) { c = index("0123456789abcdef", tolower(substr(h, i, 1))); if (!c) { bad = 1; return 0 }
        n = n * 16 + c - 1 }
      return n }
    function utf8(c) { if (c < 128) return sprintf("%c", c)
      if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
      if (c < 65536) return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
      return sprintf("%c%c%c%c", 240 + int(c / 262144), 128 + int(c / 4096) % 64, 128 + int(c / 64) % 64,
        128 + c % 64) }
    # the JSON string of s from position p (past its opening quote); pos_ is then past its closing one
    function jstr(s, p,   out, c, e, n, lo) { out = ""
      while (p <= length(s)) { c = substr(s, p, 1)
        if (c == "\"") { pos_ = p + 1; return out }
        if (c != "\\") { out = out c; p++; continue }
        e = substr(s, p + 1, 1); p += 2
        if (e == "\"" || e == "\\" || e == "/") { out = out e; continue }
        if (e != "u") { bad = 1; continue }
        n = hex(substr(s, p, 4)); p += 4
        if (n >= 55296 && n < 56320 && substr(s, p, 2) == "\\u") { lo = hex(substr(s, p + 2, 4))
          if (lo >= 56320 && lo < 57344) { n = 65536 + (n - 55296) * 1024 + lo - 56320; p += 6 } }
        if (n < 32 || (n >= 55296 && n < 57344)) bad = 1
        out = out utf8(n) }
      bad = 1; return out }
    function jobject(s,   p, k) { split("", v); split("", str); bad = 0; nested_ = 0; p = index(s, "{")
      if (!p) { bad = 1; return }
      p++
      while (!bad) { while (substr(s, p, 1) ~ /[ \t,]/) p++
        if (substr(s, p, 1) != "\"") break
        k = jstr(s, p + 1); p = pos_
        while (substr(s, p, 1) ~ /[ \t:]/) p++
        if (substr(s, p, 1) == "\"") { v[k] = jstr(s, p + 1); str[k] = 1; p = pos_ }
        else if (match(substr(s, p), /^-?[0-9][0-9.eE+-]*/)) { v[k] = substr(s, p, RLENGTH); p += RLENGTH }
        else if (match(substr(s, p), /^[a-z]+/)) p += RLENGTH
        else if (substr(s, p, 1) ~ /[[{]/ && jskip(s, p)) { nested_ = 1; p = pos_ }
        else { nested_ = 1; return } }
      # a line cut after a value (a torn last line) is not the object: json.loads refuses it too
      if (substr(s, p, 1) != "}") bad = 1 }
'
"""

# Defines holds_run DIR (nsa_tui.remote.holds_sh: returns 0 when DIR holds a run), enter_dir (uses $dir; returns 1
# when it cannot cd), mtime PATH (its mtime in unix seconds, following a link; 0 when unknown), list_runs DIR (the
# run directories under DIR, newest activity first, one name a line, as nsa_tui.rundir.list_runs orders them
# locally) and find_run RUN (sets $d, "" when there is no such run, and
# $where, the runs root as an absolute path, for the error message). CDPATH is unset: with it a `cd` may print
# the directory, into the output our side parses.
PRELUDE = r"""
unset CDPATH
enter_dir() {
  case $dir in "~") dir=$HOME ;; "~/"*) dir=$HOME/${dir#"~/"} ;; esac
  [ -n "$dir" ] || return 0
  cd -- "$dir" >/dev/null 2>&1 || return 1
  if [ -x .venv/bin/nsa ]; then PATH=$PWD/.venv/bin:$PATH; fi
  return 0
}
mtime() {
  # GNU or busybox stat, BSD stat, else date -r
  mt_=$(stat -L -c %Y -- "$1" 2>/dev/null || stat -L -f %m -- "$1" 2>/dev/null || date -r "$1" +%s 2>/dev/null)
  case $mt_ in ''|*[!0-9]*) mt_=0 ;; esac
  echo "$mt_"
}
list_runs() {
  # directories only, not hidden ones; a run's time is the newest mtime of the files that show activity, then
  # (for a directory with none of them, and to break ties) the directory's own, which moves with anything made
  # in it (a report/, a .HALT): to the nanosecond with GNU stat, as Python's st_mtime; one stat call per run
  stfmt=
  for f_ in %.9Y %Y; do
    case $(stat -L -c "$f_" -- . 2>/dev/null) in ''|*[!0-9.]*) ;; *) stfmt=$f_; break ;; esac
  done
  for e in "$1"/*; do
    [ -d "$e" ] || continue
    printf 'D %s\n' "${e##*/}"
    set -- "$e"
    for f in @ACTIVITY_FILES@; do [ -e "$e/$f" ] && set -- "$@" "$e/$f"; done
    if [ -n "$stfmt" ]; then stat -L -c "$stfmt" -- "$@" 2>/dev/null
    else for f in "$@"; do mtime "$f"; done; fi
  done | awk '/^D / { n = substr($0, 3); if (!(n in m)) { m[n] = -1; own[n] = ""; o[++k] = n }; next }
    own[n] == "" { own[n] = $1 + 0; next }
    $1 + 0 > m[n] + 0 { m[n] = $1 }
    END { for (i = 1; i <= k; i++) { n = o[i]; t = m[n] + 0 < 0 ? own[n] : m[n]
      printf "%020.9f %020.9f %s\n", t, own[n], n } }' | LC_ALL=C sort -r | cut -d ' ' -f 3-
}
root=${@RUNS_ROOT_ENV@:-@DEFAULT_RUNS_ROOT@}
# a quoted ~ (a .env file, a systemd unit) is the home directory, as nsa_train.runtime.rundir.runs_root reads it
case $root in "~") root=$HOME ;; "~/"*) root=$HOME/${root#"~/"} ;; esac
find_run() {
  case $root in /*) where=$root ;; *) where=$PWD/$root ;; esac
  d= noted= twice= insession= unread= renamed= renamed_many=
  if [ -z "$1" ]; then
    # the newest that holds a run and can be read (nsa_tui.rundir.newest_run): not a report's --out
    d=$(list_runs "$root" | while IFS= read -r n_; do
      e_=$root/$n_
      [ -r "$e_" ] && [ -x "$e_" ] && holds_run "$e_" && { printf '%s\n' "$n_"; exit 0; }
    done)
    [ -n "$d" ] && d=$root/$d
  elif [ -d "$1" ]; then d=$1
  elif [ -d "$root/$1" ]; then d=$root/$1
  else
    # renamed since it started there (nsa_tui.rundir.renamed_run): a path as given (a relative one against the
    # directory we are in, then under the runs root), a name under the runs root
    case $1 in
      /*) find_renamed "$1" ;;
      */*) r_=$1; while case $r_ in ./*) true ;; *) false ;; esac; do r_=${r_#./}; done
        find_renamed "$PWD/$r_"; [ -n "$renamed" ] || find_renamed "$where/$1" ;;
      *) find_renamed "$where/$1" ;;
    esac
    case $1 in /*) ;; *) [ -n "$d$renamed_many" ] || find_launched "$1" ;; esac
    [ -n "$d$twice$renamed_many" ] || find_session "$1"
    # a launched run renamed beside the directory recorded for it, gone since (nsa_tui.rundir.renamed_launch)
    case $1 in */*|.|..) ;; *) if [ -z "$d$twice$renamed_many" ] && g_=$(gone_launch "$1") && [ -n "$g_" ]; then
      find_renamed "${g_##*"$tab_"}"; fi ;;
    esac
    # found by its name elsewhere: a directory this user cannot list is refused, as here (nsa_tui.rundir.launched_run);
    # tried, not `test -r`, which busybox answers yes to for root, whatever the capabilities
    if [ -n "$d" ] && [ -d "$d" ] && ! (cd -- "$d" && ls -a .) >/dev/null 2>&1; then
      unread=$d d= noted= insession= renamed=
    fi
  fi
  [ -n "$d" ] && [ -d "$d" ] || d=
}
tab_=$(printf '\t')
# the host user's launch index (nsa_tui.launched.index_path): an absolute $XDG_STATE_HOME, else ~/.local/state
index_path() {
  case ${@STATE_HOME_ENV@:-} in /*) printf '%s' "$@STATE_HOME_ENV@" ;; *) printf '%s' "$HOME/.local/state" ;; esac
  printf '/nsa/@INDEX_NAME@'
}
# launched NAME: the runs the index records under NAME (NAME '': under any name, as nsa_tui.launched.runs_here) whose
# directory is there, newest first, one "TS<tab>DIR" a line (DIR as recorded), each directory (its physical path) once
# with its latest line, as nsa_tui.launched.named reads it. The index is
# JSON lines json.dumps wrote: decoded here by awk (no python on the host assumed); a line it cannot read is
# skipped, as there, and so is a path with a control character in it (no line can carry it).
launched() {
  index_lines "$1" | while IFS= read -r l_; do
    t_=${l_%%"$tab_"*}; e_=${l_#*"$tab_"}; n_=${e_%%"$tab_"*}; e_=${e_#*"$tab_"}; e_=${e_%%"$tab_"*}  # not NAME
    [ -d "$e_" ] || continue
    p_=$(cd -P -- "$e_" 2>/dev/null && pwd -P) || p_=$e_  # one this user may not enter: refused by find_run
    printf '%s\t%s\t%s\t%s\n' "$t_" "$n_" "$p_" "$e_"  # no tab in a path: the index cannot carry one
  done | awk -F '\t' '!($3 in ts) || $2 + 0 > at[$3] { ts[$3] = $1; at[$3] = $2 + 0; as[$3] = $4 }
    END { for (p in ts) print ts[p] "\t" as[p] }' | LC_ALL=C sort -r
}
# index_lines NAME: each directory the index records under NAME (its latest line), as "TS<tab>LINE<tab>DIR"; with
# NAME '', every directory it records, as "TS<tab>LINE<tab>DIR<tab>NAME" (a name with a newline left out)
index_lines() {
  ix_=$(index_path)
  [ -r "$ix_" ] || return 0
  want_=$1 LC_ALL=C awk "$json_awk_"'
    BEGIN { want = ENVIRON["want_"] }  # not awk -v, which reads a backslash in the name as an escape
    { jobject($0); if (bad || nested_ || !str["name"] || v["name"] == "" || !str["run_dir"]) next
      if (substr(v["run_dir"], 1, 1) != "/" || !("ts" in v) || str["ts"]) next
      d = v["run_dir"]; if (!(d in at)) o[++k_] = d
      at[d] = NR; nm[d] = v["name"]; ts[d] = v["ts"] + 0 }
    END { for (i = 1; i <= k_; i++) { d = o[i]
      if (want == "" && !index(nm[d], "\n")) printf "%020.6f\t%d\t%s\t%s\n", ts[d], at[d], d, nm[d]
      else if (nm[d] == want) printf "%020.6f\t%d\t%s\n", ts[d], at[d], d } }
  ' "$ix_" 2>/dev/null
}
# deleted_in DIR: the runs the index records as started in DIR (its physical path; DIR '': anywhere) whose directory
# is gone, newest launch first, at most @RECENT@, one "TS<tab>TAKEN<tab>RUN_DIR<tab>NAME" a line (RUN_DIR as recorded;
# TAKEN 1 when a recorded run of the name is there), as nsa_tui.deleted_runs.deleted_launches lists them: each directory
# once (its latest launch, its parent's links resolved), not one renamed beside it (a directory there whose run first
# booted at it)
deleted_in() {
  h_=
  if [ -n "$1" ]; then h_=$(cd -P -- "$1" 2>/dev/null && pwd -P) || return 0; fi
  g_=$(lp_= lr_=; index_lines "" | while IFS= read -r l_; do
    t_=${l_%%"$tab_"*}; e_=${l_#*"$tab_"}; n_=${e_%%"$tab_"*}; e_=${e_#*"$tab_"}; nm_=${e_#*"$tab_"}; e_=${e_%%"$tab_"*}
    if [ -e "$e_" ] || [ -L "$e_" ]; then
      [ -d "$e_" ] && printf 'H\t%s\n' "$nm_"  # there: its name is taken
      continue
    fi
    p_=${e_%/*}; [ -n "$p_" ] || p_=/
    [ "$p_" = "$lp_" ] || { lp_=$p_; lr_=$(cd -P -- "$p_" 2>/dev/null && pwd -P) || lr_=$p_; }  # a parent once
    if [ -z "$h_" ] || [ "$lr_" = "$h_" ]; then
      printf 'G\t%s\t%s\t%s\t%s\t%s\n' "$t_" "$n_" "${lr_%/}/${e_##*/}" "$e_" "$nm_"
    fi
  done)
  case $g_ in *"G$tab_"*) ;; *) return 0 ;; esac
  # the paths the runs renamed beside them began at: each parent's directories (its links resolved) read once
  was_=$(printf '%s\n' "$g_" | LC_ALL=C awk -F '\t' '$1 == "G" { p = $4; sub(/\/[^\/]*$/, "", p)
      if (p == "") p = "/"; if (!(p in s)) { s[p] = 1; print p } }' | while IFS= read -r p_; do
    for e_ in "$p_"/*; do [ -d "$e_" ] && first_run_dir "$e_"; done
  done)
  printf '%s\n' "$g_" | was_=$was_ LC_ALL=C awk -F '\t' '
    BEGIN { n = split(ENVIRON["was_"], w, "\n"); for (i = 1; i <= n; i++) renamed[w[i]] = 1 }
    $1 == "H" { sub(/^H\t/, ""); taken[$0] = 1; next }
    $1 == "G" && !($4 in renamed) && (!($4 in at) || $3 + 0 > at[$4]) {
      at[$4] = $3 + 0; ts[$4] = $2; rd[$4] = $5; nm[$4] = $0
      for (i = 1; i <= 5; i++) sub(/^[^\t]*\t/, "", nm[$4]) }  # the name, tabs and all (no {5}: mawk has none)
    END { for (p in ts) printf "%s\t%d\t%s\t%s\n", ts[p], (nm[p] in taken), rd[p], nm[p] }
  ' | LC_ALL=C sort -r | head -n @RECENT@
}
# find_launched NAME: a bare NAME found nowhere else, looked up in the index (nsa_tui.rundir.launched_run): sets $d
# and $noted (its launch time) for the one run so named, else $twice (launched's lines) for several
find_launched() {
  case $1 in */*|.|..) return 0 ;; esac
  l_=$(launched "$1")
  case $l_ in
    '') ;;
    *"
"*) twice=$l_ ;;
    *) noted=${l_%%"$tab_"*}; d=${l_#*"$tab_"} ;;
  esac
}
# session_of NAME: run NAME's tmux session, as nsa_tui.launch.tmux.session_name makes it: "@SESSION_PREFIX@" and the
# name, each byte outside printable ASCII, and each of @SESSION_ENCODED@, percent-encoded
session_of() {
  n_=$1 LC_ALL=C awk 'BEGIN { for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i
    s = ENVIRON["n_"]; out = "@SESSION_PREFIX@"
    for (i = 1; i <= length(s); i++) { c = substr(s, i, 1); o = ord[c]
      out = out (o >= 32 && o < 127 && !index("@SESSION_ENCODED@", c) ? c : sprintf("%%%02X", o)) }
    print out }'
}
# find_session NAME: a bare NAME found nowhere else, neither in the index, looked for as a live tmux session (on
# $NSA_TMUX_SOCKET's server, else the default) as nsa_tui.rundir.session_run looks: the directory its pane's launch
# wrapper runs for (/proc), when that directory's launch.json names this run and session; sets $d and $insession
find_session() {
  case $1 in */*|.|..) return 0 ;; esac
  command -v tmux >/dev/null 2>&1 || return 0
  w_=$1 s_=$(session_of "$1")
  t_==$s_
  case $t_ in *';') t_=${t_%';'}'\;' ;; esac  # a last ';' would end the tmux command (nsa_tui.launch.tmux._literal)
  for p_ in $(session_panes "$t_"); do
    e_=$(wrapper_dir "$p_") || continue
    if [ -d "$e_" ] && json_names "$e_/@LAUNCH_JSON@" "$s_" "$w_"; then d=$e_ insession=$s_; fi
    return 0
  done
}
# session_panes TARGET: the pids of the panes of the tmux session TARGET (=NAME) on $NSA_TMUX_SOCKET's server, else
# the default; fails when there is no such session
session_panes() {
  t_=$1
  case ${NSA_TMUX_SOCKET:-} in '') set -- ;; /*) set -- -S "$NSA_TMUX_SOCKET" ;; *) set -- -L "$NSA_TMUX_SOCKET" ;; esac
  (unset TMUX TMUX_PANE; tmux "$@" list-panes -s -t "$t_" -F '#{pane_pid}' 2>/dev/null)
}
# wrapper_dir PID: the run directory the launch wrapper of pid PID runs for (/proc: its last three arguments are
# -m @RUNNER_MODULE@ RUN_DIR, an absolute path); fails for another process
wrapper_dir() {
  case $1 in ''|*[!0-9]*) return 1 ;; esac
  a_=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | tail -n 3)
  case $a_ in "-m
@RUNNER_MODULE@
/"*) ;; *) return 1 ;; esac
  a_=${a_#*"
"}
  printf '%s\n' "${a_#*"
"}"
}
# first_run_dir DIR: the run directory the first line of DIR's rank 0 heartbeat names when it is a boot record
# (nsa_tui.moved_runs.first_run_dir: its first @HEAD_BYTES@ bytes); nothing without one
first_run_dir() {
  head -c @HEAD_BYTES@ -- "$1/@HEARTBEAT0@" 2>/dev/null | head -n 1 | LC_ALL=C awk "$json_awk_"'
    NR == 1 { jobject($0); if (!bad && str["kind"] && v["kind"] == "@KIND_BOOT@" && str["run_dir"]) print v["run_dir"]
    }'
}
# find_renamed OLD: a run renamed since it started at OLD, a path not there (nsa_tui.moved_runs.renamed_to): the
# directories beside OLD and under the runs root whose run first booted at OLD (its parent's links resolved, as the
# trainer records it). Sets $d and $renamed (OLD as an absolute path) for one, $renamed and $renamed_many (one a
# line) for several
find_renamed() {
  case $1 in /*) o_=${1%/} ;; *) o_=$PWD/${1%/} ;; esac
  p_=${o_%/*}; [ -n "$p_" ] || p_=/
  h_=$(cd -P -- "$p_" 2>/dev/null && pwd -P) || h_=$p_
  h_=${h_%/}/${o_##*/}
  f_=$(for r_ in "$p_" "$where"; do
    for e_ in "$r_"/*; do
      [ -d "$e_" ] && [ "$e_" != "$h_" ] && [ "$(first_run_dir "$e_")" = "$h_" ] && printf '%s\n' "$e_"
    done
  done | LC_ALL=C sort -u)
  case $f_ in
    '') ;;
    *"
"*) renamed=$o_ renamed_many=$f_ ;;
    *) renamed=$o_ d=$f_ ;;
  esac
}
# deleted_facts NAME: what is known of run NAME, whose directory is not there (nsa_tui.deleted_runs), a line each:
# the directory the index last recorded for it that is gone, and when; its tmux session; 1 when that session is alive
# (and does not run the launch of a directory that is there: another run of this name), else 0; the directory its
# launch wrapper runs for; the wrapper's pid; $NSA_TMUX_SOCKET
deleted_facts() {
  g_=$(gone_launch "$1")
  s_=$(session_of "$1") alive_=0 wd_= pid_=
  t_==$s_
  case $t_ in *';') t_=${t_%';'}'\;' ;; esac
  if command -v tmux >/dev/null 2>&1 && panes_=$(session_panes "$t_"); then
    alive_=1
    for p_ in $panes_; do
      [ -n "$pid_" ] || pid_=$p_
      wd_=$(wrapper_dir "$p_") && break
    done
    if [ -n "$wd_" ] && { [ -e "$wd_" ] || [ -L "$wd_" ]; }; then alive_=0; fi
  fi
  e_=${g_#*"$tab_"}
  printf '%s\n%s\n%s\n%s\n%s\n%s\n%s' "${e_#*"$tab_"}" "${e_%%"$tab_"*}" "$s_" "$alive_" "$wd_" "$pid_" \
    "${NSA_TMUX_SOCKET:-}"
}
# gone_launch NAME: the directory the index last recorded for run NAME that is gone, as "LINE<tab>TS<tab>DIR"; nothing
# when none is
gone_launch() {
  index_lines "$1" | while IFS= read -r l_; do
    t_=${l_%%"$tab_"*}; e_=${l_#*"$tab_"}; n_=${e_%%"$tab_"*}; e_=${e_#*"$tab_"}
    [ -e "$e_" ] || [ -L "$e_" ] || printf '%s\t%s\t%s\n' "$n_" "$t_" "$e_"
  done | LC_ALL=C sort -n | tail -n 1
}
# json_names FILE SESSION NAME: FILE (a launch.json) is a JSON object whose tmux_session is SESSION and name NAME
json_names() {
  s_=$2 n_=$3 LC_ALL=C awk "$json_awk_"'{ all = all " " $0 }
    END { jobject(all); exit !(!bad && str["tmux_session"] && v["tmux_session"] == ENVIRON["s_"] && str["name"] &&
      v["name"] == ENVIRON["n_"]) }' "$1" 2>/dev/null
}
""".replace("@ACTIVITY_FILES@", " ".join(ACTIVITY_FILES))
PRELUDE = (
    HOLDS_RUN_SH
    + JSON_AWK_SH
    + (
        PRELUDE.replace("@RUNS_ROOT_ENV@", RUNS_ROOT_ENV)
        .replace("@DEFAULT_RUNS_ROOT@", DEFAULT_RUNS_ROOT)
        .replace("@STATE_HOME_ENV@", STATE_HOME_ENV)
        .replace("@INDEX_NAME@", INDEX_NAME)
        .replace("@SESSION_PREFIX@", SESSION_PREFIX)
        .replace("@SESSION_ENCODED@", SESSION_ENCODED.replace("\\", "\\\\"))  # an awk string
        .replace("@RUNNER_MODULE@", RUNNER_MODULE)
        .replace("@LAUNCH_JSON@", LAUNCH_JSON)
        .replace("@HEAD_BYTES@", str(HEAD_BYTES))
        .replace("@HEARTBEAT0@", heartbeat_name(0))
        .replace("@KIND_BOOT@", KIND_BOOT)
        .replace("@RECENT@", str(RECENT))
    )
)


# Set here, they name the runs root and the tmux server on the host for every --host command, passed explicitly as
# `env K=V` (sshd drops client variables unless AcceptEnv allows them): the server `nsa launch --host` starts a
# session on is the one the host's lookup of a run by its live session asks (find_session), not the host's own
# $NSA_TMUX_SOCKET, which that launch did not use. Unset here, the host's own (its login environment) holds.
FORWARDED_ENV = (TMUX_SOCKET_ENV, RUNS_ROOT_ENV)


def forwarded_env(names: tuple[str, ...], environ: Mapping[str, str] | None = None) -> list[str]:
    """``K=V`` for each of ``names`` set here: the prefix of an ``env K=V ... sh -c`` command."""
    env = os.environ if environ is None else environ
    return [f"{k}={env[k]}" for k in names if env.get(k)]


LISTING = "@all:"  # a RUN argument that asks for every run directory under what follows
HINT = "pass --remote-dir where `nsa launch --remote-dir` ran"


def missing_run_message(run: str, host: str, cwd: str, runs_root: str, is_run_dir: bool = False, said: str = "") -> str:
    """One line for a RUN that is on no path the remote looked at (``cwd``: the directory it was
    in, ``runs_root``: the runs root there, both absolute), or for a listing of a run directory. ``said``: what the
    host knows of a name whose directory is gone (deleted_on_host), after the line as a local command says it."""
    if run.startswith(LISTING) and is_run_dir:
        parent = runs_root.rstrip("/").rsplit("/", 1)[0] or "/"
        return (
            f"{runs_root} on {host} is a run directory, not a directory of runs: "
            f"`nsa status --host {host} {runs_root}`, or `nsa runs --host {host} {parent}`"
        )
    if run.startswith(LISTING):
        return f"no runs directory {runs_root} on {host} ({HINT}, or pass DIR)"
    if not run:
        return f"no runs under {runs_root} on {host} ({HINT}, or name a run)"
    if run.startswith("/"):
        return f"no run directory {run!r} on {host}"
    return (
        f"no run directory {run!r} on {host} (looked at {cwd.rstrip('/')}/{run} and "
        f"{runs_root.rstrip('/')}/{run}; {HINT}, or give the full path)" + (f": {said}" if said else "")
    )


def deleted_on_host(host: str, body: str) -> str:
    """What the host knows of a run whose directory is gone (deleted_facts' lines, after the directory the name would
    be), in the words of a local command (nsa_tui.deleted_runs); '' when it knows nothing."""
    import shlex

    from nsa_tui.deleted_runs import DeletedRun, deleted_said

    lines = body.split("\n")
    if len(lines) < 5:  # up to whether its session is alive; the shell's $(...) drops the empty lines after it
        return ""
    default_dir, run_dir, ts, session, alive, wrapper_dir, pid, sock = [*lines, "", "", ""][:8]
    recorded = (run_dir, _ts(ts)) if run_dir else None
    facts = DeletedRun(session, recorded, alive == "1", wrapper_dir or None, int(pid) if pid.isdigit() else None)
    # the host's server: its $NSA_TMUX_SOCKET ('' the default), as the host's lookup asked it
    kill = shlex.join(["ssh", host, shlex.join(tmux_words("kill-session", "-t", f"={session}", socket=sock))])
    return deleted_said(facts, default_dir, kill, shlex.join(["nsa", "status", "--host", host]))


def no_remote_dir_message(remote_dir: str, host: str) -> str:
    return f"cannot cd to {remote_dir} on {host} (no such directory there)"


def _ts(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def launched_note_line(host: str, run: str, run_dir: str, ts: str, index: str) -> str:
    """The note of a RUN the host's launch index found (find_launched), as a local command says it."""
    from nsa_tui.rundir import launched_note

    return launched_note(run, run_dir, _ts(ts), index, host)


def unreadable_on_host(host: str, run_dir: str, ls_line: str) -> str:
    """The refusal of a RUN found by its name in a directory the host's user cannot list (find_run's $unread), as a
    local command refuses one (nsa_tui.rundir.unreadable_dir): its mode and owner from ``ls_line`` (`ls -ld`'s)."""
    from nsa_tui.rundir import UNREADABLE

    fields = ls_line.split()
    said = f" ({fields[0][:10]}, owner {fields[2]})" if len(fields) > 2 else ""
    return f"{UNREADABLE}{run_dir} on {host}: permission denied{said}"


def launched_twice(host: str, run: str, lines: str) -> str:
    """The refusal of a RUN the host's launch index knows in several directories (find_launched's ``lines``,
    "TS<tab>DIR" each, newest first), as a local command refuses it."""
    from nsa_tui.rundir import launched_twice_message

    matches = [(d, _ts(ts)) for ts, _, d in (line.partition("\t") for line in lines.splitlines() if line)]
    return launched_twice_message(run, matches, host)
