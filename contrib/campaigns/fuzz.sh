#!/usr/bin/env bash
# fuzz.sh: the fuzzing campaign (issue 16): every libFuzzer target of
# tests/fuzz/ for MINUTES of CPU each (default 20), JOBS targets at a time
# (default: the CPUs), starting from tests/fuzz/corpus/NAME when it exists;
# then the corpus found is minimised (-merge=1) back into
# tests/fuzz/corpus/NAME, which the CI's short runs start from. Prints each
# target's coverage (libFuzzer's cov: and ft:) and exits non-zero when a
# target crashed (its crash file is left in build/fuzz/campaign/NAME/).
#
#   bash contrib/campaigns/fuzz.sh                    # 20 minutes each
#   MINUTES=1 TARGETS="fuzz_http1 fuzz_proxy" bash contrib/campaigns/fuzz.sh
#   FUZZ_SECONDS=5 bash contrib/campaigns/fuzz.sh     # seconds: to see it work
#
# Builds the `fuzz` preset (clang with libFuzzer: Debian's clang and
# libclang-rt-14-dev, as .ci/run installs them).
set -u
cd "$(dirname "$0")/../.."
minutes="${MINUTES:-20}"
secs="${FUZZ_SECONDS:-$((minutes * 60))}"     # FUZZ_SECONDS: for a quick look
[ "$secs" -gt 0 ] || { echo "fuzz.sh: MINUTES must be at least 1" >&2; exit 2; }
jobs="${JOBS:-$(nproc)}"
cmake --preset fuzz >/dev/null || exit 1
mapfile -t all < <(cd tests/fuzz && ls */fuzz_*.c | sed "s|.*/||; s/\.c$//")
read -r -a targets <<< "${TARGETS:-${all[*]}}"
cmake --build --preset fuzz -j "$jobs" --target "${targets[@]}" >/dev/null || exit 1
out=build/fuzz/campaign
mkdir -p "$out"

run_one() {   # run_one NAME
  local name="$1" dir="$out/$1" seeds=()
  mkdir -p "$dir/corpus"
  [ -d "tests/fuzz/corpus/$name" ] && seeds=("tests/fuzz/corpus/$name")
  # -max_total_time is wall time: the CPU the target really had (user +
  # system, seconds) is kept in cpu and printed, so a campaign run beside
  # other work says what it got.
  local TIMEFORMAT='%U %S'
  { time (cd "$dir" && "../../tests/fuzz/$name" -max_total_time="$secs" -print_final_stats=1 \
      corpus "${seeds[@]/#/../../../../}" > log 2>&1; echo $? > rc); } 2> "$dir/cpu"
}

running=0
for name in "${targets[@]}"; do
  run_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

failed=0
printf '%-20s %8s %8s %10s %8s %s\n' target cov ft execs cpu_min result
for name in "${targets[@]}"; do
  dir="$out/$name"
  rc="$(cat "$dir/rc" 2>/dev/null || echo 1)"
  line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | tail -n 1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$line")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$line")"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")"
  cpu="$(awk '{ printf "%.1f", ($1 + $2) / 60 }' "$dir/cpu" 2>/dev/null)"
  if [ "$rc" != 0 ]; then
    failed=1
    printf '%-20s %8s %8s %10s %8s %s\n' "$name" "${cov:--}" "${ft:--}" "${execs:--}" "${cpu:--}" "CRASH (see $dir)"
    tail -n 40 "$dir/log" | sed "s/^/  $name: /"
    continue
  fi
  mkdir -p "tests/fuzz/corpus/$name"
  "build/fuzz/tests/fuzz/$name" -merge=1 "tests/fuzz/corpus/$name" "$dir/corpus" > "$dir/merge.log" 2>&1
  printf '%-20s %8s %8s %10s %8s %s\n' "$name" "${cov:--}" "${ft:--}" "${execs:--}" "${cpu:--}" \
    "ok, corpus $(ls "tests/fuzz/corpus/$name" | wc -l) files"
done
exit "$failed"
