#!/usr/bin/env bash
# tools/device/run.sh [SECONDS]   (default 540)
#
# The one command for a GPU machine without network: unpacks the kit that tools/device/pack built (.kit/base:
# Deno, Vulkan/EGL loaders, npm packages; .kit/data: Fashion-MNIST), finds the GPU adapter, then, each step
# bounded in time and all ending well inside SECONDS:
#   (a) the kernel tests, twice, each time on fresh random inputs (DNLL_TEST_SEED)
#   (b) `bench/bench.ts --json` and PyTorch's step of the same model on the same GPU
#       (tools/pytorch/step_bench.py, fp32 with TF32 off, and PyTorch's defaults); where the tuner chose
#       Winograd kernels, the step again with `--no-winograd` (direct convolutions only)
#   (c) the experiment (fashion_mda) for the time left, stopped with SIGINT before the end so that it
#       writes a checkpoint; a second invocation resumes it (state lives in $KIT_STATE, outside the checkout)
#   (d) tools/pytorch/train_notebook.py for a few epochs: PyTorch's epoch time on the same GPU
# and last a short table. Outputs go to $OUT (at most 8 files): log.txt, summary.txt, summary.json,
# summary.md (the same as a README section),
# steps.tar.xz (with the tuner's tuning.json), and the run folder as <experiment>.tar.xz +
# <experiment>.resume.safetensors.xz.
# Steps already done in $KIT_STATE are skipped, so a second call spends its time on (c).
# Knobs (environment): KIT_DIR (.kit), KIT_STATE (/var/tmp/dnll-kit), KIT_STEPS ("a b c d"),
# KIT_EXPERIMENT (fashion_mda), KIT_EXPERIMENT_ARGS, KIT_BENCH_ARGS (--no-kernels), KIT_NO_WINOGRAD_STEP
# (auto|always|never), KIT_TORCH_DEVICE (cuda),
# KIT_TORCH_STEP_ARGS, KIT_NOTEBOOK_EPOCHS (3), KIT_NOTEBOOK_ARGS, KIT_TEST_S (100 per pass), KIT_BENCH_S
# (90), KIT_TORCH_S (60 per PyTorch call), KIT_NOTEBOOK_S (90), KIT_EXPERIMENT_S (all that is left),
# KIT_STOP_GRACE (45), KIT_ALLOW_SOFTWARE
# (0: a software adapter skips the WebGPU steps), KIT_LOADERS (auto|force|skip).
set -uo pipefail

T0=$(date +%s)
BUDGET=${1:-540}
if ! [[ "$BUDGET" =~ ^[0-9]+$ ]] || [ "$BUDGET" -lt 60 ]; then
  echo "error: tools/device/run.sh SECONDS: expected a whole number of seconds >= 60, got \"$BUDGET\"" >&2
  exit 2
fi
# The machine's architecture picks the kit's Deno and loader debs (tools/device/pack --arch=...),
# checked before anything is unpacked.
MACHINE=$(uname -m)
case "$MACHINE" in
  x86_64) DEB_ARCH=amd64 ;;
  aarch64 | arm64) MACHINE=aarch64 DEB_ARCH=arm64 ;;
  *)
    echo "error: tools/device/run.sh: this machine is $MACHINE; the kit has Deno for x86_64 and aarch64 Linux only" >&2
    exit 1
    ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
KIT=${KIT_DIR:-$ROOT/.kit}
STATE=${KIT_STATE:-/var/tmp/dnll-kit}
OUTDIR=${OUT:-$STATE/out}
STEPS=" ${KIT_STEPS:-a b c d} "
EXPERIMENT=${KIT_EXPERIMENT:-fashion_mda}
TORCH_DEVICE=${KIT_TORCH_DEVICE:-cuda}
RESERVE=25 # archiving and the table at the end (the table's own cap is 20 s)
mkdir -p "$STATE/steps/tests" "$STATE/steps/bench" "$STATE/steps/pytorch" "$STATE/results" "$OUTDIR" || exit 1
exec > >(tee "$OUTDIR/log.txt") 2>&1
TEE_PID=$!
# Let tee write the last lines into $OUT before the script ends (the device tool collects $OUT then).
trap 'exec >&- 2>&-; wait "$TEE_PID" 2>/dev/null' EXIT

