#!/usr/bin/env bash
# status.sh: what open status pages cost. A benchmark, not a test: the
# machine is shared and noisy, so only the ratio within one run means
# anything.
#
# gatehouse (pinned to core 0, SERVER_CPU) serves load from core 1
# (LOAD_CPU) with no status page open, then with VIEWERS (10) of them, each
# fetching /status?format=json once a second on its own kept-alive
# connection, as the page does (status_viewers.py, on core 1 too). Jobs:
#   echo   wsload (contrib/bench/wsload.c, built here): 100 WebSocket
#          connections x 8 messages of 32 bytes in flight to echo.so:
#          round trips/s
#   http   wrk -t1 -c50 on a health route: requests/s (skipped without wrk)
# Every run gets a fresh gatehouse; the order of 0 and VIEWERS flips every
# round; the table keeps each one's best run and the ratio, for the rate
# and for gatehouse's own CPU time per operation (server_us/op, from
# /proc: less sensitive to the other processes on the machine than the
# rate). Last, what a feed document costs: VIEWERS viewers and no other
# load, gatehouse's CPU time over the documents served, beside the same
# for a health check (what any request costs an otherwise idle process).
#
#   bash contrib/bench/status.sh
#   GATEHOUSE=build/dev/gatehouse DURATION=5 REPEAT=2 bash contrib/bench/status.sh
#
# Environment:
#   GATEHOUSE=PATH  the binary (build/gatehouse; built with the release
#                   preset when missing and GATEHOUSE is not set)
#   PLUGINS=DIR     holds echo.so (plugins/ next to GATEHOUSE)
#   DURATION=S      measured seconds per run (5)
#   REPEAT=N        rounds (2)
#   VIEWERS=N       status pages open in the second case (10)
#   JOBS="..."      subset of: echo http
#   SERVER_CPU=0 LOAD_CPU=1
#
# Exit status: 0 when every run was valid (wsload saw no failure, wrk no
# error or non-2xx, every viewer's every document a 200 with JSON), else 1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bench="$here/contrib/bench"
gh="${GATEHOUSE:-$here/build/gatehouse}"
dur="${DURATION:-5}"
repeat="${REPEAT:-2}"
nview="${VIEWERS:-10}"
jobs="${JOBS:-echo http}"
scpu="${SERVER_CPU:-0}"
lcpu="${LOAD_CPU:-1}"

for c in taskset cc pkg-config python3; do
  command -v "$c" >/dev/null 2>&1 || { echo "status.sh: $c is missing" >&2; exit 1; }
done
if ! command -v wrk >/dev/null 2>&1; then
  echo "status.sh: wrk is missing (apt-get install wrk): the http job is skipped" >&2
  jobs="${jobs//http/}"
fi
if [ ! -x "$gh" ] && [ -z "${GATEHOUSE:-}" ]; then
  (cd "$here" && cmake --preset release >/dev/null && cmake --build --preset release -j2 >/dev/null)
fi
plugins="${PLUGINS:-$(dirname "$gh")/plugins}"
[ -x "$gh" ] || { echo "status.sh: no gatehouse at $gh" >&2; exit 1; }
[ -f "$plugins/echo.so" ] || { echo "status.sh: no echo.so in $plugins" >&2; exit 1; }

tmp="$(mktemp -d)"
spid=""
vpid=""
stop_pid() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# shellcheck disable=SC2317  # called by the trap
cleanup() { stop_pid "$vpid"; stop_pid "$spid"; rm -rf "$tmp"; }
trap cleanup EXIT

read -r -a ldflags <<<"$(pkg-config --cflags --libs libevent_core libcrypto zlib)"
cc -std=gnu11 -O2 -Wall -Wextra "$bench/wsload.c" "${ldflags[@]}" -o "$tmp/wsload"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

