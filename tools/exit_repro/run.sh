#!/usr/bin/env bash
# Fast reproducer of the abort at exit (results/exit_soak.md): `deno test --parallel` on JOBS copies of a
# test file that uses the GPU (realm.ts), so that JOBS of Deno's worker threads have called EGL; at the end
# Deno wakes them (tokio's shutdown_background) while exit() runs the library destructors. Repeats RUNS
# times and prints one line per run (run, exit code, seconds, glibc's message) and the count of each code.
#   tools/exit_repro/run.sh MODE RUNS [JOBS]     MODE: none | pin | fix (realm.ts), JOBS default 8
# Set CORE_DIR to keep a core dump of each failed run there (needs `ulimit -c unlimited` to be allowed and
# /proc/sys/kernel/core_pattern = core).
set -u
mode=${1:?usage: run.sh none|pin|fix RUNS [JOBS]}
runs=${2:?usage: run.sh none|pin|fix RUNS [JOBS]}
jobs=${3:-8}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo '{}' >"$dir/deno.json"
for j in $(seq 1 "$jobs"); do echo "import \"$here/realm.ts\";" >"$dir/realm${j}_test.ts"; done
[ -n "${CORE_DIR:-}" ] && { ulimit -c unlimited; mkdir -p "$CORE_DIR"; }
declare -A count
for i in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  out=$(cd "$dir" && DENO_WEBGPU_BACKEND=${DENO_WEBGPU_BACKEND:-gl} REPRO_MODE=$mode DENO_JOBS=$jobs \
    deno test -A --parallel --no-lock . 2>&1)
  rc=$?
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  msg=$(echo "$out" | grep -a -m1 -E '^(double free|corrupted |malloc_consolidate|free\(\)|malloc\(\)|munmap_chunk|realloc\(\))|Deno has panicked' || true)
  printf '%s %s %.1f %s\n' "$i" "$rc" "$secs" "$msg"
  if [ "$rc" != 0 ] && ! echo "$out" | sed 's/\x1b\[[0-9;]*m//g' | grep -Eq "^ok \| $jobs passed \| 0 failed"; then
    echo "run $i: the tests themselves did not pass:" >&2
    echo "$out" | tail -20 >&2
  fi
  [ -n "${CORE_DIR:-}" ] && [ -f "$dir/core" ] && mv "$dir/core" "$CORE_DIR/core.$mode.$i"
  count[$rc]=$((${count[$rc]:-0} + 1))
done
summary=""
for rc in "${!count[@]}"; do summary+=" exit $rc: ${count[$rc]};"; done
echo "mode $mode, $runs runs, $jobs realms each:$summary"
