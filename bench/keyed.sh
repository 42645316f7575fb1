#!/bin/sh
# bench/keyed.sh BUILD DATA [N] -- the keyed workloads of issue 13: get by
# key (BENCH_KEYGETS lookups), range scan of BENCH_RANGE_LEN consecutive keys,
# index build, a plain store to the key field and a commit. Each system is
# prepared once (untimed) and then timed; one JSON line per run
# (bench/common.h bench_result). N (records) defaults to 10^7.
# bench/results/index.md was made from its output.
set -e
B=${1:?build dir}; D=${2:?data dir}; N=${3:-${BENCH_N:-10000000}}
mkdir -p "$D"
run() { # system variant workload... (the workloads share one prepared store)
    sys=$1 var=$2; shift 2
    dir="$D/$sys-$var"
    rm -rf "$dir"; mkdir -p "$dir"
    "$B/bench_$sys" prepare "$1" "$N" "$dir" "$var" >/dev/null
    for w in "$@"; do
        "$B/bench_$sys" run "$w" "$N" "$dir" "$var" || true
    done
    rm -rf "$dir"
}
run array default keyget
run array default ixbuild
run mmstore hash keyget
run mmstore ordered keyget range
run lmdb default keyget range
run sqlite pk keyget range
run sqlite secondary keyget range
run mmstore hash ixbuild
run mmstore ordered ixbuild
run sqlite secondary ixbuild
run mmstore none keycommit
run mmstore hash keycommit
run mmstore ordered keycommit
run mmstore ordered-durable keycommit
