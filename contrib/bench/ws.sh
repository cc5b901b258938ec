#!/usr/bin/env bash
# ws.sh: WebSocket benchmark of gatehouse against node `ws` 8 and
# uWebSockets.js, same machine, same run. A benchmark, not a test: the
# machine is shared and noisy, so only the ratios within one run mean anything.
#
# Eight jobs (contrib/bench/README.md has the details), each against a fresh
# server process pinned to core 0 (SERVER_CPU), with the load generator
# (wsload, built here from contrib/bench/wsload.c) pinned to core 1 (LOAD_CPU):
#   echo       100 connections x 8 messages of 32 bytes in flight: round trips/s
#   fanout     1,000 subscribers + 1 publisher on one topic: deliveries/s,
#              p99 send-to-receive latency, lost=0 checked
#   fanout-200 the same at a fixed 200 messages/s (open loop, 3,000 messages):
#              the p50/p99 latency a busy room feels, not a throughput
#   fanout-rate the same at RATE messages/s (1,000; open loop, 10 s): no
#              table row, only the server's CPU per delivery, to compare
#              worker counts without oversubscribing the cores (RATE=200)
#   echo-rate  echo over 100 connections at RATE x 100 messages/s in all
#              (open loop): like fanout-rate, the CPU per round trip
#   fanout-chat the same through gatehouse's chat plugin (one room, JSON);
#              gatehouse only (node has no chat), compared with gatehouse's
#              pubsub fan-out of the same run
#   handshake  50 opening + closing handshakes in flight: handshakes/s
#   idle       10,000 idle connections (IDLE_CONNS): server VmRSS growth / connection
#   echo-deflate, fanout-deflate, idle-deflate: echo (100 x 8 in flight),
#              fanout (1,000 subscribers, DMSGS messages) and idle (10,000)
#              with permessage-deflate negotiated on every connection and
#              512-byte chat-like JSON messages, every one compressed both
#              ways; against gatehouse (compression: on), uWS with its shared
#              and with its dedicated compressor, and node ws
# and one opt-in job (not in the default BENCHES; needs redis-server):
#   fanout-bus the pubsub fan-out across two gatehouse instances joined by
#              the Redis bus: a redis-server started here, 500 subscribers on
#              each instance, the publisher on the first; gatehouse only,
#              compared with gatehouse's single-instance fanout of the same
#              run. Both instances AND redis share core 0 (SERVER_CPU).
#   fanout-chat-bus the chat fan-out across the same two instances (every
#              say logged in Redis for the room's history: the Lua script
#              path); compared with fanout-chat of the same run.
#
#   bash contrib/bench/ws.sh [--workers N]
#
# --workers N (or WORKERS=N): gatehouse runs N workers (workers: N). Then,
# unless SERVER_CPU/LOAD_CPU say otherwise, the server and wsload both may
# run on every core (on a machine with few cores they must share them);
# each run also prints the server's CPU per message (server_cpu over the
# rate), the figure to compare between worker counts when the load
# generator shares the cores. On a many-core machine give the server its
# own cores: SERVER_CPU=0-7 LOAD_CPU=8-15 bash contrib/bench/ws.sh --workers 8
#
# Environment:
#   GATEHOUSE=PATH   gatehouse binary (build/gatehouse; built with the
#                    release preset when missing and GATEHOUSE is not set)
#   PLUGINS=DIR      folder with echo.so, pubsub.so and (for fanout-chat)
#                    chat.so (next to GATEHOUSE)
#   DURATION=S       measured seconds for echo and handshake (10)
#   MSGS=N           fanout messages (1000, i.e. 1,000,000 deliveries)
#   DMSGS=N          fanout-deflate messages (500; node ws delivers 7-15k/s)
#   WINDOW=N         fanout messages in flight (8)
#   IDLE_CONNS=N     connections of idle and idle-deflate (10000); the open-files
#                    limit must allow N + 200 (issue 14.3 also asks for 19000)
#   BENCHES="..."    subset of: echo echo-rate fanout fanout-200 fanout-rate fanout-chat handshake idle
#                    echo-deflate fanout-deflate idle-deflate fanout-bus
#                    fanout-chat-bus
#   SERVERS="..."    subset of: gatehouse node uws (uws: uWebSockets.js; in
#                    the -deflate jobs it runs twice, uws-shared and
#                    uws-dedicated)
#   REPEAT=N         rounds (3); the table keeps each server's best valid run
#   NODE_BROADCAST=send|frame   node's fan-out: client.send() per subscriber
#                    (default, the idiomatic one) or Sender.frame() once
#   SERVER_CPU=0 LOAD_CPU=1
#
# Exit status: 0 when every run was valid (no failed connection, no lost
# message), 1 otherwise. Goals are printed, not enforced.
set -euo pipefail

