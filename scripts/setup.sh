#!/usr/bin/env bash
# npm run setup: the Debian packages iotupd's lab, demo, tests and benchmarks use (apt-get, as
# root), then the npm dependencies (npm ci). This is the one list of Debian packages; .ci/run
# calls this script.
#   iproute2, nftables                              the network lab (namespaces, bridge, impairments)
#   gcc, libc6-dev, pkg-config                      the native addon and the C interop peers
#   python3, make, g++                              node-gyp, which builds better-sqlite3 (SQLite)
#   liblibrecast-dev, liblcrq-dev                   C peers for the interop tests
#   uftp, udpcast                                   peers measured by npm run bench:transfer
#   chromium                                        the browser the browser tests drive
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(iproute2 nftables gcc libc6-dev pkg-config python3 make g++ liblibrecast-dev liblcrq-dev uftp udpcast chromium)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: Debian packages missing (${missing[*]}); run npm run setup as root, or apt-get install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: Debian packages installed: ${missing[*]}"
else
  echo "setup: Debian packages already installed"
fi
npm ci --no-audit --no-fund
