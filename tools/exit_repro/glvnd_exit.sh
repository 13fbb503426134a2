#!/usr/bin/env bash
# The exit abort without Deno (results/exit_soak.md): builds glvnd_exit.c with gcc and runs it RUNS times
# as is and RUNS times with on_exit(_exit) registered (what lib/gpu/backend.ts does). glibc's thread cache
# is turned off (glibc.malloc.tcache_count=0) so that its fastbin check sees the second free at once
# ("double free or corruption (fasttop)", exit 134); with the cache on, the damage goes unnoticed here and
# surfaces later, as in Deno. Needs gcc and libEGL.so.1 (libegl1); prints the exit codes.
#   tools/exit_repro/glvnd_exit.sh [RUNS]
set -eu
runs=${1:-3}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
gcc -shared -fPIC -o "$dir/glvnd_late.so" "$here/glvnd_late.c"
gcc -o "$dir/glvnd_exit" "$here/glvnd_exit.c" -ldl -lpthread
dpkg-query -W libegl1 2>/dev/null || true
for mode in plain skip; do
  codes=""
  for _ in $(seq 1 "$runs"); do
    set +e
    # A child bash, whose stderr is dropped, reaps the process: bash's "Aborted" notice stays out.
    GLIBC_TUNABLES=glibc.malloc.tcache_count=0 bash -c '"$0" "$1" "$2" 2>"$3"; exit $?' \
      "$dir/glvnd_exit" "$mode" "$dir/glvnd_late.so" "$dir/err" 2>/dev/null
    codes+=" $?"
    set -e
  done
  echo "$mode:$codes $(sort -u "$dir/err" | head -n 1)"
done
