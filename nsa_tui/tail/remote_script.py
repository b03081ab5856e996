"""The remote half of `nsa watch --host`: a POSIX sh loop run by the login shell over ssh.

Kept as a Python string (not a .sh file) so it ships with the package without package-data.
"""

SCRIPT = r"""
# nsa watch: remote side of incremental tailing. POSIX sh; nothing installed remotely.
# Args: RUN_DIR INTERVAL_S MAX_CHUNK HB_WINDOW [INODE:OFFSET ...]  (offsets already consumed locally)
# A heartbeat file seen for the first time is read from HB_WINDOW bytes before its end.
# Output, repeated every INTERVAL_S, one frame per changed file:
#   D <inode> <offset> <len> <name>\n<len raw bytes>   appended bytes of a log file
#   W <inode> <len> <name>\n<len raw bytes>            whole content of a small file that changed
#   F <name>\n                                         a whole file present this round
#   E <round>\n                                        end of round (also our keepalive)
#   N\n                                                run directory not there (yet)
# Lengths are counted after the bytes are captured in a temp file, so a file that
# shrinks mid-copy cannot make the header lie and binary payload is never scanned.
dir=$1; iv=$2; max=$3; win=$4; shift 4
for p in "$@"; do
  case $p in *[!0-9:]*|*:*:*|:*|*:) continue ;; esac
  eval "o_${p%%:*}=${p#*:}"
done
export LC_ALL=C
tmp=$(mktemp 2>/dev/null || echo "/tmp/nsa-watch.$$")
lst="$tmp.ls"
trap 'rm -f "$tmp" "$lst"' EXIT
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
          eval "off=\${o_$ino-}"
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
  printf 'E %s\n' "$round"
  [ "$more" = 1 ] || sleep "$iv"  # still catching up on a big file: no pause
done
"""
