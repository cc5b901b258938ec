#!/usr/bin/env bash
# proxy.sh: gatehouse's `proxy:` route against nginx as a reverse proxy, same
# machine, same run, same upstreams. A benchmark, not a test: the machine is
# shared and noisy, so only the ratios within one run mean anything.
#
# Upstreams, started once and shared by both proxies, pinned to ORIGIN_CPU
# (default: the server core, so each proxy's figure pays the same origin cost
# on its own core and the load generator keeps core 1 to itself):
#   origin   an nginx (nginx-light, one worker) serving 6k.bin, 1m.bin and a
#            sparse 1 GiB 1g.bin from a temporary folder
#   wsnode   contrib/bench/node/server.js (node `ws` 8), its /ws/echo
# The proxy under test (gatehouse or nginx, a fresh process for every run)
# is pinned to SERVER_CPU (0), the load generator to LOAD_CPU (1):
#   http-6k      wrk -t1 -c50 -d DURATION on /6k.bin: req/s, proxy CPU per request
#   http-1m      the same on /1m.bin
#   ws-echo      wsload echo through the proxy's WebSocket tunnel to node:
#                100 connections x 8 messages of 32 bytes in flight: round trips/s
#   rss-1g       curl downloads /1g.bin (1 GiB) through the proxy to /dev/null;
#                the proxy's VmRSS sampled every 50 ms: start and peak
#   rss-1g-slow  the same with curl --limit-rate SLOW_RATE (a reader slower
#                than the upstream: the proxy must hold the upstream back)
# The rss benches run in the first round only.
#
#   bash contrib/bench/proxy.sh
#   REPEAT=1 DURATION=5 bash contrib/bench/proxy.sh
#
# Environment:
#   GATEHOUSE=PATH   gatehouse binary (build/gatehouse, rebuilt with the
#                    release preset when GATEHOUSE is not set)
#   DURATION=S       seconds of each wrk and wsload run (10)
#   REPEAT=N         rounds (3); the proxy order flips every round; the table
#                    keeps each proxy's best valid run
#   BENCHES="..."    subset of: http-6k http-1m ws-echo rss-1g rss-1g-slow
#   SERVERS="..."    subset of: gatehouse nginx
#   SLOW_RATE=R      curl --limit-rate for rss-1g-slow (200M)
#   RSS_FLAT_KIB=K   the rss goal: peak - start at most K KiB (8192)
#   SERVER_CPU=0 LOAD_CPU=1 ORIGIN_CPU=$SERVER_CPU
#
# Needs: wrk nginx (nginx-light) curl node npm cc pkg-config python3 taskset;
# Debian packages installed when missing. Exit status: 0 when every run was
# valid (no wrk error, no non-2xx, no failed WebSocket, full 1 GiB body),
# 1 otherwise. Goals are printed, not enforced.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bench="$here/contrib/bench"
gh="${GATEHOUSE:-$here/build/gatehouse}"
dur="${DURATION:-10}"
repeat="${REPEAT:-3}"
benches="${BENCHES:-http-6k http-1m ws-echo rss-1g rss-1g-slow}"
servers="${SERVERS:-gatehouse nginx}"
slow_rate="${SLOW_RATE:-200M}"
rss_flat="${RSS_FLAT_KIB:-8192}"
scpu="${SERVER_CPU:-0}"
lcpu="${LOAD_CPU:-1}"
ocpu="${ORIGIN_CPU:-$scpu}"
conns=50

need=()
for c in wrk nginx curl taskset node npm cc pkg-config python3; do command -v "$c" >/dev/null 2>&1 || need+=("$c"); done
if [ "${#need[@]}" -gt 0 ]; then
  pk=(); for c in "${need[@]}"; do case "$c" in nginx) pk+=(nginx-light);; taskset) pk+=(util-linux);; node) pk+=(nodejs);; cc) pk+=(gcc);; *) pk+=("$c");; esac; done
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pk[@]}"
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