elapsed() { echo $(($(date +%s) - T0)); }
left() { echo $((BUDGET - $(elapsed))); }
say() { printf '[kit %3ss] %s\n' "$(elapsed)" "$*"; }
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }
has_step() { [[ "$STEPS" == *" $1 "* ]]; }
problems=()
problem() {
  problems+=("$*")
  say "PROBLEM: $*"
}

# xz may be missing on a bare machine; python3's lzma and tarfile read and write the same files.
unxz_to() { # SRC.xz DEST
  if command -v xz >/dev/null; then xz -dc "$1" >"$2.part"; else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2.part"
  fi && mv "$2.part" "$2"
}
untar_xz() { # SRC.tar.xz DIR
  if command -v xz >/dev/null; then xz -dc "$1" | tar -xf - -C "$2"; else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
  fi
}
tar_xz() { # DEST.tar.xz DIR NAME [tar excludes...]: DIR/NAME into DEST, written to a temp name then renamed
  local dest=$1 dir=$2 name=$3
  shift 3
  if command -v xz >/dev/null; then tar -cf - "$@" -C "$dir" "$name" | xz -T0 -3 >"$dest.part"; else
    python3 -c 'import sys, tarfile; t = tarfile.open(sys.argv[1], "w:xz"); t.add(sys.argv[2], sys.argv[3],
      filter=lambda i: None if i.name.endswith("resume.safetensors") else i); t.close()' "$dest.part" "$dir/$name" "$name"
  fi && mv "$dest.part" "$dest"
}

say "device kit: budget ${BUDGET} s, kit $KIT, state $STATE, out $OUTDIR, steps${STEPS% }, $MACHINE"

# --- Deno --------------------------------------------------------------------------------------------
mkdir -p "$STATE/bin"
deno_xz=$(ls "$KIT"/base/deno-*-"$MACHINE"-linux.xz 2>/dev/null | head -1)
if [ -x "$STATE/bin/deno" ] && "$STATE/bin/deno" --version >/dev/null 2>&1; then
  say "deno: $STATE/bin/deno (unpacked by an earlier call)"
elif [ -n "$deno_xz" ]; then
  unxz_to "$deno_xz" "$STATE/bin/deno.new" && chmod +x "$STATE/bin/deno.new"
  want=$(cut -d' ' -f1 "$KIT/base/deno-$MACHINE-linux.sha256" 2>/dev/null)
  got=$(sha256sum "$STATE/bin/deno.new" | cut -d' ' -f1)
  if [ -n "$want" ] && [ "$got" = "$want" ]; then mv "$STATE/bin/deno.new" "$STATE/bin/deno"; else
    problem "deno from $deno_xz: SHA-256 $got, expected $want (kit damaged?)"
  fi
fi
[ -x "$STATE/bin/deno" ] && export PATH="$STATE/bin:$PATH"
if ! command -v deno >/dev/null; then
  echo "error: no deno: $KIT/base holds no deno-*-$MACHINE-linux.xz (build it with tools/device/pack --arch=$DEB_ARCH and carry .kit/base)" >&2
  exit 1
fi
say "$(deno --version | head -1) at $(command -v deno)"

