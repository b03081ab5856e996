"""The remote half of `nsa watch --host`: a POSIX sh loop run by the login shell over ssh.

Kept as a Python string (not a .sh file) so it ships with the package without package-data.
"""

from __future__ import annotations

from collections.abc import Iterable

from nsa_train.telemetry.schema import KIND_BOOT, heartbeat_name
from nsa_tui.moved_runs import HEAD_BYTES
from nsa_tui.remote.checkout import JSON_AWK_SH
from nsa_tui.remote.liveness import LIVENESS_SH
from nsa_tui.tail.older_sh import OLDER_EVENTS_SH
from nsa_tui.tail.source import HEARTBEAT_WINDOW, LINE_PATTERNS, WHOLE_FILES, WHOLE_PATTERNS

# Tools that pick the mtime source (arg 5): "auto" probes in this order.
MTIME_TOOLS = ("stat", "perl", "ls")
MAX_CHUNK = 16 << 20  # bytes per file per round: a huge history streams in bounded pieces
LIVENESS_EVERY_S = 5  # how often the remote says whether the run's process is there (tmux session, pids)
# a run directory not there is looked for beside its path and under the runs root at most this often, as the local
# watch looks (nsa_tui.tail.local.MOVE_LOOK_EVERY_S): a read of one line per directory there, no process
MOVE_LOOK_EVERY_S = 3