workers="${WORKERS:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="${2:?--workers needs a count}"; shift 2 ;;
    --workers=*) workers="${1#--workers=}"; shift ;;
    *) echo "ws.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
  esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bench="$here/contrib/bench"
gh="${GATEHOUSE:-$here/build/gatehouse}"
dur="${DURATION:-10}"
msgs="${MSGS:-1000}"
dmsgs="${DMSGS:-500}"
window="${WINDOW:-8}"
benches="${BENCHES:-echo fanout fanout-200 fanout-chat handshake idle echo-deflate fanout-deflate idle-deflate}"
servers="${SERVERS:-gatehouse node uws}"
repeat="${REPEAT:-3}"
bcast="${NODE_BROADCAST:-send}"
if [ -n "$workers" ]; then
  scpu="${SERVER_CPU:-0-$(( $(nproc) - 1 ))}"
  lcpu="${LOAD_CPU:-0-$(( $(nproc) - 1 ))}"
else
  scpu="${SERVER_CPU:-0}"
  lcpu="${LOAD_CPU:-1}"
fi
idle_conns="${IDLE_CONNS:-10000}"
rate="${RATE:-1000}"
src="127.0.0.2-127.0.0.11"      # 10 source addresses, a tenth of the idle connections each

need=()
for c in taskset node npm cc pkg-config python3; do command -v "$c" >/dev/null 2>&1 || need+=("$c"); done
if [ "${#need[@]}" -gt 0 ]; then
  pk=(); for c in "${need[@]}"; do case "$c" in taskset) pk+=(util-linux);; node) pk+=(nodejs);; cc) pk+=(gcc);; *) pk+=("$c");; esac; done
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pk[@]}"
fi
# wsload's permessage-deflate is zlib's
if ! pkg-config --exists zlib; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q zlib1g-dev
fi

# One socket per connection on both sides; root may raise the hard limit too.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((idle_conns + 200)) ]; then
  echo "ws.sh: open-files limit $(ulimit -n) is below $((idle_conns + 200)); the idle bench needs more" >&2
  exit 1
fi

case " $servers " in *" gatehouse "*)
  if [ -n "${GATEHOUSE:-}" ]; then
    if [ ! -x "$gh" ]; then echo "ws.sh: GATEHOUSE=$gh is not executable" >&2; exit 1; fi
  else
    # always (re)build: an existing release build may be older than the tree
    (cd "$here" && cmake --preset release >/dev/null && cmake --build --preset release -j2 >/dev/null)
  fi
  plugins="${PLUGINS:-$(dirname "$gh")/plugins}"
  plugins="$(cd "$plugins" && pwd)"
  need_so=(echo pubsub)
  case " $benches " in *" fanout-chat "*|*" fanout-chat-bus "*) need_so+=(chat);; esac
  for p in "${need_so[@]}"; do
    [ -f "$plugins/$p.so" ] || { echo "ws.sh: $plugins/$p.so is missing" >&2; exit 1; }
  done
  case " $benches " in *" fanout-bus "*|*" fanout-chat-bus "*)
    for c in redis-server redis-cli; do
      command -v "$c" >/dev/null 2>&1 || { echo "ws.sh: fanout-bus needs $c (apt-get install redis-server)" >&2; exit 1; }
    done
  esac
esac
uws_pkg="$bench/node/node_modules/@btc-vision/uwebsockets.js"
case " $servers " in *" node "*|*" uws "*)
  if [ ! -d "$bench/node/node_modules/ws" ] || [ ! -d "$uws_pkg" ]; then
    (cd "$bench/node" && npm ci --no-audit --no-fund --loglevel=error)
  fi