# --- Vulkan/EGL loaders: installed (dpkg -x DEB /, then ldconfig) only where the machine lacks them -----
debs=("$KIT"/base/loaders/"$DEB_ARCH"/*.deb)
mode=${KIT_LOADERS:-auto}
if [ -e "${debs[0]}" ] && [ "$mode" != skip ]; then
  if [ "$mode" = force ] || ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' ||
    ! ldconfig -p 2>/dev/null | grep -q 'libEGL\.so\.1'; then
    if [ "$(id -u)" = 0 ]; then
      for d in "${debs[@]}"; do dpkg -x "$d" / || problem "dpkg -x $d / failed"; done
      ldconfig
      say "loaders: installed ${#debs[@]} debs into / ($(ldconfig -p | grep -c 'libvulkan\.so\.1\|libEGL\.so\.1') libraries found)"
    else # not root (a cluster node): unpack beside the state and point the dynamic loader there
      mkdir -p "$STATE/root"
      for d in "${debs[@]}"; do dpkg -x "$d" "$STATE/root" || problem "dpkg -x $d failed"; done
      export LD_LIBRARY_PATH="$STATE/root/usr/lib/$MACHINE-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      say "loaders: unpacked into $STATE/root (not root), LD_LIBRARY_PATH set"
    fi
  else
    for d in "${debs[@]}"; do dpkg-deb --info "$d" >/dev/null || problem "$d is not a valid .deb"; done
    say "loaders: libvulkan.so.1 and libEGL.so.1 already present; ${#debs[@]} carried debs checked, not installed"
  fi
fi

# --- npm packages (node_modules in the checkout, Deno's npm cache in the state): no registry needed ------
export DENO_DIR="$STATE/deno_dir" DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1 NO_COLOR=1
# The tuner's file (lib/gpu/tuner.ts) in the state too: the bench's choices reach the experiment, a second
# call and steps.tar.xz whatever HOME the machine gives (or none).
export XDG_CACHE_HOME="$STATE/cache"
if [ ! -d "$ROOT/node_modules/.deno" ] || [ ! -d "$DENO_DIR/npm" ]; then
  if [ -s "$KIT/base/npm.tar.xz" ]; then
    rm -rf "$STATE/npm.new" && mkdir -p "$STATE/npm.new"
    if untar_xz "$KIT/base/npm.tar.xz" "$STATE/npm.new"; then
      [ -d "$ROOT/node_modules/.deno" ] || { rm -rf "$ROOT/node_modules" && mv "$STATE/npm.new/node_modules" "$ROOT/"; }
      mkdir -p "$DENO_DIR" && rm -rf "$DENO_DIR/npm" && mv "$STATE/npm.new/deno_dir/npm" "$DENO_DIR/npm"
      say "npm packages: unpacked (node_modules, DENO_DIR/npm)"
    else problem "could not unpack $KIT/base/npm.tar.xz"; fi
    rm -rf "$STATE/npm.new"
  else
    say "npm packages: $KIT/base/npm.tar.xz missing; Deno will need the registry"
  fi
fi
DENO_RUN=(deno run -A --cached-only --frozen)
DENO_TEST=(deno test -A --cached-only --frozen --no-check)
# A private runtime dir: lavapipe's Wayland probe otherwise prints an alarming XDG_RUNTIME_DIR error.
export XDG_RUNTIME_DIR="$STATE/xdg"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

# --- Fashion-MNIST: unpacked from .kit/data, each file checked by SHA-256 ------------------------------
DATADIR="$STATE/data/fashion-mnist"
if [ -f "$STATE/data/SHA256SUMS" ] && (cd "$STATE/data" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1); then
  say "data: $DATADIR (unpacked and checked by an earlier call)"
elif [ -s "$KIT/data/fashion-mnist.tar.xz" ]; then
  rm -rf "$STATE/data" && mkdir -p "$STATE/data"
  if untar_xz "$KIT/data/fashion-mnist.tar.xz" "$STATE/data" && cp "$KIT/data/SHA256SUMS" "$STATE/data/" &&
    (cd "$STATE/data" && sha256sum --quiet -c SHA256SUMS); then
    say "data: Fashion-MNIST unpacked, SHA-256 of all 4 files as expected"
  else
    problem "data: $KIT/data/fashion-mnist.tar.xz did not unpack to the expected SHA-256"
    rm -rf "$STATE/data"
  fi
else
  say "data: not carried (.kit/data); the steps that train, (c) and (d), wait for a call that carries it"
fi
have_data() { [ -f "$STATE/data/SHA256SUMS" ] && [ -d "$DATADIR" ]; }
run_status() { # the run's manifest "status" (running, stopped, finished, failed), or nothing
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("status", ""))' "$1/manifest.json" 2>/dev/null
}

# --- The adapter: the GPU if Deno sees one, else again with the NVIDIA driver's own manifests ---------
# Each probe at most 45 s (a cold driver's start is seconds; a hang would repeat), within the budget.
probe() {
  local cap
  cap=$(min 45 $(($(left) - RESERVE - 60)))
  if [ "$cap" -lt 10 ]; then
    say "no time left to look for the adapter"
    return 124
  fi
  timeout -k 5 "$cap" "${DENO_RUN[@]}" tools/device/adapter.ts --json "$STATE/steps/adapter.json"
}
VK_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
EGL_VENDOR=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
# Vulkan first (NVIDIA's Linux path; with no backend named, wgpu could settle on the GPU through EGL/GL),
# then any backend; each as the machine is set up, then with NVIDIA's manifests, then with manifests we
# write for the driver's libraries wherever they are (nvidia_manifests.sh: for a machine whose manifests
# are missing or name a library the linker cannot find). A backend the caller named (DENO_WEBGPU_BACKEND)
# is the only one tried.
user_backend=${DENO_WEBGPU_BACKEND:-}
user_ld_path=${LD_LIBRARY_PATH:-}
# Written once, tried with each backend (empty: no driver library found).
written=$(bash tools/device/nvidia_manifests.sh "$STATE/nvidia-manifests") || written=""
backends=("${user_backend:-vulkan}")
[ -z "$user_backend" ] && backends+=(default)
rc=1
for backend in "${backends[@]}"; do
  for nvidia in 0 1 2; do
    how=""
    if [ "$nvidia" = 1 ]; then
      [ -e "$VK_ICD" ] || [ -e "$EGL_VENDOR" ] || {
        say "no NVIDIA driver manifest at $VK_ICD or $EGL_VENDOR"
        continue
      }
      export VK_DRIVER_FILES=$VK_ICD __EGL_VENDOR_LIBRARY_FILENAMES=$EGL_VENDOR
      how=", VK_DRIVER_FILES=$VK_ICD __EGL_VENDOR_LIBRARY_FILENAMES=$EGL_VENDOR"
    elif [ "$nvidia" = 2 ]; then
      [ -n "$written" ] || {
        say "no NVIDIA driver library (libEGL_nvidia.so.0, libGLX_nvidia.so.0) found to write a manifest for"
        break
      }
      while read -r kind path; do
        case $kind in
          vk) export VK_DRIVER_FILES=$path ;;
          egl) export __EGL_VENDOR_LIBRARY_FILENAMES=$path ;;
          libdir) export LD_LIBRARY_PATH=$path${user_ld_path:+:$user_ld_path} ;;
        esac
      done <<<"$written"
      how=", our manifests: $(echo "$written" | tr '\n' ' ')"
    fi
    if [ "$backend" = default ]; then unset DENO_WEBGPU_BACKEND; else export DENO_WEBGPU_BACKEND=$backend; fi
    say "adapter (backend $backend$how):"
    probe
    rc=$?
    [ "$rc" = 0 ] && break 2
    unset VK_DRIVER_FILES __EGL_VENDOR_LIBRARY_FILENAMES
    if [ -n "$user_ld_path" ]; then export LD_LIBRARY_PATH=$user_ld_path; else unset LD_LIBRARY_PATH; fi
  done
done
if [ "$rc" != 0 ]; then # no hardware adapter: back to the caller's settings (a software adapter, or none)
  if [ -n "$user_backend" ]; then export DENO_WEBGPU_BACKEND=$user_backend; else unset DENO_WEBGPU_BACKEND; fi
  [ "${#backends[@]}" = 1 ] || { probe >/dev/null; rc=$?; }
fi
if [ "$rc" != 0 ]; then
  say "diagnostics: nvidia-smi -L: $(if command -v nvidia-smi >/dev/null; then nvidia-smi -L 2>&1 | head -2 | tr '\n' ' '; else echo "not found"; fi)"
  ls -l /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>&1 | sed 's/^/  /'
  say "diagnostics: NVIDIA libraries the linker knows: $(ldconfig -p 2>/dev/null | grep -c nvidia);" \
    "$(ldconfig -p 2>/dev/null | grep -o 'lib\(EGL\|GLX\)_nvidia[^ ]* .*' | head -4 | tr '\n' ' ')"
  VK_LOADER_DEBUG=driver timeout -k 5 30 "${DENO_RUN[@]}" tools/device/adapter.ts 2>&1 | grep -i 'driver\|error\|fail' | head -20 | sed 's/^/  /'
fi
webgpu=1
if [ "$rc" = 3 ] && [ "${KIT_ALLOW_SOFTWARE:-0}" = 1 ]; then
  say "software adapter: allowed here (KIT_ALLOW_SOFTWARE=1)"
elif [ "$rc" != 0 ]; then
  webgpu=0
  problem "no hardware WebGPU adapter (probe exit $rc): the WebGPU steps are skipped, PyTorch's still run"
fi

# --- (a) kernel tests, twice, on fresh random inputs -------------------------------------------------
# The kernel tests are the test files whose seeds go through DNLL_TEST_SEED (test/util.ts, TestRng).
mapfile -t kernel_tests < <(grep -l 'TestRng\|testSeed(' test/*_test.ts 2>/dev/null)
if has_step a && [ "$webgpu" = 1 ] && [ ! -f "$STATE/steps/tests/done" ]; then
  for pass in 1 2; do
    seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
    cap=$(min "${KIT_TEST_S:-100}" $(($(left) - RESERVE - 60)))
    [ "$cap" -ge 20 ] || {
      problem "(a) pass $pass: no time left"
      break
    }
    log="$STATE/steps/tests/pass$pass.log"
    say "(a) kernel tests, pass $pass: ${#kernel_tests[@]} files, DNLL_TEST_SEED=$seed, at most $cap s"
    echo "DNLL_TEST_SEED=$seed" >"$log"
    DNLL_TEST_SEED=$seed timeout -k 10 "$cap" "${DENO_TEST[@]}" "${kernel_tests[@]}" >>"$log" 2>&1
    rc=$?
    summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -1)
    # Seen on llvmpipe (.ci/run): deno may crash with SIGSEGV while tearing WebGPU down after a clean summary.
    if [ "$rc" = 139 ] && [[ "$summary" =~ \|\ 0\ failed ]]; then rc=0; fi
    echo "pass=$pass seed=$seed rc=$rc summary=${summary:-none}" >>"$STATE/steps/tests/results.txt"
    say "(a) pass $pass: exit $rc, ${summary:-no summary}"
    [ "$rc" = 0 ] || { grep -E 'FAILED|error:|=> ' "$log" | head -20 | sed 's/^/  /'; problem "(a) pass $pass exit $rc"; }
  done
  [ "$(grep -c 'rc=0 ' "$STATE/steps/tests/results.txt" 2>/dev/null)" -ge 2 ] && touch "$STATE/steps/tests/done"
fi

# --- (b) our training step beside PyTorch's on the same device -------------------------------------------
PY=${DNLL_PYTHON:-python3}
"$PY" -c 'import torch' 2>/dev/null || PY=/usr/bin/python3
"$PY" -c 'import torch' 2>/dev/null || { PY=""; problem "no python3 that imports torch: PyTorch steps skipped"; }
# The last line of OUT into JSON when it is a JSON object (the benches print theirs last), else no JSON.
last_json() { tail -1 "$1" | grep '^{' >"$2" || rm -f "$2"; }
# run_bench NAME CAP ARGS...: bench/bench.ts --json --no-torch ARGS, into steps/bench/NAME.out, .log and .json;
# prints its step lines and returns its exit status.
run_bench() {
  local name=$1 cap=$2
  shift 2
  local b="$STATE/steps/bench/$name"
  timeout -k 10 "$cap" "${DENO_RUN[@]}" bench/bench.ts --json --no-torch "$@" >"$b.out" 2>"$b.log"
  local rc=$?
  last_json "$b.out" "$b.json"
  grep -E 'train step|adapter' "$b.log" | sed 's/^/  /'
  return "$rc"
}
if has_step b && [ ! -f "$STATE/steps/bench/done" ]; then
  ok=1
  if [ "$webgpu" = 1 ]; then
    cap=$(min "${KIT_BENCH_S:-90}" $(($(left) - RESERVE - 60)))
    # --no-kernels by default: the per-kernel tables would time every tuner candidate a second time (the
    # tuner has timed each at the same shapes, and tuning.json keeps every time) before the step, whose
    # JSON line comes last: within the cap a slow GPU would lose the step for a table it already has.
    bench_args=${KIT_BENCH_ARGS---no-kernels}
    say "(b) deno bench --json $bench_args, at most $cap s"
    # shellcheck disable=SC2086
    run_bench bench "$cap" $bench_args
    rc=$?
    # A tuner candidate that lost the device (a driver reset) is marked in tuning.json, and a new process
    # skips it (lib/gpu/tuner.ts): once more on a new device, so that one bad candidate does not cost the
    # call its step time. The first attempt's log is kept.
    if [ "$rc" != 0 ] && grep -q 'the GPU device was lost.*while the tuner ran' "$STATE/steps/bench/bench.log"; then
      cap=$(min "${KIT_BENCH_S:-90}" $(($(left) - RESERVE - 60)))
      if [ "$cap" -ge 20 ]; then
        mv "$STATE/steps/bench/bench.log" "$STATE/steps/bench/bench_lost_device.log"
        say "(b) NOTE: $(grep -o 'the GPU device was lost.*' "$STATE/steps/bench/bench_lost_device.log" | head -1)"
        say "(b) again, without that candidate (tuning.json marks it), at most $cap s"
        # shellcheck disable=SC2086
        run_bench bench "$cap" $bench_args
        rc=$?
      fi
    fi
    [ "$rc" = 0 ] && [ -s "$STATE/steps/bench/bench.json" ] || { ok=0; problem "(b) bench exit $rc"; }
    # The same step with direct convolutions only, where the tuner chose Winograd kernels: what a user of
    # --no-winograd gets. The tuning file answers it (no candidate is timed again); the step builds the
    # direct kernels it runs.
    # KIT_NO_WINOGRAD_STEP: auto (so), always (the rehearsal on a CPU, whose kernels are never Winograd), never.
    no_winograd=${KIT_NO_WINOGRAD_STEP:-auto}
    if [ "$no_winograd" = always ] || { [ "$no_winograd" = auto ] &&
      grep -q 'winograd_f2x2(' "$STATE/steps/bench/bench.json" 2>/dev/null; }; then
      cap=$(min "${KIT_BENCH_S:-90}" $(($(left) - RESERVE - 120)))
      if [ "$cap" -ge 20 ]; then
        say "(b) deno bench --json --no-winograd $bench_args, at most $cap s"
        # shellcheck disable=SC2086
        run_bench bench_no_winograd "$cap" --no-winograd $bench_args || problem "(b) bench --no-winograd exit $?"
      else say "(b) no time left for the step without Winograd"; fi
    fi
  fi
  if [ -n "$PY" ]; then
    for precision in fp32 default; do
      cap=$(min "${KIT_TORCH_S:-60}" $(($(left) - RESERVE - 30)))
      say "(b) PyTorch step, --device $TORCH_DEVICE --precision $precision, at most $cap s"
      # shellcheck disable=SC2086
      timeout -k 10 "$cap" "$PY" tools/pytorch/step_bench.py --device "$TORCH_DEVICE" --precision "$precision" \
        --warmup 5 --steps 20 ${KIT_TORCH_STEP_ARGS:-} >"$STATE/steps/bench/torch_$precision.out" \
        2>"$STATE/steps/bench/torch_$precision.log"
      rc=$?
      last_json "$STATE/steps/bench/torch_$precision.out" "$STATE/steps/bench/torch_$precision.json"
      [ "$rc" = 0 ] && sed 's/^/  /' "$STATE/steps/bench/torch_$precision.json" ||
        { ok=0; tail -3 "$STATE/steps/bench/torch_$precision.log"; problem "(b) PyTorch $precision exit $rc"; }
    done
  fi
  [ "$ok" = 1 ] && touch "$STATE/steps/bench/done"
fi

# --- (c) the experiment for the time left; SIGINT before the end leaves a checkpoint for --resume ---------
RUN="$STATE/results/$EXPERIMENT"
notebook_left=0
has_step d && [ ! -f "$STATE/steps/pytorch/done" ] && [ -n "$PY" ] && notebook_left=${KIT_NOTEBOOK_S:-90}
if has_step c && [ "$webgpu" = 1 ] && have_data; then
  if [ "$(run_status "$RUN")" = finished ]; then
    say "(c) $EXPERIMENT: finished in an earlier call"
  else
    grace=${KIT_STOP_GRACE:-45}
    cap=$(($(left) - RESERVE - notebook_left - grace))
    [ -n "${KIT_EXPERIMENT_S:-}" ] && cap=$(min "$KIT_EXPERIMENT_S" "$cap")
    if [ "$cap" -lt 20 ]; then problem "(c) no time left for the experiment"; else
      resume=()
      [ -f "$RUN/resume.safetensors" ] && resume=(--resume)
      say "(c) $EXPERIMENT ${resume[*]} ${KIT_EXPERIMENT_ARGS:-}: SIGINT after $cap s, then $grace s to checkpoint"
      # shellcheck disable=SC2086
      timeout --preserve-status -s INT -k "$grace" "$cap" "${DENO_RUN[@]}" experiments/run.ts "$EXPERIMENT" \
        --data "$DATADIR" --out "$RUN" "${resume[@]}" ${KIT_EXPERIMENT_ARGS:-} 2>&1 |
        tee -a "$STATE/steps/experiment.log"
      rc=${PIPESTATUS[0]}
      status=$(run_status "$RUN")
      # (A run stopped before its first epoch's end has no history yet.)
      epochs=0
      [ -f "$RUN/history.jsonl" ] && epochs=$(wc -l <"$RUN/history.jsonl")
      say "(c) exit $rc, run status ${status:-none}, $epochs epochs done"
      case "$rc:$status" in
        0:finished | 130:stopped) ;;
        137:running)
          # Killed after the grace: the checkpoint of the last finished epoch still resumes; the partial is lost.
          if [ -f "$RUN/resume.safetensors" ]; then
            say "(c) NOTE: the step outlasted the $grace s grace and was killed; --resume continues from the last epoch's checkpoint"
          else problem "(c) $EXPERIMENT: killed before its first checkpoint"; fi
          ;;
        *) problem "(c) $EXPERIMENT: exit $rc, status ${status:-none}" ;;
      esac
      if [ "$status" != finished ] && grep -q '"figures"' deno.json && [ "$(left)" -gt $((RESERVE + notebook_left + 40)) ]; then
        say "(c) deno task figures $RUN"
        timeout -k 5 30 deno task figures "$RUN" >>"$STATE/steps/experiment.log" 2>&1 || say "(c) figures: exit $?"
      fi
    fi
  fi
elif has_step c && [ "$webgpu" = 1 ]; then
  say "(c) skipped: no data here yet"
fi

# --- (d) PyTorch's epochs of the notebook on the same GPU -----------------------------------------------
if has_step d && [ -n "$PY" ] && have_data && [ ! -f "$STATE/steps/pytorch/done" ]; then
  cap=$(min "${KIT_NOTEBOOK_S:-90}" $(($(left) - RESERVE)))
  if [ "$cap" -lt 20 ]; then problem "(d) no time left"; else
    say "(d) PyTorch notebook, ${KIT_NOTEBOOK_EPOCHS:-3} epochs on $TORCH_DEVICE, at most $cap s"
    # shellcheck disable=SC2086
    PYTHONUNBUFFERED=1 timeout -k 10 "$cap" "$PY" tools/pytorch/train_notebook.py --device "$TORCH_DEVICE" \
      --precision fp32 --data "$DATADIR" --epochs "${KIT_NOTEBOOK_EPOCHS:-3}" ${KIT_NOTEBOOK_ARGS:-} \
      --json "$STATE/steps/pytorch/notebook.json" 2>&1 | tee "$STATE/steps/pytorch/notebook.log" | sed 's/^/  /'
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 0 ]; then touch "$STATE/steps/pytorch/done"; else
      problem "(d) PyTorch notebook exit $rc (epochs it printed still count)"
    fi
  fi
elif has_step d && [ -n "$PY" ] && ! have_data; then
  say "(d) skipped: no data here yet"
fi

# --- Outputs: at most 8 files in $OUT, then the table ----------------------------------------------------
say "archiving into $OUTDIR"
printf '%s\n' "${problems[@]}" >"$STATE/steps/problems.txt"
# The tuner's choices per layer shape on this GPU (lib/gpu/tuner.ts), for the README's record.
tuning_file="${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/webgpu-mda/tuning.json"
[ -f "$tuning_file" ] && cp "$tuning_file" "$STATE/steps/tuning.json"
tar_xz "$OUTDIR/steps.tar.xz" "$STATE" steps || problem "archiving steps failed"
if [ -d "$RUN" ]; then
  tar_xz "$OUTDIR/$EXPERIMENT.tar.xz" "$STATE/results" "$EXPERIMENT" --exclude=resume.safetensors ||
    problem "archiving $RUN failed"
  if [ -f "$RUN/resume.safetensors" ]; then
    if command -v xz >/dev/null; then xz -T0 -1 -c "$RUN/resume.safetensors" >"$OUTDIR/$EXPERIMENT.resume.safetensors.xz"; else
      python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(open(sys.argv[1], "rb"), lzma.open(sys.argv[2], "wb", preset=1))' \
        "$RUN/resume.safetensors" "$OUTDIR/$EXPERIMENT.resume.safetensors.xz"
    fi
  fi
fi
timeout -k 5 20 "${DENO_RUN[@]}" tools/device/summary.ts "$STATE" "$EXPERIMENT" --json "$OUTDIR/summary.json" \
  --markdown "$OUTDIR/summary.md" |
  tee "$OUTDIR/summary.txt"
for f in "$OUTDIR"/*; do
  [ "$(stat -c %s "$f")" -le $((16 * 1048576)) ] || problem "$(basename "$f") is over 16 MiB and will not come back"
done
say "done in $(elapsed) s of $BUDGET; $(ls "$OUTDIR" | wc -l) files in $OUTDIR"
if [ ${#problems[@]} -gt 0 ]; then
  printf 'problems:\n' && printf '  %s\n' "${problems[@]}"
  exit 1
fi
