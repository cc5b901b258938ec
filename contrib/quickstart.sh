#!/usr/bin/env bash
# quickstart.sh: set up a Debian 12 machine for gatehouse, then run it or test it.
#
#   bash contrib/quickstart.sh run    install what is missing, build (release), run on conf/gateway.yaml
#   bash contrib/quickstart.sh test   install what is missing, build (dev), run the whole suite with ctest
#
# Idempotent: packages are installed only when missing, npm only when the
# lock file changed, and the build is incremental.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

mode="${1:-}"
case "$mode" in
  run|test) ;;
  *) echo "usage: bash contrib/quickstart.sh run|test" >&2; exit 2 ;;
esac

# Debian packages: the build, then what the tests drive the daemon with.
build_pkgs=(gcc make cmake pkg-config libevent-dev libyaml-dev libssl-dev zlib1g-dev check libjansson-dev libhiredis-dev)
test_pkgs=(curl openssl python3 python3-websockets python3-flask gunicorn haproxy shellcheck chromium strace systemd redis-server)

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
want=("${build_pkgs[@]}")
if [ "$mode" = test ]; then want+=("${test_pkgs[@]}"); fi
for p in "${want[@]}"; do have_pkg "$p" || missing+=("$p"); done
if [ "$mode" = test ] && ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "quickstart: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$mode" = test ] && [ -f tests/package.json ]; then
  stamp=tests/node_modules/.gh-lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s tests/package-lock.json "$stamp"; then
    (cd tests && npm ci --no-audit --no-fund --loglevel=error)
    cp tests/package-lock.json "$stamp"
  fi
fi
# the browser test's playwright-core (it drives Debian's chromium: no browser download)
if [ "$mode" = test ] && [ -f tests/e2e/package.json ]; then
  stamp=tests/e2e/node_modules/.gh-lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s tests/e2e/package-lock.json "$stamp"; then
    (cd tests/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    cp tests/e2e/package-lock.json "$stamp"
  fi
fi

jobs="$(nproc 2>/dev/null || echo 2)"
if [ "$mode" = run ]; then
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$jobs"
  exec build/gatehouse -c conf/gateway.yaml
fi

cmake --preset dev >/dev/null
cmake --build --preset dev -j "$jobs"
ctest --preset dev -j "$jobs" --timeout 300
