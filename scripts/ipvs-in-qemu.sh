#!/usr/bin/env bash
# The ipvs lab in a qemu guest, on a host whose kernel lacks IP_VS.
#
# A thin wrapper: the VM backend is part of kindlab (kindlab/drivers/vm/, the plugin's
# --ipvs-vm option), and `pytest labs -m ipvs` uses it on its own where the Docker
# host's kernel lacks IP_VS or dummy. This forces it (--ipvs-vm always), also on
# hosts that could run ipvs natively. Extra arguments go to pytest, e.g.
#   scripts/ipvs-in-qemu.sh --vm-memory 10G --kindlab-report reports/ipvs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 -m pytest labs -m ipvs --ipvs-vm always "$@"
