#!/usr/bin/env bash
# Soak for issue 12 (results/exit_soak.md): N times a short experiment, then `evaluate` on its checkpoint;
# appends one line per command to OUT_LOG:
#   run | commit | command | exit code | seconds | last line of its output
#   nice -n 10 tools/exit_repro/soak_experiment.sh OUT_LOG N
set -u
log=${1:?usage: soak_experiment.sh OUT_LOG N}
n=${2:?usage: soak_experiment.sh OUT_LOG N}
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- || commit="$commit+dirty"
for i in $(seq 1 "$n"); do
  for step in experiment evaluate; do
    if [ "$step" = experiment ]; then
      cmd=(deno task experiment fashion_mda_quick --train-limit 512 --test-limit 512 --epochs 1 --out "$work/run$i")
    else
      cmd=(deno task evaluate "$work/run$i/model.safetensors" --test-limit 512)
    fi
    start=$(date +%s)
    "${cmd[@]}" >"$work/out" 2>&1
    rc=$?
    last=$(sed 's/\x1b\[[0-9;]*m//g' "$work/out" | grep -v '^\s*$' | tail -n 1 | cut -c1-160)
    echo "$i | $commit | $step | $rc | $(($(date +%s) - start)) | $last" >>"$log"
    [ "$rc" != 0 ] && cp "$work/out" "$log.run$i.$step.out"
  done
done
