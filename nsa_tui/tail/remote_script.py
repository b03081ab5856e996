"""The remote half of `nsa watch --host`: a POSIX sh loop run by the login shell over ssh.

Kept as a Python string (not a .sh file) so it ships with the package without package-data.
"""

SCRIPT = r"""
# nsa watch: remote side of incremental tailing. POSIX sh; nothing installed remotely.
# Args: RUN_DIR INTERVAL_S MAX_CHUNK HB_WINDOW [INODE:OFFSET[:HEADSUM] ...]  (what was consumed locally)
# A heartbeat file seen for the first time is read from HB_WINDOW bytes before its end.
# Output, repeated every INTERVAL_S, one frame per changed file:
#   D <inode> <offset> <len> <name>\n<len raw bytes>   appended bytes of a log file
#   M <inode> <mtime> <headsum> <name>\n                a log file's mtime (0: unknown) and head checksum
#   W <inode> <len> <name>\n<len raw bytes>            whole content of a small file that changed
#   F <name>\n                                         a whole file present this round
#   E <round> <now>\n                                  end of round (also our keepalive), remote clock
#   N\n                                                run directory not there (yet)
# HEADSUM is cksum's CRC of a log file's first 64 bytes, taken once it has them: a file rewritten in
# place, or a new file that got the old one's inode, changes it, and is then read again from 0.
# Lengths are counted after the bytes are captured in a temp file, so a file that
# shrinks mid-copy cannot make the header lie and binary payload is never scanned.
dir=$1; iv=$2; max=$3; win=$4; shift 4
for p in "$@"; do
  case $p in *[!0-9:]*|:*|*:|*::*|*:*:*:*) continue ;; esac
  ino=${p%%:*}; rest=${p#*:}
  eval "o_$ino=${rest%%:*}"
  case $rest in *:*) eval "h_$ino=${rest#*:}" ;; esac
done
export LC_ALL=C
tmp=$(mktemp 2>/dev/null || echo "/tmp/nsa-watch.$$")
lst="$tmp.ls"
mts="$tmp.mt"
trap 'rm -f "$tmp" "$lst" "$mts"' EXIT
# GNU/busybox stat gives seconds-resolution mtimes; without it (BSD) they are reported as 0 (unknown).
have_stat=0
stat -c %Y . >/dev/null 2>&1 && have_stat=1
trap 'exit 0' INT TERM HUP PIPE
start=$(pwd)
round=0
while :; do
  round=$((round + 1))
  more=0
  # cd afresh every round: DIR may be relative, and may be deleted and re-created.
  if cd "$start" 2>/dev/null && cd "$dir" 2>/dev/null; then
    # A redirect, not a pipe: the loop must run in this shell so the offsets it sets persist.
    ls -lin -- *.jsonl *.csv *.log run.json launch.json summary.json exit_status config.yaml .HALT \
      .anomaly_type stackdump_*.txt \
      > "$lst" 2>/dev/null
    if [ "$have_stat" = 1 ]; then
      stat -c '%i %Y' -- *.jsonl *.csv *.log > "$mts" 2>/dev/null
      while read -r ino mt; do
        case $ino$mt in *[!0-9]*) continue ;; esac
        eval "m_$ino=$mt"
      done < "$mts"
    fi
    while read -r ino mode links uid gid size mon day tim name; do
      case $mode in -*) ;; *) continue ;; esac
      case $ino$size in *[!0-9]*) continue ;; esac
      case $name in
        run.json|launch.json|summary.json|exit_status|config.yaml|.HALT|.anomaly_type|stackdump_*.txt)
          printf 'F %s\n' "$name"
          sig="$size.$mon.$day.$tim"
          eval "old=\${w_$ino-}"
          if [ "$old" != "$sig" ]; then
            cat -- "$name" > "$tmp" 2>/dev/null || continue
            n=$(wc -c < "$tmp" | tr -d ' ')
            printf 'W %s %s %s\n' "$ino" "$n" "$name"
            cat "$tmp"
            eval "w_$ino=\$sig"
          fi ;;
        *)
          eval "off=\${o_$ino-} old=\${h_$ino-} mt=\${m_$ino-0}"
          sum=
          if [ "$size" -ge 64 ]; then
            sum=$(head -c 64 -- "$name" 2>/dev/null | cksum)
            sum=${sum%% *}
            case $sum in ''|*[!0-9]*) sum= ;; esac
            if [ -n "$old" ] && [ -n "$sum" ] && [ "$old" != "$sum" ]; then
              off=0  # rewritten in place, or a new file on a reused inode: start over
            fi
            [ -n "$sum" ] && eval "h_$ino=$sum"
          fi
          printf 'M %s %s %s %s\n' "$ino" "$mt" "${sum:-0}" "$name"
          if [ -z "$off" ]; then
            off=0
            case $name in heartbeat_rank*.jsonl) [ "$size" -gt "$win" ] && off=$((size - win)) ;; esac
          fi
          [ "$size" -lt "$off" ] && off=0
          [ "$size" -eq "$off" ] && { printf 'D %s %s 0 %s\n' "$ino" "$off" "$name"; continue; }
          tail -c +"$((off + 1))" -- "$name" 2>/dev/null | head -c "$max" > "$tmp"
          n=$(wc -c < "$tmp" | tr -d ' ')
          printf 'D %s %s %s %s\n' "$ino" "$off" "$n" "$name"
          cat "$tmp"
          eval "o_$ino=\$((off + n))"
          [ "$n" -ge "$max" ] && more=1 ;;
      esac
    done < "$lst"
  else
    printf 'N\n'
  fi
  now=$(date +%s 2>/dev/null)
  case $now in ''|*[!0-9]*) now=0 ;; esac
  printf 'E %s %s\n' "$round" "$now"
  [ "$more" = 1 ] || sleep "$iv"  # still catching up on a big file: no pause
done
"""
