#!/usr/bin/env bash
# How much does fashion_mda_quick's 2-epoch test accuracy depend on the seed, and do our PRNG's draws
# (initial weights, shuffles) train differently from PyTorch's own? Trains PyTorch (Debian's
# /usr/bin/python3 with torch, 1 thread, 2 runs at a time) on four kinds of draws for each seed:
#   torch     torch.manual_seed(SEED): PyTorch's init and torch.randperm shuffles (the notebook as is)
#   ours      our engine's init and shuffles for SEED (tools/export_draws.ts)
#   ourinit   our init, PyTorch's shuffles       ourorder  PyTorch's init, our shuffles
#   numpyorder  PyTorch's init, NumPy's shuffles (a third generator, to tell a flaw in ours from chance)
# and, with --engine, runs `deno task experiment fashion_mda_quick --seed SEED` in our engine too
# (about 3-7 minutes a run at 2 epochs on 2 cores; 15-25 minutes at 10, beside PyTorch's runs). Then prints the table and the statistics of
# results/seed_study/README.md (tools/seed_study_table.py, tools/seed_study_stats.py).
#   tools/seed_study.sh OUT_DIR [--engine] [--kinds torch,ours,...] [--jobs N] [--epochs N] SEED...
# --kinds picks the kinds of draws (default: all five); --jobs the PyTorch runs at a time (default 2);
# --epochs the epochs of every run, PyTorch's and the engine's (default 2, the experiment's own). Keep
# one OUT_DIR per epoch count: runs already there are not redone.
# Runs go seed by seed, kinds in the order given, so a study stopped early has its arms balanced.
# Runs already in OUT_DIR are kept. PyTorch runs under `nice -n 10`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1; shift
engine=0 kinds=torch,ours,ourinit,ourorder,numpyorder jobs_at_once=2 epochs=2
while [ $# -gt 0 ]; do
  case $1 in
    --engine) engine=1; shift ;;
    --kinds) kinds=$2; shift 2 ;;
    --jobs) jobs_at_once=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    *) break ;;
  esac
done
mkdir -p "$out"
jobs=()
for s in "$@"; do
  [ -f "$out/draws-$s/order.safetensors" ] || deno run -A tools/export_draws.ts "$out/draws-$s" "$s" "$epochs"
  case ,$kinds, in *,numpyorder,*)
    /usr/bin/python3 tools/pytorch/numpy_orders.py "$out/draws-$s/numpy_order.safetensors" "$s" "$epochs" ;;
  esac
  for kind in ${kinds//,/ }; do jobs+=("$kind $s"); done
done
run_one() {
  local kind=$1 s=$2 out=$3 args=()
  case $kind in
    ours) args=(--init "$out/draws-$s/init.safetensors" --order "$out/draws-$s/order.safetensors") ;;
    ourinit) args=(--init "$out/draws-$s/init.safetensors") ;;
    ourorder) args=(--order "$out/draws-$s/order.safetensors") ;;
    numpyorder) args=(--order "$out/draws-$s/numpy_order.safetensors") ;;
  esac
  [ -f "$out/$kind-$s.json" ] && return 0
  nice -n 10 /usr/bin/python3 tools/pytorch/train_notebook.py --widths 16,16,32,32,64,64 --epochs "$epochs" --seed "$s" \
    --threads 1 "${args[@]}" --json "$out/$kind-$s.json.tmp" >"$out/$kind-$s.log" 2>&1
  mv "$out/$kind-$s.json.tmp" "$out/$kind-$s.json"
}
export -f run_one
export epochs
printf '%s\n' "${jobs[@]}" | xargs -P "$jobs_at_once" -I{} bash -c "run_one {} $out"
if [ $engine = 1 ]; then
  for s in "$@"; do
    [ -f "$out/engine-$s/metrics.json" ] ||
      deno task experiment fashion_mda_quick --seed "$s" --epochs "$epochs" --out "$out/engine-$s" >"$out/engine-$s.log" 2>&1
  done
fi
/usr/bin/python3 tools/seed_study_table.py "$out"
# The statistics compare other kinds against torch's draws: only when the study has them.
case ,$kinds, in *,torch,*) /usr/bin/python3 tools/seed_study_stats.py "$out" ;; esac