esac
case " $servers " in *" uws "*)
  # The prebuilt addon wants glibc 2.38 for three symbols; patch-uws.py
  # (idempotent) points them at older equivalents in node_modules.
  addon="$uws_pkg/uws_$(node -p 'process.platform + "_" + process.arch + "_" + process.versions.modules').node"
  if [ ! -f "$addon" ]; then echo "ws.sh: uWebSockets.js has no addon for this node: $addon" >&2; exit 1; fi
  python3 "$bench/node/patch-uws.py" "$addon"
  if ! (cd "$bench/node" && node -e "require('@btc-vision/uwebsockets.js')"); then
    echo "ws.sh: uWebSockets.js does not load (see above)" >&2; exit 1
  fi
esac

tmp="$(mktemp -d)"
spid=""     # the server under test (fanout-bus: instance A)
spid2=""    # fanout-bus: instance B
rpid=""     # fanout-bus: redis-server
rlog=""     # fanout-bus: redis-server's log
stop_pid() {   # stop_pid PID: TERM, up to 5 s, then KILL
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
stop_server() {
  stop_pid "$spid"; stop_pid "$spid2"; stop_pid "$rpid"
  spid=""; spid2=""; rpid=""
}
# shellcheck disable=SC2317  # called by the trap
cleanup() { stop_server; rm -rf "$tmp"; }
trap cleanup EXIT

read -r -a ldflags <<<"$(pkg-config --cflags --libs libevent_core libcrypto zlib)"
cc -std=gnu11 -O2 -Wall -Wextra "$bench/wsload.c" "${ldflags[@]}" -o "$tmp/wsload"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

gh_config() {   # gh_config PORT FILE [REDIS_PORT|deflate]
  local bus="" z=""   # fanout-bus: every instance on the same redis-server
  case "${3:-}" in
    "") ;;
    # the -deflate jobs: permessage-deflate on the echo and pubsub routes,
    # every message compressed (threshold 0, like uWS and node), no context
    # kept between messages, level 1, a 32 KiB window
    deflate) z="
      compression: on
      compression_level: 1
      compression_threshold: 0
      context_takeover: false
      server_window_bits: 15" ;;
    *) bus="bus: { redis: \"redis://127.0.0.1:$3\" }" ;;
  esac
  cat > "$2" <<EOF
plugins_dir: $plugins
$bus
${workers:+workers: $workers}
access_log: off
error_log: stderr
log_level: warn
max_connections: 0
drain_timeout: 1s
listeners:
  - listen: 127.0.0.1:$1
routes:
  - match: { path: /ws/echo }
    websocket:
      plugin: echo
      origins: "*"
      max_message: 64KiB
      ping_interval: 30s
      send_backlog: 8MiB$z
  - match: { path: /ws/pubsub }
    websocket:
      plugin: pubsub
      origins: "*"
      max_message: 64KiB
      ping_interval: 30s
      send_backlog: 8MiB$z
EOF
  # fanout-bus: /metrics, to see the bus connected (gatehouse_bus_connected 1)
  if [ -n "$bus" ]; then
    cat >> "$2" <<EOF
  - match: { path: /metrics }
    metrics: {}
EOF
  fi
  # chat: rate 0 turns the per-connection limit off; 2,000 users (the default
  # 1,000 would refuse the publisher); the default history (50), so every say
  # is logged (in Redis with a bus), as in a real room.
  [ -f "$plugins/chat.so" ] || return 0
  cat >> "$2" <<EOF
  - match: { path: /ws/chat }
    websocket:
      plugin: chat
      origins: "*"
      max_message: 64KiB
      ping_interval: 30s
      send_backlog: 8MiB
      config: { rate: 0, max_users: 2000, history: 50 }
EOF
}

start_server() {   # start_server NAME PORT [deflate]
  local log="$tmp/$1.$2.log" z="${3:-}"
  case "$1" in
    gatehouse)
      gh_config "$2" "$tmp/gh.yaml" "$z"
      if ! "$gh" -t -c "$tmp/gh.yaml" >"$log" 2>&1; then
        echo "ws.sh: gatehouse -t refused the bench config:" >&2; cat "$log" >&2; return 1
      fi
      taskset -c "$scpu" "$gh" -c "$tmp/gh.yaml" 2>"$log" & ;;
    node)
      # node ws's broadcast: NODE_BROADCAST, but `frame` cannot compress
      if [ -n "$z" ]; then
        taskset -c "$scpu" node "$bench/node/server.js" "$2" send deflate 2>"$log" &
      else
        taskset -c "$scpu" node "$bench/node/server.js" "$2" "$bcast" 2>"$log" &
      fi ;;
    uws)           taskset -c "$scpu" node "$bench/node/uws.js" "$2" none 2>"$log" & ;;
    uws-shared)    taskset -c "$scpu" node "$bench/node/uws.js" "$2" shared 2>"$log" & ;;
    uws-dedicated) taskset -c "$scpu" node "$bench/node/uws.js" "$2" dedicated 2>"$log" & ;;
    *) echo "ws.sh: unknown server $1" >&2; return 1 ;;
  esac
  spid=$!
  if ! wait_port "$2"; then
    echo "ws.sh: $1 never opened port $2:" >&2; cat "$log" >&2; stop_server; return 1
  fi
}