case " $servers " in *" gatehouse "*)
  if [ -n "${GATEHOUSE:-}" ]; then
    [ -x "$gh" ] || { echo "proxy.sh: GATEHOUSE=$gh is not executable" >&2; exit 1; }
  else
    # always (re)build: an existing release build may be older than the tree
    (cd "$here" && cmake --preset release >/dev/null && cmake --build --preset release -j2 >/dev/null)
  fi
esac
case " $benches " in *" ws-echo "*)
  if [ ! -d "$bench/node/node_modules/ws" ]; then
    (cd "$bench/node" && npm ci --no-audit --no-fund --loglevel=error)
  fi
esac

tmp="$(mktemp -d)"
chmod 755 "$tmp"            # nginx's workers run as another user when we are root
spid=""                      # the proxy under test
opid=""                      # origin nginx (master)
npid=""                      # node ws echo server
stop_pid() {   # stop_pid PID: TERM, up to 5 s, then KILL
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# shellcheck disable=SC2317  # called by the trap
cleanup() { stop_pid "$spid"; stop_pid "$opid"; stop_pid "$npid"; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# the nginx worker(s) of a master, space-separated (nginx forks them after the port opens)
ng_workers() { local w=""; for _ in $(seq 1 100); do w="$(pgrep -P "$1" | tr '\n' ' ')"; [ -n "$w" ] && break; sleep 0.05; done; echo "$w"; }
ticks() {   # ticks PID...: utime+stime summed, clock ticks
  local s=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    s=$((s + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$s"
}
# core_snap N: busy, total and busy-without-softirq jiffies of core N. The
# loopback's softirq work is charged to the core, not to the process, so the
# noise check leaves it out (bulk transfers would always look noisy).
core_snap() { awk -v c="cpu$1" '$1 == c { print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9, $2+$3+$4+$7 }' /proc/stat; }
# CPU seconds of this shell's waited-for children (wrk, wsload, curl); `times`
# must run in this shell, not in a $(...) subshell, hence the file
kids_cpu() {
  times > "$tmp/times"
  awk 'NR == 2 { split($1, a, /[ms]/); split($2, b, /[ms]/); print a[1] * 60 + a[2] + b[1] * 60 + b[2] }' "$tmp/times"
}

# ---- files and upstreams ----------------------------------------------------
mkdir -p "$tmp/www" "$tmp/origin" "$tmp/plugins"   # plugins: none (gatehouse warns when the folder is missing)
chmod 755 "$tmp/www" "$tmp/plugins"
head -c 6144 /dev/urandom > "$tmp/www/6k.bin"
head -c 1048576 /dev/urandom > "$tmp/www/1m.bin"
truncate -s 1G "$tmp/www/1g.bin"
chmod 644 "$tmp/www/"*.bin

ng_common() {   # ng_common DIR: the lines every nginx here shares
  cat <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
error_log $1/error.log warn;
pid $1/nginx.pid;
events { worker_connections 4096; }
EOF
}
ng_temp() { echo "  client_body_temp_path $1/t; proxy_temp_path $1/t; fastcgi_temp_path $1/t; uwsgi_temp_path $1/t; scgi_temp_path $1/t;"; }

p_origin="$(free_port)"
{ ng_common "$tmp/origin"; cat <<EOF
http {
  access_log off;
$(ng_temp "$tmp/origin")
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server { listen 127.0.0.1:$p_origin; root $tmp/www; }
}
EOF
} > "$tmp/origin/nginx.conf"
taskset -c "$ocpu" nginx -p "$tmp/origin" -c "$tmp/origin/nginx.conf" 2>"$tmp/origin/stderr" &
opid=$!
wait_port "$p_origin" || { echo "proxy.sh: origin nginx never opened port $p_origin:" >&2; cat "$tmp/origin/"{stderr,error.log} >&2; exit 1; }
opids="$opid $(ng_workers "$opid")"

p_node=""
case " $benches " in *" ws-echo "*)
  p_node="$(free_port)"
  taskset -c "$ocpu" node "$bench/node/server.js" "$p_node" 2>"$tmp/node.log" &
  npid=$!
  wait_port "$p_node" || { echo "proxy.sh: node never opened port $p_node:" >&2; cat "$tmp/node.log" >&2; exit 1; }
  # wsload's permessage-deflate is zlib's (as in ws.sh)
  if ! pkg-config --exists zlib; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q zlib1g-dev
  fi
  read -r -a ldflags <<<"$(pkg-config --cflags --libs libevent_core libcrypto zlib)"
  cc -std=gnu11 -O2 -Wall -Wextra "$bench/wsload.c" "${ldflags[@]}" -o "$tmp/wsload"
esac
[ -n "$p_node" ] || p_node="$(free_port)"   # the configs name it even when unused

# ---- the proxies ------------------------------------------------------------
gh_config() {   # gh_config PORT FILE
  cat > "$2" <<EOF
plugins_dir: $tmp/plugins
access_log: off
error_log: stderr
log_level: warn
max_connections: 0
drain_timeout: 1s
listeners:
  - listen: 127.0.0.1:$1
upstreams:
  origin:
    servers: [127.0.0.1:$p_origin]
    keepalive: 32
  wsnode:
    servers: [127.0.0.1:$p_node]
    keepalive: 32
routes:
  - match: { prefix: /ws/ }
    proxy: { upstream: wsnode }
  - match: { prefix: / }
    proxy: { upstream: origin }
EOF
}

# nginx as the peers README says: upstream blocks with keepalive 32, HTTP/1.1,
# Connection "" (the Upgrade/Connection map on /ws/), no buffering either
# way. It also sends the same X-Forwarded-For, X-Forwarded-Proto and
# X-Real-IP that gatehouse adds by default, and the client's Host, so both
# proxies write the same request to the upstream.
ng_config() {   # ng_config PORT DIR
  mkdir -p "$2/t"
  { ng_common "$2"; cat <<EOF
http {
  access_log off;
$(ng_temp "$2")
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  upstream origin { server 127.0.0.1:$p_origin; keepalive 32; }
  upstream wsnode { server 127.0.0.1:$p_node; keepalive 32; }
  proxy_http_version 1.1;
  proxy_buffering off;
  proxy_request_buffering off;
  proxy_set_header Host \$http_host;
  proxy_set_header X-Real-IP \$remote_addr;
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto \$scheme;
  server {
    listen 127.0.0.1:$1 backlog=1024;
    location /ws/ {
      proxy_pass http://wsnode;
      proxy_set_header Host \$http_host;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
    location / {
      proxy_pass http://origin;
      proxy_set_header Connection "";
    }
  }
}
EOF
  } > "$2/nginx.conf"
}

sworkers=""   # the proxy's processes doing the work (gatehouse; nginx's worker)
slog=""
start_server() {   # start_server NAME PORT
  if [ "$1" = gatehouse ]; then
    slog="$tmp/gatehouse.$2.log"
    gh_config "$2" "$tmp/gh.yaml"
    if ! "$gh" -t -c "$tmp/gh.yaml" >"$slog" 2>&1; then
      echo "proxy.sh: gatehouse -t refused the bench config:" >&2; cat "$slog" >&2; return 1
    fi
    taskset -c "$scpu" "$gh" -c "$tmp/gh.yaml" 2>"$slog" &
    spid=$!
  else
    local d="$tmp/nginx.$2"
    mkdir -p "$d"; slog="$d/error.log"
    ng_config "$2" "$d"
    if ! nginx -t -q -p "$d" -c "$d/nginx.conf" >"$d/stderr" 2>&1; then
      echo "proxy.sh: nginx -t refused the bench config:" >&2; cat "$d/stderr" "$slog" >&2; return 1
    fi
    taskset -c "$scpu" nginx -p "$d" -c "$d/nginx.conf" 2>"$d/stderr" &
    spid=$!
  fi
  if ! wait_port "$2"; then
    echo "proxy.sh: $1 never opened port $2:" >&2; cat "$slog" >&2; stop_pid "$spid"; spid=""; return 1
  fi
  if [ "$1" = gatehouse ]; then sworkers="$spid"; else sworkers="$(ng_workers "$spid")"; fi
}

# Both proxies must return the files byte for byte before anything is timed.
check_bodies() {   # check_bodies PORT NAME
  local f
  for f in 6k.bin 1m.bin; do
    if ! curl -sf --max-time 10 -o "$tmp/check.bin" "http://127.0.0.1:$1/$f" || ! cmp -s "$tmp/check.bin" "$tmp/www/$f"; then
      echo "proxy.sh: $2 did not return /$f intact" >&2; return 1
    fi
  done
}

# ---- one run ----------------------------------------------------------------
declare -A res      # "BENCH KEY SERVER" -> values of valid quiet runs
declare -A resn     # the same for valid runs during which other processes took a core
invalid=0
upids() { echo "$opids ${npid:-}"; }   # the upstreams' processes (their core's CPU is not noise)

# cpu_fields SECS PROXY_TICKS UPSTREAM_TICKS LOAD_SECS "CORES BEFORE" "CORES AFTER":
# CPU of the proxy, the upstreams and the load generator, and each core's busy
# share from /proc/stat; other processes' share (when 5 % or more) and
# noisy=yes (10 % or more) as wsload does
cpu_fields() {
  awk -v secs="$1" -v s="$2" -v u="$3" -v k="$4" -v c0="$5" -v c1="$6" -v sc="$scpu" -v lc="$lcpu" -v oc="$ocpu" '
    BEGIN {
      hz = '"$(getconf CLK_TCK)"'
      split(c0, a, " "); split(c1, b, " ")   # server core: 1-3, load core: 4-6
      sp = 100 * s / hz / secs; up = 100 * u / hz / secs; kp = 100 * k / secs
      printf " proxy_cpu=%.0f%% upstream_cpu=%.0f%% load_cpu=%.0f%%", sp, up, kp
      noisy = 0
      if (b[2] > a[2]) {
        busy = 100 * (b[1] - a[1]) / (b[2] - a[2]); nosi = 100 * (b[3] - a[3]) / (b[2] - a[2])
        own = sp + (oc == sc ? up : 0)
        printf " server_core%d_busy=%.0f%%", sc, busy
        if (nosi - own >= 5) printf " server_core%d_other=%.0f%%", sc, nosi - own
        if (nosi - own >= 10) noisy = 1
      }
      if (b[5] > a[5]) {
        busy = 100 * (b[4] - a[4]) / (b[5] - a[5]); nosi = 100 * (b[6] - a[6]) / (b[5] - a[5])
        own = kp + (oc == lc ? up : 0)
        printf " load_core%d_busy=%.0f%%", lc, busy
        if (nosi - own >= 5) printf " load_core%d_other=%.0f%%", lc, nosi - own
        if (nosi - own >= 10) noisy = 1
        if (kp >= 90) printf " load_saturated=yes"
      }
      if (noisy) printf " noisy=yes"
    }'
}

run() {   # run BENCH SERVER
  local port out rc=0 line="" s0 s1 u0 u1 c0 c1 k0 k1 t0 t1 secs key v f reqs rps code size upids_now
  port="$(free_port)"
  start_server "$2" "$port" || { invalid=1; return 0; }
  upids_now="$(upids)"
  if ! check_bodies "$port" "$2"; then invalid=1; stop_pid "$spid"; spid=""; return 0; fi
  # shellcheck disable=SC2086  # both lists split on purpose
  { s0="$(ticks $sworkers)"; u0="$(ticks $upids_now)"; }
  kids_cpu >"$tmp/k0"; k0="$(cat "$tmp/k0")"
  c0="$(core_snap "$scpu") $(core_snap "$lcpu")"; t0="$(date +%s.%N)"
  case "$1" in
    http-6k|http-1m)
      f=6k.bin; [ "$1" = http-1m ] && f=1m.bin
      out="$(taskset -c "$lcpu" wrk -t1 -c"$conns" -d"${dur}s" --timeout 10s "http://127.0.0.1:$port/$f" 2>&1)" || rc=$?
      ;;
    ws-echo)
      # --pid: the proxy's worker first (wsload reads its core), then node, so
      # server_cpu is the tunnel's whole server side and node is not noise
      local wp=() p
      for p in $sworkers; do wp+=(--pid "$p"); done
      out="$(taskset -c "$lcpu" "$tmp/wsload" --mode echo --conns 100 --inflight 8 --size 32 --duration "$dur" \
             --port "$port" --label "$2" "${wp[@]}" --pid "$npid")" || rc=$?
      ;;
    rss-1g|rss-1g-slow)
      local lim=(); [ "$1" = rss-1g-slow ] && lim=(--limit-rate "$slow_rate")
      out="$(taskset -c "$lcpu" python3 "$tmp/rss.py" "$sworkers" -- curl -s -o /dev/null --max-time 120 "${lim[@]}" \
             -w '%{http_code} %{size_download}' "http://127.0.0.1:$port/1g.bin")" || rc=$?
      ;;
  esac
  t1="$(date +%s.%N)"
  # shellcheck disable=SC2086  # both lists split on purpose
  { s1="$(ticks $sworkers)"; u1="$(ticks $upids_now)"; }
  kids_cpu >"$tmp/k1"; k1="$(cat "$tmp/k1")"
  c1="$(core_snap "$scpu") $(core_snap "$lcpu")"
  secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
  case "$1" in
    http-*)
      if grep -q "Non-2xx\|Socket errors" <<<"$out"; then rc=1; fi
      rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
      reqs="$(awk '/requests in/ {print $1}' <<<"$out")"
      [ -n "$rps" ] && [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || rc=1
      if [ "$rc" -eq 0 ]; then
        line="$1 $2 req/s=$rps requests=$reqs conns=$conns seconds=$dur"
        line="$line proxy_us/req=$(awk -v t=$((s1 - s0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
        line="$line transfer/s=$(awk '/Transfer\/sec/ {print $2}' <<<"$out") errors=0"
        line="$line$(cpu_fields "$secs" $((s1 - s0)) $((u1 - u0)) "$(awk -v a="$k0" -v b="$k1" 'BEGIN { print b - a }')" "$c0" "$c1")"
      else
        line="$1 $2 failed: $(grep -E 'Non-2xx|Socket errors|requests in|Requests/sec' <<<"$out" | tr -s ' \n' ' ')"
      fi
      ;;
    ws-echo)
      # wsload prints its own line (server_cpu sums the proxy and the upstreams)
      # proxy_us/rt: wsload's server_cpu (proxy + node, measured seconds only)
      # times the proxy's share of the two over the whole run, per round trip
      line="ws-echo ${out#echo }"
      line="$line proxy_cpu=$(awk -v t=$((s1 - s0)) -v s="$secs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f%%", 100 * t / hz / s }')"
      line="$line upstream_cpu=$(awk -v t=$((u1 - u0)) -v s="$secs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f%%", 100 * t / hz / s }')"
      v="$(awk -v o="$out" -v p=$((s1 - s0)) -v u=$((u1 - u0)) 'BEGIN {
             n = split(o, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); m[kv[1]] = kv[2] + 0 }
             if (m["rt/s"] > 0 && p + u > 0) printf "%.2f", m["server_cpu"] / 100 * p / (p + u) * 1e6 / m["rt/s"] }')"
      [ -z "$v" ] || line="$line proxy_us/rt=$v"
      ;;
    rss-*)
      read -r code size <<<"$(tail -1 <<<"$out" | awk '{print $(NF-1), $NF}')"
      if [ "${code:-}" != 200 ] || [ "${size:-}" != 1073741824 ]; then rc=1; fi
      line="$1 $2 $(head -1 <<<"$out") http=${code:-?} bytes=${size:-?} seconds=$(printf '%.2f' "$secs")"
      line="$line MB/s=$(awk -v b="${size:-0}" -v s="$secs" 'BEGIN { printf "%.0f", b / 1048576 / s }')"
      line="$line proxy_cpu=$(awk -v t=$((s1 - s0)) -v s="$secs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f%%", 100 * t / hz / s }')"
      ;;
  esac
  echo "$line"
  if ! kill -0 "$spid" 2>/dev/null; then rc=1; echo "proxy.sh: $2 died during $1" >&2; fi
  for p in $(upids); do kill -0 "$p" 2>/dev/null || { rc=1; echo "proxy.sh: an upstream process ($p) died during $1" >&2; }; done
  if [ "$rc" -ne 0 ]; then
    invalid=1
    echo "proxy.sh: $1 through $2 is not a valid run (exit $rc)" >&2
    [ -s "$slog" ] && tail -20 "$slog" | sed "s|^|  $2 log: |" >&2
  elif [ -s "$slog" ] && [ "$2" = gatehouse ]; then
    echo "proxy.sh: gatehouse logged during $1 (warn and above):" >&2; tail -5 "$slog" | sed 's|^|  |' >&2
  fi
  stop_pid "$spid"; spid=""
  [ "$rc" -eq 0 ] || return 0
  for key in req/s proxy_us/req rt/s proxy_us/rt MB/s rss_start_kib rss_peak_kib rss_growth_kib; do
    v="$(printf '%s\n' "$line" | tr ' ' '\n' | awk -F= -v k="$key" '$1 == k { print $2 }')"
    [ -n "$v" ] || continue
    case "$line" in
      *noisy=yes*) resn["$1 $key $2"]="${resn["$1 $key $2"]:-} $v" ;;
      *)           res["$1 $key $2"]="${res["$1 $key $2"]:-} $v" ;;
    esac
  done
  return 0
}

