#!/usr/bin/env bash
# make run: start the development grid (explorer + N nodes) on this machine.
# NODES=2 make run for two nodes; ZOS_DEV_ROOT to keep the grid elsewhere.
set -euo pipefail
bin=${1:-bin}
if [ "$(id -u)" != 0 ]; then
	echo "make run starts namespaces, loop disks and daemons: run it as root" >&2
	exit 1
fi
exec "$bin/zosdev" up --nodes "${NODES:-1}" --root "${ZOS_DEV_ROOT:-/var/lib/zos-dev}" --bin "$(cd "$bin" && pwd)"