# fanout-bus: succeeds when gatehouse on port $1 reports gatehouse_bus_connected 1.
bus_connected() {
  python3 - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=2).read()
sys.exit(0 if b"\ngatehouse_bus_connected 1\n" in b"\n" + body else 1)
EOF
}

# start_bus PORT_A PORT_B: a redis-server on a free port and two gatehouse
# instances joined by it, all three pinned to the server core; returns when
# redis answers PING and both instances report their bus connected (each
# bounded to 10 s). Sets spid (A), spid2 (B), rpid and rlog (redis's log).
start_bus() {
  local rport i p log
  rport="$(free_port)"
  rlog="$tmp/redis.$rport.log"
  log="$rlog"
  taskset -c "$scpu" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no >"$log" 2>&1 &
  rpid=$!
  for i in $(seq 1 200); do
    [ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] && break
    if [ "$i" -eq 200 ] || ! kill -0 "$rpid" 2>/dev/null; then
      echo "ws.sh: redis-server never answered PING on port $rport:" >&2; cat "$log" >&2; stop_server; return 1
    fi
    sleep 0.05
  done
  for p in "$1" "$2"; do
    log="$tmp/gatehouse.$p.log"
    gh_config "$p" "$tmp/gh.$p.yaml" "$rport"
    if ! "$gh" -t -c "$tmp/gh.$p.yaml" >"$log" 2>&1; then
      echo "ws.sh: gatehouse -t refused the bus bench config:" >&2; cat "$log" >&2; stop_server; return 1
    fi
    taskset -c "$scpu" "$gh" -c "$tmp/gh.$p.yaml" 2>"$log" &
    if [ "$p" = "$1" ]; then spid=$!; else spid2=$!; fi
  done
  for p in "$1" "$2"; do
    if ! wait_port "$p"; then
      echo "ws.sh: gatehouse never opened port $p:" >&2; cat "$tmp/gatehouse.$p.log" >&2; stop_server; return 1
    fi
    for i in $(seq 1 100); do
      bus_connected "$p" && break
      if [ "$i" -eq 100 ]; then
        echo "ws.sh: gatehouse on port $p never reported gatehouse_bus_connected 1:" >&2
        cat "$tmp/gatehouse.$p.log" >&2; stop_server; return 1
      fi
      sleep 0.1
    done
  done
}

