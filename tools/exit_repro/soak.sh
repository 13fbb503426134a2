#!/usr/bin/env bash
# Soak for issue 12 (results/exit_soak.md): runs the README's test command (`deno task test`) N times in
# this checkout and appends one line per run to OUT_LOG:
#   run | commit | exit code | seconds | load average at the start | summary line (+ glibc's message, if any)
# Run numbers continue from the last line already in OUT_LOG, so the lead can stop and restart it.
#   nice -n 10 tools/exit_repro/soak.sh OUT_LOG N
# A commit marked "+dirty" had uncommitted changes to tracked files: such runs do not count for the issue.
set -u
log=${1:?usage: soak.sh OUT_LOG N}
n=${2:?usage: soak.sh OUT_LOG N}
cd "$(dirname "$0")/../.."
last=$(tail -n 1 "$log" 2>/dev/null | cut -d'|' -f1 | tr -d ' ')
[[ "$last" =~ ^[0-9]+$ ]] || last=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq $((last + 1)) $((last + n))); do
  commit=$(git rev-parse --short HEAD)
  git diff --quiet HEAD -- || commit="$commit+dirty"
  load=$(cut -d' ' -f1 /proc/loadavg)
  start=$(date +%s)
  deno task test >"$out" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
  # glibc's heap-check messages start their line; Deno's panics say so.
  msg=$(grep -a -m1 -E '^(double free|corrupted |malloc_consolidate|free\(\)|malloc\(\)|munmap_chunk|realloc\(\))|Deno has panicked' "$out")
  echo "$i | $commit | $rc | $secs | $load | ${summary:-no summary}${msg:+ | $msg}" >>"$log"
  # Keep the output of a failed run for the report.
  [ "$rc" != 0 ] && cp "$out" "$log.run$i.out"
done
