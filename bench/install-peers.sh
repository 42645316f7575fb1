#!/bin/sh
# Install what `make bench` needs from Debian, if it is missing: the peers'
# development packages, gnuplot for the plots, python3 for the driver.
set -eu
need=""
for p in liblmdb-dev libsqlite3-dev libpmemobj-dev libboost-dev gnuplot-nox python3; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
[ -z "$need" ] && exit 0
echo "make bench: installing$need"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $need