declare -A res      # "BENCH KEY SERVER" -> values of the valid, quiet runs, space-separated
declare -A resn     # the same for valid runs during which other processes took a core
declare -A sat      # "BENCH SERVER" -> 1 when wsload was saturated in some run
invalid=0
run() {   # run BENCH SERVER
  local port port2="" out rc=0 args=() pids=() key v p logs=() z=""
  port="$(free_port)"
  if [ "$1" = fanout-bus ] || [ "$1" = fanout-chat-bus ]; then
    port2="$(free_port)"
    while [ "$port2" = "$port" ]; do port2="$(free_port)"; done
    start_bus "$port" "$port2" || { invalid=1; return 0; }
    pids=(--pid "$spid" --pid "$spid2" --pid "$rpid")
    logs=("$tmp/gatehouse.$port.log" "$tmp/gatehouse.$port2.log" "$rlog")
  else
    case "$1" in *-deflate) z=deflate;; esac
    start_server "$2" "$port" $z || { invalid=1; return 0; }
    pids=(--pid "$spid")
    logs=("$tmp/$2.$port.log")
  fi
  case "$1" in
    echo)      args=(--mode echo --conns 100 --inflight 8 --size 32 --duration "$dur") ;;
    # open loop at RATE round trips/s in all (1,000 of them: RATE * 100)
    echo-rate) args=(--mode echo --conns 100 --rate "$(( rate * 100 ))" --size 32 --duration "$dur") ;;
    fanout)    args=(--mode fanout --subs 1000 --msgs "$msgs" --window "$window" --size 32) ;;
    # open loop: 200 messages/s on a schedule, 15 s; the latency a chat room feels
    fanout-200) args=(--mode fanout --subs 1000 --msgs 3000 --warm-msgs 200 --rate 200 --size 32) ;;
    # open loop at RATE messages/s for 10 s: the server's CPU per delivery
    # when no core is oversubscribed (what --workers 1 and 2 compare on a
    # machine whose load generator shares their cores)
    fanout-rate) args=(--mode fanout --subs 1000 --msgs "$(( rate * 10 ))" --warm-msgs "$rate"
                       --rate "$rate" --size 32) ;;
    fanout-chat) args=(--mode fanout-chat --subs 1000 --msgs "$msgs" --window "$window" --size 32) ;;
    handshake) args=(--mode handshake --concurrency 50 --duration "$dur" --src "$src") ;;
    idle)      args=(--mode idle --conns "$idle_conns" --src "$src") ;;
    # odd subscribers on port2 (instance B), even ones and the publisher on A
    fanout-bus) args=(--mode fanout --port2 "$port2" --subs 1000 --msgs "$msgs" --window "$window" --size 32) ;;
    fanout-chat-bus) args=(--mode fanout-chat --port2 "$port2" --subs 1000 --msgs "$msgs" --window "$window" --size 32) ;;
    # permessage-deflate offered on every connection (a decline fails the
    # run), 512-byte chat-like JSON compressed both ways
    echo-deflate)   args=(--mode echo --conns 100 --inflight 8 --json --size 512 --deflate --duration "$dur") ;;
    fanout-deflate) args=(--mode fanout --subs 1000 --msgs "$dmsgs" --window "$window" --json --size 512 --deflate) ;;
    idle-deflate)   args=(--mode idle --conns "$idle_conns" --src "$src" --deflate) ;;
  esac
  out="$(taskset -c "$lcpu" "$tmp/wsload" "${args[@]}" --port "$port" --label "$2" "${pids[@]}")" || rc=$?
  echo "$out"
  # the server's CPU per message: what to compare between worker counts
  # when the load generator shares the cores
  printf '%s\n' "$out" | tr ' ' '\n' | awk -F= -v job="$1" -v srv="$2" '
    $1 == "server_cpu" { sub("%", "", $2); cpu = $2 }
    $1 == "rt/s" || $1 == "deliveries/s" || $1 == "hs/s" { rate = $2; unit = $1 }
    END { if (cpu != "" && rate > 0)
            printf "# %s %s: %.3f us of server CPU per %s\n", job, srv, cpu * 10000 / rate,
                   (unit == "rt/s" ? "round trip" : unit == "hs/s" ? "handshake" : "delivery") }'
  for p in "$spid" "$spid2" "$rpid"; do
    [ -n "$p" ] || continue
    if ! kill -0 "$p" 2>/dev/null; then
      rc=1
      echo "ws.sh: a server process ($p) died during $1" >&2
    fi
  done
  if [ "$rc" -ne 0 ]; then
    invalid=1
    echo "ws.sh: $1 against $2 is not a valid run (wsload exit $rc)" >&2
    for p in "${logs[@]}"; do
      [ -s "$p" ] && tail -20 "$p" | sed "s|^|  $(basename "$p"): |" >&2
    done
  fi
  stop_server
  [ "$rc" -eq 0 ] || return 0
  case "$out" in *load_saturated=yes*) sat["$1 $2"]=1;; esac
  for key in rt/s deliveries/s p99_us hs/s kib/conn; do
    v="$(printf '%s\n' "$out" | tr ' ' '\n' | awk -F= -v k="$key" '$1 == k { print $2 }')"
    [ -n "$v" ] || continue
    case "$out" in
      *noisy=yes*) resn["$1 $key $2"]="${resn["$1 $key $2"]:-} $v" ;;
      *)           res["$1 $key $2"]="${res["$1 $key $2"]:-} $v" ;;
    esac
  done
  return 0
}