_TEMPLATE = (
    JSON_AWK_SH
    + LIVENESS_SH
    + OLDER_EVENTS_SH
    + r"""
# nsa watch: remote side of incremental tailing. POSIX sh; nothing installed remotely.
# Args: RUN_DIR INTERVAL_S MAX_CHUNK HB_WINDOW MTIME_TOOL LIVE_S ROOT BOOT [INODE:OFFSET:EDGELEN:EDGESUM ...]
# (the resume list is what was consumed locally; MTIME_TOOL is auto, stat, perl or ls; LIVE_S the seconds
# between liveness reports; ROOT the host's runs root, absolute, or ''; BOOT the run's first boot record as a B frame
# last said it, or '').
# A RUN_DIR not there is looked for (every MOVE_S seconds, while it stays gone) where a rename took it, as the local
# watch looks (nsa_tui.moved_runs.renamed_to): the directories beside it and under ROOT whose rank 0 heartbeat begins
# with BOOT. One found is followed (V, then the round there: its files' inodes, offsets and edges are those of the
# old path); of several, the one whose heartbeat is the file read here (a copy's is another inode), else they are
# named (C).
# A heartbeat file seen for the first time is read from HB_WINDOW bytes before its end; after that round's E, its
# part before the window is scanned once for events (older_events: no progress or liveness record) and sent as O.
# Output, repeated every INTERVAL_S, one frame per changed file:
#   D <inode> <offset> <len> <edgelen> <edgesum> <name>\n<len raw bytes>   bytes appended at offset
#   R <inode> <offset> <len> <edgelen> <edgesum> <name>\n<len raw bytes>   the file (re)starts at offset:
#        first sight, or truncated, or replaced (a new file, possibly on the same inode, same size)
#   M <inode> <mtime> <name>\n                 a file's mtime in unix seconds (0: unknown)
#   W <inode> <len> <name>\n<len raw bytes>    whole content of a small file that changed
#   F <name>\n                                 a whole file present this round
#   E <round> <now>\n                          end of round (also our keepalive), remote clock
#   N\n                                        run directory not there (yet)
#   B <len>\n<len bytes>                       the run's first boot record (the first line of its rank 0
#                                              heartbeat when it is one; '' when not), when it is not BOOT
#   V <len>\n<len bytes>                       the run directory is now at this path (renamed): read there
#   C <len>\n<len bytes>                       the run directory is not there and these, a path a line, hold
#                                              the run (copies of it?): none is followed
#   X <path>\n                                 no temp file could be written at <path> (a full or read-only
#                                              /tmp): nothing was read this round; E follows as ever
#   T <len>\n<len bytes>                       the sessions of the tmux server launch.json names, a line each
#                                              (every LIVE_S; only with a launch.json and tmux)
#   O <inode> <offset> <len> <name>\n<len bytes>  a heartbeat's event lines before <offset>, where its first
#                                              R started (the lines that R's cut first line ends), once
#   P <len> <host>\n<len bytes>                the host's name (uname -n) and processes (every LIVE_S; only
#                                              where /proc is; live_pids): PID, or PID:START for those started
#                                              since the uptime read before the previous P (the first: all),
#                                              with /T or /t[TRACER] after a stopped one's (liveness.live_pids);
#                                              the local side looks up the ranks' pids, their starts and whether
#                                              they are stopped
# Before the first frame, the line @@nsa-watch@@ (frames.START): what the login shell printed before it is
# not ours. Symlinked files are followed (ls -L, stat -L; perl's stat does), as the local watch reads them.
# The edge is cksum's CRC of the last EDGELEN (<= 64) bytes we sent of a log file, i.e. the bytes
# just before its offset. Every round, after copying the new bytes, those bytes must still be in the
# file: if not, the file was replaced or rewritten and is read again from its start (R), so bytes of
# two files are never joined. Checking after the copy means a swap during the copy is caught too.
# Lengths are counted after the bytes are captured in a temp file, so a file that
# shrinks mid-copy cannot make the header lie and binary payload is never scanned.
# Mtimes: GNU/busybox `stat` or `perl` give whole seconds. Without them (`ls`, POSIX only) a file's
# first mtime is its `ls -l` minute (an upper bound, at most 60 s late), and then the round time
# whenever it changes (at most one round late).
# Quiet files: with stat/perl, a file whose inode, size, mtime and ctime are unchanged since a round
# in which both times were already over a second old cannot have been written since (any write
# moves ctime to a later second), so it is neither copied nor checked: an idle file costs no
# process. (As git's index does against "racily clean" files; a clock stepped back defeats it.)
dir=$1; iv=$2; max=$3; win=$4; mtool=$5; live=$6; root=${7%/}; boot=$8; shift 8
for p in "$@"; do
  case $p in *[!0-9:]*|*:*:*:*:*) continue ;; *:*:*:*) ;; *) continue ;; esac
  case :$p: in *::*) continue ;; esac
  ino=${p%%:*}; r=${p#*:}
  eval "o_$ino=${r%%:*}"; r=${r#*:}
  eval "el_$ino=${r%%:*} es_$ino=${r#*:}"
done
export LC_ALL=C TZ=UTC0
unset CDPATH  # a cd must print nothing
unset TMUX TMUX_PANE  # the server launch.json names, never the one a login shell may sit in
host_=$(uname -n 2>/dev/null)
live_at=0
since_=0  # the uptime read before the last P frame's listing: its processes' starts were told
printf '\n@@nsa-watch@@\n'
tmp=$(mktemp 2>/dev/null || echo "/tmp/nsa-watch.$$")
lst="$tmp.ls"
mts="$tmp.mt"
trap 'rm -f "$tmp" "$lst" "$mts"' EXIT
trap 'exit 0' INT TERM HUP PIPE
case $mtool in
  stat|perl|ls) ;;
  *) if stat -L -c %Y . >/dev/null 2>&1; then mtool=stat
     elif perl -e 1 >/dev/null 2>&1; then mtool=perl
     else mtool=ls; fi ;;
esac
clock() {
  now=$(date +%s 2>/dev/null)
  case $now in ''|*[!0-9]*) now=$(awk 'BEGIN { srand(); printf "%.0f\n", srand() }' 2>/dev/null) ;; esac
  case $now in ''|*[!0-9]*) now=0 ;; esac
}
# ls -l times (UTC, LC_ALL=C) as unix seconds, rounded up: "Mon DD HH:MM" (recent) or "Mon DD YYYY".
ls_mtimes() {
  awk -v now="$now" -v year="$(date -u +%Y)" '
    function days(y, m, d) {
      if (m < 3) { y--; m += 12 }
      return 365 * y + int(y / 4) - int(y / 100) + int(y / 400) + int((153 * (m - 3) + 2) / 5) + d - 719469
    }
    BEGIN {
      split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", names, " ")
      for (i = 1; i <= 12; i++) mon[names[i]] = i
    }
    $2 ~ /^-/ && ($7 in mon) {
      if ($9 ~ /:/) {
        split($9, hm, ":"); t = days(year, mon[$7], $8) * 86400 + hm[1] * 3600 + hm[2] * 60
        if (now > 0 && t > now + 86400) t = days(year - 1, mon[$7], $8) * 86400 + hm[1] * 3600 + hm[2] * 60
        t += 59
      } else t = days($9, mon[$7], $8) * 86400 + 86399
      if (now > 0 && t > now) t = now
      printf "%.0f %.0f\n", $1, t
    }' "$lst"
}
# $tmp := up to MAX bytes of $name from offset $off; n := their count
capture() {
  n=0
  [ "$size" -gt "$off" ] || return 0
  tail -c +"$((off + 1))" -- "$name" 2>/dev/null | head -c "$max" > "$tmp"
  n=$(wc -c < "$tmp" | tr -d ' ')
}
# the run's first boot record (from the heartbeat of inode bootino, read once it has a whole first line), and where
# else the run may be: every @MOVE_S@ s while its directory is gone
bootino=
looked=-@MOVE_S@
several=
wgen=0  # bumped when the run directory is followed to a new path: every whole file is sent again
note_boot() {
  [ "$1" != "$bootino" ] || return 0
  l_=
  { IFS= read -r l_; } 2>/dev/null < @HEARTBEAT0@ || return 0  # no whole first line yet: read again next round
  bootino=$1
  [ "${#l_}" -lt @HEAD_BYTES@ ] && printf '%s\n' "$l_" | awk "$json_awk_"'
    { jobject($0); exit !(!bad && str["kind"] && v["kind"] == "@KIND_BOOT@") }' || l_=
  [ "$l_" = "$boot" ] && return 0
  boot=$l_
  printf 'B %s\n%s' "${#boot}" "$boot"
}
# follow_move: the run directory is not there; cd to where it went and say so (V) when one directory holds the run
follow_move() {
  [ -n "$boot" ] || return 1
  [ "$now" -eq 0 ] || [ "$((now - looked))" -ge @MOVE_S@ ] || return 1
  looked=$now several=
  o_=${dir%/}; p_=${o_%/*}; [ -n "$p_" ] || p_=/
  f_=
  for r_ in "$p_" "$root"; do
    [ -n "$r_" ] || continue
    for e_ in "$r_"/*; do
      [ "$e_" != "$o_" ] && [ -d "$e_" ] || continue
      l_=
      { IFS= read -r l_; } 2>/dev/null < "$e_/@HEARTBEAT0@" || continue
      [ "$l_" = "$boot" ] || continue
      case "
$f_" in *"
$e_
"*) ;; *) f_="$f_$e_
" ;; esac
    done
  done
  f_=${f_%"
"}
  case $f_ in
    '') return 1 ;;
    *"
"*) # several: the one whose heartbeat is the file read here (its inode has an offset: a copy's is another file)
      m_=$(printf '%s\n' "$f_" | while IFS= read -r e_; do
        set -- $(ls -Lid -- "$e_/@HEARTBEAT0@" 2>/dev/null)
        case ${1-} in ''|*[!0-9]*) continue ;; esac
        eval "[ -n \"\${o_$1-}\" ]" && printf '%s\n' "$e_"
      done)
      case $m_ in ''|*"
"*) several=$f_; return 1 ;; esac
      f_=$m_ ;;
  esac
  cd "$f_" >/dev/null 2>&1 || return 1
  dir=$f_ wgen=$((wgen + 1))
  printf 'V %s\n%s' "${#dir}" "$dir"
}
start=$(pwd)
case $dir in /*) ;; *) dir=$start/$dir ;; esac  # where it was, for a look beside it
round=0
now=0
scan=
while :; do
  round=$((round + 1))
  more=0
  # cd afresh every round: DIR may be relative, and may be deleted and re-created.
  if cd "$start" >/dev/null 2>&1 && { cd "$dir" >/dev/null 2>&1 || follow_move; }; then
    several=
    clock
    set -- @LISTED@
    # Redirects, not pipes: the loops must run in this shell so the state they set persists.
    # The listing ends with a line of ours: a listing cut short (a full disk) is not taken for files gone.
    ok=0
    if { printf x > "$tmp"; } 2>/dev/null; then
      { ls -Llin -- "$@" 2>/dev/null; echo .nsa-end; } > "$lst" 2>/dev/null
      [ "$(tail -n 1 "$lst" 2>/dev/null)" = .nsa-end ] && ok=1
    fi
    ltab=$lst mtab=$mts
    if [ "$ok" = 0 ]; then
      printf 'X %s\n' "$tmp"
      ltab=/dev/null mtab=/dev/null  # what the files hold now may be an older round's
    else
      case $mtool in
        stat) stat -L -c '%i %Y %s %Z' -- "$@" > "$mts" 2>/dev/null ;;
        perl) perl -e 'for (@ARGV) { my @s = stat $_ or next; print "$s[1] $s[9] $s[7] $s[10]\n" }' -- "$@" \
                > "$mts" 2>/dev/null ;;
        *) ls_mtimes > "$mts" 2>/dev/null ;;
      esac
    fi
    while read -r ino mt sz ct; do
      case $ino$mt in ''|*[!0-9]*) continue ;; esac
      eval "t_$ino=$mt g_$ino= q_$ino=0"
      case $sz$ct in ''|*[!0-9]*) continue ;; esac
      eval "g_$ino=$sz.$mt.$ct"
      [ "$now" -gt 0 ] && [ "$mt" -lt "$((now - 1))" ] && [ "$ct" -lt "$((now - 1))" ] && eval "q_$ino=1"
    done < "$mtab"
    seen=" "
    while read -r ino mode links uid gid size mon day tim name; do
      case $mode in -*) ;; *) continue ;; esac
      case $ino$size in ''|*[!0-9]*) continue ;; esac
      # a link and its target both here are one file: its state is per inode, so it is sent once
      case $seen in *" $ino "*) continue ;; esac
      seen="$seen$ino "
      changed=0
      # this round's signature; the one of a round where the file was quiet; still the same?
      eval "sg=\${g_$ino-} qt=\${q_$ino-0} vs=\${v_$ino-}"
      same=0; [ -n "$sg" ] && [ "$sg" = "$vs" ] && same=1
      if [ "$qt" = 1 ]; then eval "v_$ino=\$sg"; else eval "v_$ino="; fi
      case $name in
        @WHOLE@)
          printf 'F %s\n' "$name"
          eval "old=\${w_$ino-}"
          case $old in "$wgen:"*) ;; *) old= ;; esac  # sent before the run directory was followed: sent again
          if [ "$same" = 1 ] && [ -n "$old" ]; then sig=$old
          else sig=$wgen:$(cksum < "$name" 2>/dev/null) || continue; fi
          if [ "$old" != "$sig" ]; then
            cat -- "$name" > "$tmp" 2>/dev/null || continue
            sig=$wgen:$(cksum < "$tmp")  # what we send, not what the file may have become since
            n=$(wc -c < "$tmp" | tr -d ' ')
            printf 'W %s %s %s\n' "$ino" "$n" "$name"
            cat "$tmp"
            eval "w_$ino=\$sig"
            [ -n "$old" ] && changed=1
          fi ;;
        *)
          [ "$name" = @HEARTBEAT0@ ] && note_boot "$ino"
          eval "off=\${o_$ino-} el=\${el_$ino-0} es=\${es_$ino-0}"
          known=0; fresh=1; n=0
          if [ -n "$off" ] && [ "$same" = 1 ] && [ "$size" -eq "$off" ]; then
            printf 'D %s %s 0 %s %s %s\n' "$ino" "$off" "$el" "$es" "$name"  # quiet and all read
            eval "mt=\${t_$ino-0}"
            printf 'M %s %s %s\n' "$ino" "$mt" "$name"
            continue
          fi
          if [ -n "$off" ]; then
            known=1
            if [ "$size" -ge "$off" ]; then
              fresh=0
              capture
              if [ "$el" -gt 0 ]; then
                cur=$(dd if="$name" bs=1 skip="$((off - el))" count="$el" 2>/dev/null | cksum)
                [ "${cur%% *}" = "$es" ] || fresh=1  # our last bytes are gone: another file now
              fi
            fi
          fi
          if [ "$fresh" = 1 ]; then
            off=0; el=0; es=0
            [ "$known" = 0 ] && case $name in
              heartbeat_rank*.jsonl) if [ "$size" -gt "$win" ]; then
                  off=$((size - win)); scan="$scan $ino"; eval "sw_$ino=\$off sn_$ino=\$name"
                fi ;;
            esac
            capture
          fi
          if [ "$n" -gt 0 ]; then
            el=$n; [ "$el" -gt 64 ] && el=64
            es=$(tail -c "$el" "$tmp" | cksum); es=${es%% *}
          fi
          kind=D; [ "$fresh" = 1 ] && kind=R
          printf '%s %s %s %s %s %s %s\n' "$kind" "$ino" "$off" "$n" "$el" "$es" "$name"
          [ "$n" -gt 0 ] && cat "$tmp"
          eval "o_$ino=$((off + n)) el_$ino=$el es_$ino=$es"
          [ "$known" = 1 ] && { [ "$fresh" = 1 ] || [ "$n" -gt 0 ]; } && changed=1
          [ "$n" -ge "$max" ] && more=1 ;;
      esac
      eval "mt=\${t_$ino-0}"
      if [ "$mtool" = ls ]; then
        # the ls minute only at first sight; afterwards a change seen this round happened by now
        eval "prev=\${m_$ino-}"
        if [ -n "$prev" ]; then
          mt=$prev
          [ "$changed" = 1 ] && [ "$now" -gt 0 ] && mt=$now
        fi
        eval "m_$ino=$mt"
      fi
      printf 'M %s %s %s\n' "$ino" "$mt" "$name"
    done < "$ltab"
    # is the run's process there: every LIVE_S (every round when the clock is unknown)
    if [ "$now" -eq 0 ] || [ "$((now - live_at))" -ge "$live" ]; then
      live_at=$now
      if t_=$(recorded_tmux .); then printf 'T %s\n%s' "$(printf '%s' "$t_" | wc -c | tr -d ' ')" "$t_"; fi
      up_=; { read -r up_ rest_ < /proc/uptime; } 2>/dev/null  # before the listing: what started later is in the next
      if p_=$(live_pids "$since_"); then
        printf 'P %s %s\n%s' "$(printf '%s' "$p_" | wc -c | tr -d ' ')" "$host_" "$p_"
        since_=${up_%%.*}; case $since_ in ''|*[!0-9]*) since_=0 ;; esac
      fi
    fi
  else
    printf 'N\n'
    [ -n "$several" ] && printf 'C %s\n%s' "${#several}" "$several"
  fi
  clock
  printf 'E %s %s\n' "$round" "$now"
  # the events before the windows first sent this round: after its E, so the window is on screen first
  for ino in $scan; do
    eval "off=\$sw_$ino name=\$sn_$ino"
    set -- $(ls -Lid -- "$name" 2>/dev/null)
    [ "${1-}" = "$ino" ] || continue  # replaced since: the new file is read from its start
    k=$(tail -c +"$((off + 1))" -- "$name" 2>/dev/null | head -n 1 | wc -c | tr -d ' ')
    older_events "$((off + k))" < "$name" > "$tmp" 2>/dev/null
    n=$(wc -c < "$tmp" | tr -d ' ')
    printf 'O %s %s %s %s\n' "$ino" "$off" "$n" "$name"
    [ "$n" -gt 0 ] && cat "$tmp"
  done
  scan=
  [ "$more" = 1 ] || sleep "$iv"  # still catching up on a big file: no pause
done
"""
)
# the files the local watch reads (nsa_tui.tail.source), named once so the two sides cannot drift apart
SCRIPT = (
    _TEMPLATE.replace("@LISTED@", " ".join((*LINE_PATTERNS, *WHOLE_FILES, *WHOLE_PATTERNS)))
    .replace("@WHOLE@", "|".join((*WHOLE_FILES, *WHOLE_PATTERNS)))
    .replace("@MOVE_S@", str(MOVE_LOOK_EVERY_S))
    .replace("@HEARTBEAT0@", heartbeat_name(0))
    .replace("@HEAD_BYTES@", str(HEAD_BYTES))
    .replace("@KIND_BOOT@", KIND_BOOT)
)


def script_args(
    run_dir: str, interval: float, mtime_tool: str, resume: Iterable[str] = (), *, root: str = "", boot: str = ""
) -> list[str]:
    """SCRIPT's positional arguments, built in this one place for `nsa watch --host` and
    bench/remote_tail_cost.py, so that neither falls behind the script's Args line.

    ``resume``: INODE:OFFSET:EDGELEN:EDGESUM of each file already consumed locally; ``root``: the host's runs root
    (a renamed run directory is looked for there too); ``boot``: the run's first boot record as the host last said it
    (a B frame), so that a new connection finds a directory renamed while the link was down."""
    return [
        run_dir,
        f"{interval:g}",
        str(MAX_CHUNK),
        str(HEARTBEAT_WINDOW),
        mtime_tool,
        str(LIVENESS_EVERY_S),
        root,
        boot,
        *resume,
    ]
