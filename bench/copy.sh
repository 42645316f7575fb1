#!/bin/sh
# bench/copy.sh BUILD DATA [NRECORDS] -- the numbers issue 16 asks for, on a
# store of one table of NRECORDS 64-byte records (default 16000000: about
# 1 GB; BENCH_COPY_N overrides; --quick as the first argument: 200000):
#   - mms copy of the closed store (synced), against `cp -r` + `sync -f` of
#     the closed directory;
#   - mms_copy while a writer process commits small durable transactions:
#     the copy's time, the writer's longest commit (and its longest with no
#     copy running);
#   - LMDB with the same records: mdb_env_copy2 (what mdb_copy does) while a
#     writer commits, and `cp -r` + `sync -f` of the closed environment
#     (when bench/copy_lmdb.c was built: LMDB installed);
#   - mms compact after deleting half the records: the second half (the
#     table's end) and every other one, disk bytes before and after.
# Prints a markdown table (bench/results/copy.md was made from it). Times
# vary by 2-3x from run to run on a shared VM; run it more than once.
set -e
QUICK=0
if [ "$1" = "--quick" ]; then QUICK=1; shift; fi
B=${1:?build dir}; D=${2:?data dir}
if [ $QUICK = 1 ]; then N=${3:-200000}; else N=${3:-${BENCH_COPY_N:-16000000}}; fi
MMS=$B/mms CB=$B/copy_bench CL=$B/copy_lmdb
rm -rf "$D"; mkdir -p "$D"
S=$D/src.mms
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f s", b - a }'; }
disk() { du -sB1 "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }'; }
syncdir() { for f in "$1"/*; do sync -f "$f"; done; }
row() { printf '| %s | %s |\n' "$1" "$2"; }

echo "copy and compaction, $N records of 64 bytes ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
echo
echo "| | |"
echo "|---|---|"
$CB make "$S" "$N"
sync
row "the store" "$(disk "$S") on disk"

t=$(now); cp -r "$S" "$D/cp.mms"; a=$(since "$t"); syncdir "$D/cp.mms"
row "\`cp -r\` of the closed store / then \`sync -f\` of its files" "$a / $(since "$t")"
rm -rf "$D/cp.mms"; sync

t=$(now); $MMS copy "$S" "$D/copy.mms" >/dev/null
row "\`mms copy DIR DEST\` of the closed store (synced)" "$(since "$t")"
rm -rf "$D/copy.mms"; sync

w=$($CB write "$S")
row "the writer alone: small durable commits for 5 s" "${w#alone: }"
c=$($CB copy "$S" "$D/hot.mms")
row "\`mms_copy()\` while the writer commits" "${c#mms_copy: }"
$MMS verify "$D/hot.mms" >/dev/null
rm -rf "$D/hot.mms"; sync

if [ -x "$CL" ]; then
    L=$D/lmdb.env
    $CL make "$L" "$N"
    sync
    row "LMDB, the same records" "$(disk "$L") on disk"
    l=$($CL copy "$L" "$D/lmdb-copy")
    t=$(now); syncdir "$D/lmdb-copy"
    row "LMDB \`mdb_env_copy2\` (mdb_copy) while a writer commits" "${l#mdb_env_copy2: }; then \`sync -f\` $(since "$t")"
    rm -rf "$D/lmdb-copy"
    t=$(now); cp -r "$L" "$D/lmdb-cp"; a=$(since "$t"); syncdir "$D/lmdb-cp"
    row "\`cp -r\` of the closed LMDB environment / then \`sync -f\`" "$a / $(since "$t")"
    rm -rf "$D/lmdb-cp" "$L"; sync
else
    row "LMDB" "not measured: copy_lmdb was not built (no LMDB)"
fi

for how in tail every; do
    cp -r "$S" "$D/del.mms"
    d=$($CB delete "$D/del.mms" $how)
    before=$(disk "$D/del.mms")
    t=$(now); out=$($MMS compact "$D/del.mms" | head -n 1); a=$(since "$t")
    row "$d; then \`mms compact\` ($a)" "${out#"$D/del.mms: "}; on disk $before before, $(disk "$D/del.mms") after"
    $MMS verify "$D/del.mms" >/dev/null
    rm -rf "$D/del.mms"
done
rm -rf "$D"