echo "# ws.sh $(date -u +%FT%TZ) servers on core $scpu, wsload on core $lcpu; $(nproc) cores: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)${workers:+; gatehouse workers: $workers}"
case " $benches " in *" fanout-bus "*|*" fanout-chat-bus "*)
  echo "# fanout-bus: both gatehouse instances AND redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on core $scpu: the cross-instance figure includes Redis's work on the same core";;
esac
case " $servers " in *" gatehouse "*) echo "# gatehouse: $gh (plugins $plugins)";; esac
case " $servers " in *" node "*) echo "# node $(node -v), ws $(node -p "require('$bench/node/node_modules/ws/package.json').version"), broadcast: $bcast (send in the -deflate jobs, perMessageDeflate { threshold: 0 })";; esac
case " $servers " in *" uws "*) echo "# uWebSockets.js $(node -p "require('$uws_pkg/package.json').version") (@btc-vision build, node $(node -v)); -deflate jobs: uws-shared = SHARED_COMPRESSOR|SHARED_DECOMPRESSOR, uws-dedicated = DEDICATED_COMPRESSOR_32KB|DEDICATED_DECOMPRESSOR_32KB";; esac

# The servers each bench runs against, in the order of the first round.
bench_servers() {   # bench_servers BENCH
  local s
  case "$1" in
    fanout-chat|fanout-bus|fanout-chat-bus)   # gatehouse only
      case " $servers " in *" gatehouse "*) echo gatehouse;; esac ;;
    *-deflate)
      for s in $servers; do
        case "$s" in uws) echo uws-shared; echo uws-dedicated;; *) echo "$s";; esac
      done ;;
    *) for s in $servers; do echo "$s"; done ;;
  esac
}

