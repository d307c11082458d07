#!/usr/bin/env bash
# Install what kindlab needs on a fresh Debian machine, from the project's own files:
# the host tools the offline node image builder uses, Debian's docker-registry for the
# live pull test, then kindlab with its test extra.
# Idempotent. Docker itself is not started here (see README: Docker).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v git >/dev/null 2>&1 || need+=(git)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
# pause is linked statically: it needs libc's static archive
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/libc.a ] || need+=(libc6-dev)
# ipvs mode where the host kernel lacks IP_VS: a qemu guest (kindlab/drivers/vm), whose
# disks are ext4 images made with mkfs.ext4 -d and booted through qcow2 overlays
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# the live pull test's registry on 127.0.0.1 (its own script: it never leaves the
# package's service, which listens on every interface, running)
bash scripts/local-registry.sh install
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "setup: Go (1.24 or later) is needed to build kind and the node image; install it" >&2
  exit 2
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
echo "setup: done" >&2
