#!/bin/sh
# bench/keyed.sh BUILD DATA [N] -- the keyed workloads of issue 13: get by
# key (BENCH_KEYGETS lookups), range scan of BENCH_RANGE_LEN consecutive keys,
# index build, a plain store to the key field and a commit. Each system is
# prepared once (untimed) and then timed; one JSON line per run
# (bench/common.h bench_result). N (records) defaults to 10^7. Gets and
# ranges run cold (a fresh process, nothing of the store touched yet) and,
# for mmstore and LMDB, warm as well (every page touched first, untimed:
# BENCH_WARM); the in-memory hash table is always warm (it built itself).
# keybatch: the keyget keys 16 at a time (mms_index_find_many). Variant
# hash-cover (and the in-memory table's cover): the index covers b, and a
# get reads b from the slot (mms_index_find_covered), not the record;
# ordered-cover: the ordered index covers b, and a range reads b from the
# leaf entries (mms_cursor_covered), as LMDB's cursor reads its leaves.
# bench/results/index.md was made from its output.
set -e
B=${1:?build dir}; D=${2:?data dir}; N=${3:-${BENCH_N:-10000000}}
mkdir -p "$D"
run() { # system variant workload... (the workloads share one prepared store)
    sys=$1 var=$2; shift 2
    dir="$D/$sys-$var"
    rm -rf "$dir"; mkdir -p "$dir"
    "$B/bench_$sys" prepare "$1" "$N" "$dir" "$var" >/dev/null
    for w in "$@"; do # WORKLOAD:warm: the same, after touching every page
        case $w in
        *:warm) BENCH_WARM=1 "$B/bench_$sys" run "${w%:warm}" "$N" "$dir" "$var" || true ;;
        *) "$B/bench_$sys" run "$w" "$N" "$dir" "$var" || true ;;
        esac
    done
    rm -rf "$dir"
}
run array default keyget
run array cover keyget
run array default ixbuild
run mmstore hash keyget keyget:warm keybatch keybatch:warm
run mmstore hash-cover keyget keyget:warm
run mmstore ordered keyget range keyget:warm range:warm
run mmstore ordered-cover range range:warm
run lmdb default keyget range keyget:warm range:warm
run sqlite pk keyget range
run sqlite secondary keyget range
run mmstore hash ixbuild
run mmstore ordered ixbuild
run sqlite secondary ixbuild
run mmstore none keycommit
run mmstore hash keycommit
run mmstore ordered keycommit
run mmstore ordered-durable keycommit