# Each round runs every server once per bench, the order flipped every other
# round so that a machine slowing down or speeding up favours nobody.
for r in $(seq 1 "$repeat"); do
  [ "$repeat" -gt 1 ] && echo "# round $r of $repeat"
  for b in $benches; do
    mapfile -t order < <(bench_servers "$b")
    if [ $((r % 2)) -eq 1 ]; then list=("${order[@]}"); else list=(); for ((i=${#order[@]}-1; i>=0; i--)); do list+=("${order[$i]}"); done; fi
    for s in "${list[@]}"; do
      run "$b" "$s"
    done
  done
done

# The tables: the best valid run of each server (noise on a shared machine
# only ever slows a run down), gatehouse against the others, and the issue's
# goal. Runs during which other processes took 10% or more of a core (wsload
# says noisy=yes) count only when a server has no other.
echo
[ "$repeat" -gt 1 ] && echo "# best of $repeat rounds"

# pick BENCH KEY SERVER max|min: the best quiet figure, else the best noisy
# one followed by the word "noisy", else "-".
pick() {
  local l="${res["$1 $2 $3"]:-}" n="" o=()
  if [ -z "$l" ] && [ -n "${resn["$1 $2 $3"]:-}" ]; then l="${resn["$1 $2 $3"]}"; n=" noisy"; fi
  if [ -z "$l" ]; then echo "-"; return 0; fi
  [ "$4" = max ] && o=(-r)
  # shellcheck disable=SC2086  # one value a word
  printf '%s\n' $l | sort -g "${o[@]}" | head -1 | tr -d '\n'
  echo "$n"
}

# row BENCH KEY max|min GOAL_KIND GOAL GOAL_REF "SERVERS" "REFS": one line,
# a column for each of SERVERS (gatehouse first) and gatehouse/REF for each
# of REFS; the goal is judged against GOAL_REF (when it ran):
#   ratio_min G  gatehouse/GOAL_REF >= G    ratio_max G  gatehouse/GOAL_REF <= G
#   abs_max G    gatehouse <= G (KiB)       none         only the figures
row() {
  local b="$1" k="$2" better="$3" kind="$4" goal="$5" gref="$6" s v vals="" note=""
  local -a srv ref
  read -r -a srv <<<"$7"
  read -r -a ref <<<"$8"
  for s in "${srv[@]}"; do
    v="$(pick "$b" "$k" "$s" "$better")"
    case "$v" in *noisy) note="$note ($s: noisy runs only)"; v="${v% noisy}";; esac
    [ -n "${sat["$b $s"]:-}" ] && note="$note (wsload saturated in $s's run: that figure is a floor)"
    vals="$vals $s=$v"
  done
  awk -v b="$b" -v k="$k" -v vals="$vals" -v refs="${ref[*]}" -v kind="$kind" -v goal="$goal" -v gref="$gref" -v note="$note" '
    BEGIN {
      n = split(vals, a, " ")
      for (i = 1; i <= n; i++) { split(a[i], kv, "="); name[i] = kv[1]; val[kv[1]] = kv[2] }
      fmt = (k == "kib/conn") ? "%.2f" : "%.0f"
      line = sprintf("%-14s %-13s", b, k)
      for (i = 1; i <= n; i++)
        line = line sprintf(" %13s", val[name[i]] == "-" ? "-" : sprintf(fmt, val[name[i]]))
      g = val["gatehouse"]; m = split(refs, rf, " ")
      for (i = 1; i <= m; i++)
        line = line sprintf(" %9s", ratio(g, val[rf[i]]))
      first = ratio(g, val[gref])
      want = ""; verdict = ""; have = (first != "-")
      if (kind == "ratio_min") { want = ">= " goal "x " gref; if (have) verdict = (first + 0 >= goal + 0) ? " met" : " MISSED" }
      if (kind == "ratio_max") { want = "<= " goal "x " gref; if (have) verdict = (first + 0 <= goal + 0) ? " met" : " MISSED" }
      if (kind == "abs_max")   { want = "<= " goal " KiB"; if (g != "" && g != "-") verdict = (g + 0 <= goal + 0) ? " met" : " MISSED" }
      if (kind == "none")      { want = "(lower is better)" }
      print line "  " want verdict note
    }
    function ratio(x, y) {
      if (x == "" || x == "-" || y == "" || y == "-" || y + 0 <= 0) return "-"
      return sprintf("%.2f", x / y)
    }'
}
header() {   # header "SERVERS" "REFS"
  local s line
  line="$(printf '%-14s %-13s' bench figure)"
  for s in $1; do line="$line$(printf ' %13s' "$s")"; done
  for s in $2; do line="$line$(printf ' %9s' "gh/$s")"; done
  echo "$line  goal"
}

# Plain jobs: the goals of issue 4, against node; uWS for reference.
plain_srv="$(for s in gatehouse node uws; do case " $servers " in *" $s "*) printf '%s ' "$s";; esac; done)"
plain_ref="$(for s in node uws; do case " $servers " in *" $s "*) printf '%s ' "$s";; esac; done)"
case " $benches " in *" echo "*|*" fanout "*|*" fanout-200 "*|*" handshake "*|*" idle "*)
  header "$plain_srv" "$plain_ref"
  for b in $benches; do
    case "$b" in
      echo)      row echo rt/s max ratio_min 3 node "$plain_srv" "$plain_ref" ;;
      fanout)    row fanout deliveries/s max ratio_min 5 node "$plain_srv" "$plain_ref"
                 row fanout p99_us min none - node "$plain_srv" "$plain_ref" ;;
      fanout-200) row fanout-200 p99_us min none - node "$plain_srv" "$plain_ref" ;;
      handshake) row handshake hs/s max ratio_min 2 node "$plain_srv" "$plain_ref" ;;
      idle)      row idle kib/conn min abs_max 2 node "$plain_srv" "$plain_ref" ;;
    esac
  done
esac
# permessage-deflate jobs: the goals against uWS with its shared compressor
# (the lightest in memory of its modes, and uWS's own advice for many
# connections); the dedicated one and node ws for reference.
z_srv="$(for s in gatehouse uws-shared uws-dedicated node; do
  case "$s" in uws-*) k=uws;; *) k="$s";; esac
  case " $servers " in *" $k "*) printf '%s ' "$s";; esac; done)"
z_ref="$(for s in uws-shared node; do
  case "$s" in uws-*) k=uws;; *) k="$s";; esac
  case " $servers " in *" $k "*) printf '%s ' "$s";; esac; done)"
case " $benches " in *" echo-deflate "*|*" fanout-deflate "*|*" idle-deflate "*)
  echo
  echo "# permessage-deflate on every connection, 512-byte chat-like JSON, every message compressed"
  header "$z_srv" "$z_ref"
  for b in $benches; do
    case "$b" in
      echo-deflate)   row echo-deflate rt/s max ratio_min 1.0 uws-shared "$z_srv" "$z_ref" ;;
      fanout-deflate) row fanout-deflate deliveries/s max ratio_min 10 uws-shared "$z_srv" "$z_ref"
                      row fanout-deflate p99_us min none - uws-shared "$z_srv" "$z_ref" ;;
      idle-deflate)   row idle-deflate kib/conn min ratio_max 1.0 uws-shared "$z_srv" "$z_ref" ;;
    esac
  done
