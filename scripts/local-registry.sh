#!/usr/bin/env bash
# A container registry on this machine for kindlab's live pull test
# (tests/live/test_node_image_pull.py): Debian's docker-registry, on 127.0.0.1 only.
#
#   scripts/local-registry.sh install           install Debian's docker-registry (idempotent);
#                                               its own service is never left running
#   scripts/local-registry.sh serve PORT DIR    run it in the foreground on 127.0.0.1:PORT,
#                                               config and blobs in DIR; stops on SIGTERM
#
# Docker allows plain HTTP to registries in 127.0.0.0/8 without any daemon setting, so
# `docker push/pull 127.0.0.1:PORT/...` works as is. The caller owns the process: the
# live test starts `serve` in a process group of its own and stops it, then removes DIR.
set -euo pipefail

usage() {
  echo "usage: $0 install | serve PORT DIR" >&2
  exit 2
}

install() {
  command -v docker-registry >/dev/null 2>&1 && return 0
  echo "local-registry: installing docker-registry from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
  # The package's own service listens on :5000 of every interface. Where nothing
  # (policy-rc.d, no init) kept it from starting, stop it: kindlab's registry runs on
  # 127.0.0.1 only, from `serve`.
  if [ -x /etc/init.d/docker-registry ] && /etc/init.d/docker-registry status >/dev/null 2>&1; then
    echo "local-registry: stopping the package's own service (it listens on :5000)" >&2
    /etc/init.d/docker-registry stop >/dev/null
  fi
}

serve() {
  local port=$1 dir=$2
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65536 ] || usage
  command -v docker-registry >/dev/null 2>&1 || install
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  exec docker-registry serve "$dir/config.yml"
}

case "${1:-}" in
  install) [ $# -eq 1 ] || usage; install ;;
  serve) [ $# -eq 3 ] || usage; serve "$2" "$3" ;;
  *) usage ;;
esac
