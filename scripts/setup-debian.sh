#!/usr/bin/env bash
# Installs the Debian packages iotupd's lab, demo, tests and benchmarks use (run as root):
#   iproute2, nftables   the network lab (namespaces, bridge, loss/duplicate impairments)
#   gcc, libc6-dev, liblibrecast-dev, liblcrq-dev   C peers for the interop tests
#   uftp, udpcast        peers measured by npm run bench:transfer
#   chromium             the dashboard's browser test (driven by playwright-core, never a downloaded browser)
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (apt-get); without root, install these yourself:" >&2
  echo "  iproute2 nftables gcc libc6-dev pkg-config liblibrecast-dev liblcrq-dev uftp udpcast chromium" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  iproute2 nftables gcc libc6-dev pkg-config liblibrecast-dev liblcrq-dev uftp udpcast chromium >/dev/null
echo "setup: Debian packages installed"
