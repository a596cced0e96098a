#!/usr/bin/env bash
# Install every Debian package splitxen needs (listed in deps.txt), idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=$(grep -v '^\s*#' deps.txt | tr -s ' \n' ' ')
missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all $(wc -w <<<"$pkgs") packages present"
else
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# fio's headers for the external ioengine come from its Debian source package.
if [ -x mk/fio-src.sh ]; then ./mk/fio-src.sh; fi