# rss.py PIDS -- CMD...: VmRSS of PIDS (summed) before CMD, then every 50 ms
# while CMD runs; prints the figures on one line, then CMD's stdout.
cat > "$tmp/rss.py" <<'EOF'
import subprocess, sys, time
pids = sys.argv[1].split()
cmd = sys.argv[sys.argv.index("--") + 1:]
def rss():
    t = 0
    for p in pids:
        with open("/proc/%s/status" % p) as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    t += int(l.split()[1])
    return t
start = rss()
peak, n = start, 0
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
while proc.poll() is None:
    time.sleep(0.05)
    try:
        v = rss()
    except OSError:
        break
    n += 1
    peak = max(peak, v)
out = proc.communicate()[0].decode()
end = rss()
print("rss_start_kib=%d rss_peak_kib=%d rss_end_kib=%d rss_growth_kib=%d samples=%d" % (start, peak, end, peak - start, n))
print(out)
sys.exit(proc.returncode)
EOF

echo "# proxy.sh $(date -u +%FT%TZ) proxies on core $scpu, upstreams (origin nginx, node ws) on core $ocpu, load on core $lcpu; $(nproc) cores: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "# $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), curl $(curl -V | awk 'NR == 1 {print $2}')$(case " $benches " in *" ws-echo "*) echo ", node $(node -v), ws $(node -p "require('$bench/node/node_modules/ws/package.json').version")";; esac)"
case " $servers " in *" gatehouse "*) echo "# gatehouse: $gh";; esac
read -r -a order <<<"$servers"
for r in $(seq 1 "$repeat"); do
  [ "$repeat" -gt 1 ] && echo "# round $r of $repeat"
  for b in $benches; do
    case "$b" in rss-*) [ "$r" -eq 1 ] || continue;; esac
    if [ $((r % 2)) -eq 1 ]; then list=("${order[@]}"); else list=(); for ((i=${#order[@]}-1; i>=0; i--)); do list+=("${order[$i]}"); done; fi
    for s in "${list[@]}"; do run "$b" "$s"; done
  done
done

# ---- the table ----------------------------------------------------------------
echo
[ "$repeat" -gt 1 ] && echo "# best of $repeat rounds (rss: one run)"
printf '%-12s %-15s %12s %12s %8s  %s\n' bench figure gatehouse nginx gh/nginx goal
row() {   # row BENCH KEY BETTER(max|min) GOAL_KIND GOAL
  local g="${res["$1 $2 gatehouse"]:-}" n="${res["$1 $2 nginx"]:-}" note=""
  if [ -z "$g" ] && [ -n "${resn["$1 $2 gatehouse"]:-}" ]; then g="${resn["$1 $2 gatehouse"]}"; note="$note (gatehouse: noisy runs only)"; fi
  if [ -z "$n" ] && [ -n "${resn["$1 $2 nginx"]:-}" ]; then n="${resn["$1 $2 nginx"]}"; note="$note (nginx: noisy runs only)"; fi
  awk -v b="$1" -v k="$2" -v gl="$g" -v nl="$n" -v better="$3" -v kind="$4" -v goal="$5" -v note="$note" '
    function best(list,   a, i, m, c) {
      c = split(list, a, " "); if (c == 0) return "-"
      m = a[1] + 0
      for (i = 2; i <= c; i++) if ((better == "max" && a[i] + 0 > m) || (better == "min" && a[i] + 0 < m)) m = a[i] + 0
      return m
    }
    BEGIN {
      g = best(gl); n = best(nl); r = "-"; verdict = ""; want = ""
      if (g != "-" && n != "-" && n + 0 > 0) r = sprintf("%.2f", g / n)
      if (kind == "ratio_min") { want = ">= " goal "x nginx"; if (r != "-") verdict = (r + 0 >= goal + 0) ? " met" : " MISSED" }
      if (kind == "abs_max")   { want = "flat: <= " goal " KiB growth"; if (g != "-") verdict = (g + 0 <= goal + 0) ? " met" : " MISSED" }
      if (kind == "none")      { want = goal }
      fmt = (k ~ /^proxy_us/) ? "%.1f" : "%.0f"
      gs = (g == "-") ? "-" : sprintf(fmt, g); ns = (n == "-") ? "-" : sprintf(fmt, n)
      printf "%-12s %-15s %12s %12s %8s  %s%s%s\n", b, k, gs, ns, r, want, verdict, note
    }'
}
for b in $benches; do
  case "$b" in
    http-6k)  row http-6k req/s max ratio_min 1.3; row http-6k proxy_us/req min none "(proxy CPU per request, lower is better)" ;;
    http-1m)  row http-1m req/s max ratio_min 1.0; row http-1m proxy_us/req min none "(proxy CPU per request, lower is better)" ;;
    ws-echo)  row ws-echo rt/s max ratio_min 1.5; row ws-echo proxy_us/rt min none "(proxy CPU per round trip, lower is better)" ;;
    rss-1g|rss-1g-slow)
      row "$b" MB/s max none "(one download, for information)"
      row "$b" rss_start_kib min none ""; row "$b" rss_peak_kib min none ""
      row "$b" rss_growth_kib min abs_max "$rss_flat" ;;
  esac
done
[ "$invalid" -eq 0 ] || echo "proxy.sh: some runs were not valid (see above); their figures are left out" >&2
exit "$invalid"