start_server() {   # start_server PORT
  cat > "$tmp/gateway.yaml" <<EOF
plugins_dir: $plugins
access_log: off
error_log: $tmp/gatehouse.log
log_level: warn
listeners:
  - listen: 127.0.0.1:$1
routes:
  - match: { path: /status }
    allow: [127.0.0.0/8]
    status: {}
  - match: { path: /healthz }
    health: {}
  - match: { path: /ws/echo }
    websocket: { plugin: echo, origins: "*", max_message: 64KiB, send_backlog: 8MiB }
EOF
  "$gh" -t -c "$tmp/gateway.yaml" > "$tmp/check.log" 2>&1 || { cat "$tmp/check.log" >&2; return 1; }
  taskset -c "$scpu" "$gh" -c "$tmp/gateway.yaml" &
  spid=$!
  wait_port "$1"
}

# the viewers: ready once each has had one document
start_viewers() {   # start_viewers PORT N [PATH]
  rm -f "$tmp/viewers.ready" "$tmp/viewers.out"
  taskset -c "$lcpu" python3 "$bench/status_viewers.py" "$1" "$2" "$tmp/viewers.ready" \
    "${3:-/status?format=json}" > "$tmp/viewers.out" &
  vpid=$!
  for _ in $(seq 1 100); do [ -e "$tmp/viewers.ready" ] && return 0; sleep 0.05; done
  echo "status.sh: the viewers did not get their first documents" >&2
  return 1
}

# gatehouse's CPU time so far, in seconds: the scheduler's nanoseconds
# where the kernel keeps them (/proc/PID/schedstat), else user + system
# time in clock ticks (10 ms: too coarse for one feed document)
tck="$(getconf CLK_TCK)"
cpu_of() {
  if [ -r "/proc/$1/schedstat" ]; then
    awk '{ printf "%.6f", $1 / 1e9 }' "/proc/$1/schedstat"
  else
    awk -v t="$tck" '{ printf "%.4f", ($14 + $15) / t }' "/proc/$1/stat"
  fi
}

declare -A best
declare -A cost
invalid=0
run() {   # run JOB VIEWERS
  local port out rc=0 fig="" vline="" ops="" c0 c1 us=""
  port="$(free_port)"
  start_server "$port" || { invalid=1; return 0; }
  if [ "$2" -gt 0 ]; then
    start_viewers "$port" "$2" || { invalid=1; stop_pid "$vpid"; vpid=""; stop_pid "$spid"; spid=""; return 0; }
  fi
  c0="$(cpu_of "$spid")"
  case "$1" in
    echo)
      out="$(taskset -c "$lcpu" "$tmp/wsload" --mode echo --conns 100 --inflight 8 --size 32 \
             --duration "$dur" --port "$port" --label "viewers=$2" --pid "$spid")" || rc=$?
      out="$(printf '%s\n' "$out" | tail -1)"
      fig="$(printf '%s\n' "$out" | tr ' ' '\n' | awk -F= '$1 == "rt/s" { print $2 }')"
      ops="$(printf '%s\n' "$out" | tr ' ' '\n' | awk -F= '$1 == "echoes" { print $2 }')"
      case "$out" in *"failed=0"*) ;; *) rc=1 ;; esac
      ;;
    http)
      out="$(taskset -c "$lcpu" wrk -t1 -c50 -d "${dur}s" "http://127.0.0.1:$port/healthz")" || rc=$?
      fig="$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { print $2 }')"
      ops="$(printf '%s\n' "$out" | awk '/requests in/ { print $1 }')"
      case "$out" in *"Non-2xx"*|*"Socket errors"*) rc=1 ;; esac
      out="http viewers=$2 req/s=$fig requests=$ops"
      ;;
  esac
  c1="$(cpu_of "$spid")"
  [ -n "$ops" ] && [ "$ops" -gt 0 ] 2>/dev/null &&
    us="$(awk -v a="$c0" -v b="$c1" -v n="$ops" 'BEGIN { printf "%.3f", (b - a) * 1e6 / n }')"
  if [ -n "$vpid" ]; then
    stop_pid "$vpid"
    vpid=""
    vline="$(cat "$tmp/viewers.out")"
    case "$vline" in *" failed=0 "*) ;; *) rc=1 ;; esac
  fi
  kill -0 "$spid" 2>/dev/null || { rc=1; echo "status.sh: gatehouse died" >&2; }
  stop_pid "$spid"
  spid=""
  echo "$out server_us/op=${us:--} ${vline}"
  if [ "$rc" -ne 0 ] || [ -z "$fig" ]; then
    invalid=1
    echo "status.sh: $1 with $2 viewers is not a valid run" >&2
    tail -5 "$tmp/gatehouse.log" >&2 || true
    return 0
  fi
  local k="$1 $2"
  # a rate measured while other processes took a core (wsload says
  # noisy=yes) counts only when the case has no quiet run
  case "$out" in
    *noisy=yes*) k="$k noisy" ;;
  esac
  if [ -z "${best[$k]:-}" ] || awk -v a="$fig" -v b="${best[$k]}" 'BEGIN { exit !(a > b) }'; then
    best[$k]="$fig"
  fi
  k="$1 $2"
  if [ -n "$us" ] && { [ -z "${cost[$k]:-}" ] || awk -v a="$us" -v b="${cost[$k]}" 'BEGIN { exit !(a < b) }'; }; then
    cost[$k]="$us"
  fi
}

