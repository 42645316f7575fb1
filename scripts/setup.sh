#!/bin/sh
# setup.sh -- install what building, the demo and the tests need on a fresh
# Debian 12 machine; `make demo`, `make test`, `make check` and .ci/run all
# run it first.
#
#   scripts/setup.sh [build|demo|test]     (default: test, which is all)
#
# It asks dpkg which packages are missing (about 50 ms when none is) and,
# only then: as root, runs apt-get update and apt-get install; otherwise
# prints the one command to run and fails. MMS_SETUP=0 skips it all (for
# machines set up by other means); on a system without dpkg it only checks
# for the commands and says what it could not find.
set -eu

what=${1:-test}
# build: compilers (gcc, g++ for test_cxx, make), cmake, pkg-config.
build="build-essential cmake pkg-config"
# demo: the Unicode Character Database that `make demo` parses.
demo="$build unicode-data"
# test: tests/test_ucd parses unicode-data too; tests/test_csv checks JSON
# lines with python3's json module; the Python binding (python/) needs the
# headers, numpy, pytest and pandas, and its mmstore_dask module dask;
# tests/test_fuse_sync mounts a FUSE file system (fuse3 for fusermount3,
# libfuse3-dev for the library, found through pkg-config).
test="$demo python3 python3-dev python3-numpy python3-pytest python3-pandas python3-dask fuse3 libfuse3-dev"
case $what in
build) want=$build ;;
demo) want=$demo ;;
test | all) want=$test ;;
*) echo "usage: scripts/setup.sh [build|demo|test]" >&2; exit 2 ;;
esac

if [ "${MMS_SETUP:-1}" = 0 ]; then
    exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    missing=""
    for c in cc c++ make cmake pkg-config python3; do
        command -v $c >/dev/null 2>&1 || missing="$missing $c"
    done
    if [ -n "$missing" ]; then
        echo "setup: not a Debian system, and these commands are missing:$missing" >&2
        echo "setup: install them (and Unicode's UnicodeData.txt for make demo; UCD_DIR=... points at it)" >&2
        exit 1
    fi
    exit 0
fi

# One dpkg-query for all of them (a package dpkg never heard of is not
# listed at all).
installed=" $(dpkg-query -W -f='${Package} ${Status}\n' $want 2>/dev/null |
              awk '/ installed$/ { printf "%s ", $1 }')"
missing=""
for p in $want; do
    case $installed in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
missing=${missing# }
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
    echo "setup: installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends $missing >/dev/null
    echo "setup: installed $missing"
else
    echo "setup: missing Debian packages: $missing" >&2
    echo "setup: run this, then try again:" >&2
    echo "    sudo apt-get install --no-install-recommends $missing" >&2
    exit 1
fi
