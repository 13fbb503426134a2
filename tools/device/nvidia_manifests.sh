#!/usr/bin/env bash
# tools/device/nvidia_manifests.sh DIR
#
# The device kit's last try at NVIDIA's Vulkan (and EGL) driver (run.sh, "The adapter"): where the machine
# has the driver's libraries but no manifest that the loaders can use (a container set up for CUDA only
# may mount the libraries without /usr/share/vulkan/icd.d/nvidia_icd.json; or a manifest names the library
# by a bare name that the dynamic linker does not find, outside ld.so.conf's folders), this writes
# manifests naming the libraries by their full paths into DIR and prints, one per line:
#   vk PATH       a Vulkan driver manifest, for VK_DRIVER_FILES
#   egl PATH      a glvnd EGL vendor manifest, for __EGL_VENDOR_LIBRARY_FILENAMES
#   libdir DIR    the driver's folder, for LD_LIBRARY_PATH (the driver opens its other libraries by name)
# and nothing when it finds no library (exit 1). The Vulkan driver is libEGL_nvidia.so.0 where it exists
# (no X libraries needed) or libGLX_nvidia.so.0, as NVIDIA's own manifests name them.
# KIT_NVIDIA_LIB_DIRS (space-separated) replaces the folders searched, and then ldconfig is not asked
# (tests).
set -uo pipefail
out=${1:?usage: tools/device/nvidia_manifests.sh DIR}

find_lib() { # NAME -> the first full path of a library of that name
  local d
  for d in ${KIT_NVIDIA_LIB_DIRS:-/usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/$(uname -m)-linux-gnu /usr/lib64 /lib/$(uname -m)-linux-gnu /usr/lib}; do
    if [ -e "$d/$1" ]; then
      echo "$d/$1"
      return 0
    fi
  done
  [ -n "${KIT_NVIDIA_LIB_DIRS:-}" ] && return 1
  ldconfig -p 2>/dev/null | awk -v name="$1" '$1 == name { print $NF; found = 1; exit } END { exit !found }'
}

egl=$(find_lib libEGL_nvidia.so.0)
glx=$(find_lib libGLX_nvidia.so.0)
vulkan=${egl:-$glx}
[ -n "$vulkan" ] || exit 1
mkdir -p "$out" || exit 1
printf '{\n  "file_format_version": "1.0.1",\n  "ICD": { "library_path": "%s", "api_version": "1.3.0" }\n}\n' \
  "$vulkan" >"$out/nvidia_icd.json"
echo "vk $out/nvidia_icd.json"
if [ -n "$egl" ]; then
  printf '{\n  "file_format_version": "1.0.0",\n  "ICD": { "library_path": "%s" }\n}\n' "$egl" >"$out/10_nvidia.json"
  echo "egl $out/10_nvidia.json"
fi
echo "libdir $(dirname "$vulkan")"