esac
# gatehouse alone, one bench against another of the same run: fanout-chat
# (chat plugin) and fanout-bus (two instances over Redis) against fanout.
cmp_row() {   # cmp_row BENCH BASE KEY BETTER(max|min) NAME BASENAME
  local c="${res["$1 $3 gatehouse"]:-}" p="${res["$2 $3 gatehouse"]:-}" note=""
  [ -n "${sat["$1 gatehouse"]:-}" ] && note=" (wsload saturated in $5: a floor)"
  [ -n "${sat["$2 gatehouse"]:-}" ] && note="$note (wsload saturated in $6: a floor)"
  if [ -z "$c" ] && [ -n "${resn["$1 $3 gatehouse"]:-}" ]; then c="${resn["$1 $3 gatehouse"]}"; note="$note ($5: noisy runs only)"; fi
  if [ -z "$p" ] && [ -n "${resn["$2 $3 gatehouse"]:-}" ]; then p="${resn["$2 $3 gatehouse"]}"; note="$note ($6: noisy runs only)"; fi
  awk -v b="$1" -v k="$3" -v cl="$c" -v pl="$p" -v better="$4" -v note="$note" '
    function best(list,   a, i, m, n) {
      n = split(list, a, " "); if (n == 0) return "-"
      m = a[1] + 0
      for (i = 2; i <= n; i++) if ((better == "max" && a[i] + 0 > m) || (better == "min" && a[i] + 0 < m)) m = a[i] + 0
      return m
    }
    BEGIN {
      c = best(cl); p = best(pl); r = "-"
      if (c != "-" && p != "-" && p + 0 > 0) r = sprintf("%.2f", c / p)
      printf "%-12s %-13s %12s %12s %11s%s%s\n", b, k, (c == "-") ? "-" : sprintf("%.0f", c),
             (p == "-") ? "-" : sprintf("%.0f", p), r, (better == "min") ? "  (lower is better)" : "", note
    }'
}
case " $benches " in *" fanout-chat "*)
  case " $servers " in
    *" gatehouse "*)
      echo
      echo "# gatehouse only: chat plugin vs pubsub plugin, same fan-out (1,000 receivers), same run"
      printf '%-12s %-13s %12s %12s %11s\n' bench figure chat pubsub chat/pubsub
      cmp_row fanout-chat fanout deliveries/s max chat pubsub; cmp_row fanout-chat fanout p99_us min chat pubsub ;;
    *) echo "# fanout-chat skipped: it runs against gatehouse only" ;;
  esac
esac
case " $benches " in *" fanout-bus "*)
  case " $servers " in
    *" gatehouse "*)
      echo
      echo "# gatehouse only: pubsub fan-out over 2 instances + Redis bus (500 subscribers on each) vs 1 instance, same run;"
      echo "# both instances and redis-server share core $scpu, so the bus figure includes Redis's work on that core"
      printf '%-12s %-13s %12s %12s %11s\n' bench figure bus single bus/single
      cmp_row fanout-bus fanout deliveries/s max bus single; cmp_row fanout-bus fanout p99_us min bus single ;;
    *) echo "# fanout-bus skipped: it runs against gatehouse only" ;;
  esac
esac
case " $benches " in *" fanout-chat-bus "*)
  case " $servers " in
    *" gatehouse "*)
      echo
      echo "# gatehouse only: chat fan-out over 2 instances + Redis bus (500 members on each; every say logged"
      echo "# in Redis) vs chat on 1 instance, same run; instances and redis-server share core $scpu"
      printf '%-15s %-13s %12s %12s %11s\n' bench figure bus single bus/single
      cmp_row fanout-chat-bus fanout-chat deliveries/s max bus single
      cmp_row fanout-chat-bus fanout-chat p99_us min bus single ;;
    *) echo "# fanout-chat-bus skipped: it runs against gatehouse only" ;;
  esac
esac
[ "$invalid" -eq 0 ] || echo "ws.sh: some runs were not valid (see above); their figures are left out" >&2
exit "$invalid"
