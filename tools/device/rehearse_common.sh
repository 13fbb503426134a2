# Sourced by tools/device/rehearse and tools/device/rehearse_arm64: what both rehearsals do alike.

# copy_sent_files DEST: what a device call sends (tracked and untracked-not-ignored files), nothing else.
copy_sent_files() {
  mkdir -p "$1"
  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
  done | tar -cf - --null -T - | tar -xf - -C "$1"
}

# NONET: the command prefix that cuts the network (a new network namespace as root, a user namespace with
# one otherwise); the rehearsal stops where neither is permitted.
if unshare -n true 2>/dev/null; then NONET=(unshare -n); elif unshare -rn true 2>/dev/null; then NONET=(unshare -rn); else
  echo "error: unshare -n is not permitted here; the rehearsal needs a way to cut the network" >&2
  exit 1
fi

# check DESCRIPTION COMMAND...: one line "ok" or "FAIL"; a failure sets fail=1.
fail=0
check() {
  if "${@:2}" >/dev/null 2>&1; then echo "  ok    $1"; else
    echo "  FAIL  $1"
    fail=1
  fi
}
