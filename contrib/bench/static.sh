#!/usr/bin/env bash
# static.sh: static-file throughput of gatehouse against nginx and h2o.
#
# Each server runs alone on core 0 (one worker / one thread), wrk on core 1,
# 50 keep-alive connections for DURATION seconds per file size. Prints req/s
# and gatehouse's ratio to each peer. A benchmark, not a test: the machine is
# shared and noisy, so only the ratios within one run mean anything.
#
#   bash contrib/bench/static.sh [GATEHOUSE_BIN]    (DURATION=10 by default)
#
# Needs: wrk nginx h2o (Debian packages; installed when missing).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
gh="${1:-$here/build/gatehouse}"
dur="${DURATION:-10}"
conns="${CONNS:-50}"

need=()
for c in wrk nginx h2o taskset; do command -v "$c" >/dev/null 2>&1 || need+=("$c"); done
if [ "${#need[@]}" -gt 0 ]; then
  pk=(); for c in "${need[@]}"; do case "$c" in nginx) pk+=(nginx-light);; taskset) pk+=(util-linux);; *) pk+=("$c");; esac; done
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pk[@]}"
fi
if [ -z "${1:-}" ]; then
  # always (re)build: an existing release build may be older than the tree
  (cd "$here" && cmake --preset release >/dev/null && cmake --build --preset release -j2 >/dev/null)
fi

tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

mkdir -p "$tmp/www"
chmod 755 "$tmp" "$tmp/www"      # nginx's workers run as another user
head -c 6144 /dev/urandom > "$tmp/www/6k.bin"
head -c 1048576 /dev/urandom > "$tmp/www/1m.bin"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

p_gh="$(free_port)"; p_ng="$(free_port)"; p_h2="$(free_port)"

cat > "$tmp/gh.yaml" <<EOF
access_log: off
log_level: warn
listeners:
  - listen: 127.0.0.1:$p_gh
routes:
  - match: { prefix: / }
    static: { root: www }
EOF
taskset -c 0 "$gh" -c "$tmp/gh.yaml" 2>"$tmp/gh.err" & pids+=($!)

mkdir -p "$tmp/ng"
cat > "$tmp/ng/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log $tmp/ng/error.log;
pid $tmp/ng/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/ng; proxy_temp_path $tmp/ng; fastcgi_temp_path $tmp/ng;
  uwsgi_temp_path $tmp/ng; scgi_temp_path $tmp/ng;
  server { listen 127.0.0.1:$p_ng; root $tmp/www; }
}
EOF
taskset -c 0 nginx -c "$tmp/ng/nginx.conf" -p "$tmp/ng" 2>"$tmp/ng/stderr" & pids+=($!)

cat > "$tmp/h2o.conf" <<EOF
user: $(id -un)
num-threads: 1
error-log: $tmp/h2o.err
listen:
  host: 127.0.0.1
  port: $p_h2
hosts:
  default:
    paths:
      /:
        file.dir: $tmp/www
EOF
taskset -c 0 h2o -c "$tmp/h2o.conf" >/dev/null 2>&1 & pids+=($!)

wait_port "$p_gh"; wait_port "$p_ng"; wait_port "$p_h2"

rps() {   # rps PORT FILE: prints req/s; errors make the run invalid
  local out
  out="$(taskset -c 1 wrk -t1 -c"$conns" -d"${dur}s" "http://127.0.0.1:$1/$2" 2>&1)"
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
    echo "static.sh: errors from the server on port $1 ($2):" >&2
    grep "Non-2xx\|Socket errors" <<<"$out" >&2
    exit 1
  fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}

printf '%-6s %12s %12s %12s %10s %10s\n' file gatehouse nginx h2o gh/nginx gh/h2o
for f in 6k.bin 1m.bin; do
  g="$(rps "$p_gh" "$f")"; n="$(rps "$p_ng" "$f")"; h="$(rps "$p_h2" "$f")"
  awk -v f="$f" -v g="$g" -v n="$n" -v h="$h" \
    'BEGIN { printf "%-6s %12.0f %12.0f %12.0f %10.2f %10.2f\n", f, g, n, h, g / n, g / h }'
done