# What one feed document costs gatehouse on its own: VIEWERS viewers and
# no other load for DURATION seconds; gatehouse's CPU time over the
# documents served. With PATH /healthz, the same for a health check: the
# wake-up, the read and the write every request pays, for comparison.
feed_cost() {   # feed_cost NAME PATH
  local port c0 c1 vline docs us
  port="$(free_port)"
  start_server "$port" || { invalid=1; return 0; }
  start_viewers "$port" "$nview" "$2" || { invalid=1; stop_pid "$vpid"; vpid=""; stop_pid "$spid"; spid=""; return 0; }
  c0="$(cpu_of "$spid")"
  sleep "$dur"
  c1="$(cpu_of "$spid")"
  stop_pid "$vpid"
  vpid=""
  vline="$(cat "$tmp/viewers.out")"
  stop_pid "$spid"
  spid=""
  docs="$(printf '%s\n' "$vline" | tr ' ' '\n' | awk -F= '$1 == "docs" { print $2 }')"
  # each viewer fetches once a second: VIEWERS x DURATION documents in the window
  us="$(awk -v a="$c0" -v b="$c1" -v n="$((nview * dur))" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')"
  echo "$1 $vline server_cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.4f", b - a }') over ${dur}s server_us/doc=$us"
  cost["$1"]="$us"
  case "$vline" in *" failed=0 "*) ;; *) invalid=1 ;; esac
  [ -n "$docs" ] || invalid=1
}

echo "# status.sh $(date -u +%FT%TZ) gatehouse on core $scpu, load and viewers on core $lcpu; $(nproc) cores: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
for r in $(seq 1 "$repeat"); do
  order="0 $nview"
  [ $((r % 2)) -eq 0 ] && order="$nview 0"
  for job in $jobs; do
    for v in $order; do
      run "$job" "$v"
    done
  done
done

feed_cost feed "/status?format=json"
feed_cost health /healthz

echo
printf '%-6s %-16s %14s %14s %8s\n' job figure "0 viewers" "$nview viewers" ratio
for job in $jobs; do
  unit="rt/s"
  [ "$job" = http ] && unit="req/s"
  for what in best cost; do
    if [ "$what" = best ]; then
      a="${best["$job 0"]:-${best["$job 0 noisy"]:-}}"
      b="${best["$job $nview"]:-${best["$job $nview noisy"]:-}}"
      label="$unit"
    else
      a="${cost["$job 0"]:-}"; b="${cost["$job $nview"]:-}"; label="server_us/op"
    fi
    ratio="-"
    [ -n "$a" ] && [ -n "$b" ] && ratio="$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')"
    printf '%-6s %-16s %14s %14s %8s\n' "$job" "$label" "${a:--}" "${b:--}" "$ratio"
  done
done
printf '%-6s %-16s %14s %14s   %s\n' feed server_us/doc "${cost[feed]:--}" "" \
  "gatehouse's CPU per feed document, $nview viewers and no other load"
printf '%-6s %-16s %14s %14s   %s\n' health server_us/doc "${cost[health]:--}" "" \
  "the same for a health check instead: what any request costs an idle process"
exit "$invalid"
