#!/bin/sh
# pkey_qemu.sh -- run the protection-key guard for real, on a CPU that has
# `pku`, by emulation: QEMU TCG with -cpu max, a Debian kernel, and an
# initramfs holding busybox, the test programs of build/ and a tiny /init.
# Not part of `make test` (it needs qemu and a kernel, and minutes).
#
#   apt-get install -y qemu-system-x86 linux-image-amd64 busybox cpio
#   make build && tests/pkey_qemu.sh [TEST ...]
#
# TESTS defaults to the guard's own test and the programs whose paths the
# key guard changes most (transactions, growth, indexes at commit, table
# migration, two handles following each other). Each runs with
# MMS_GUARD=1 (the key guard where the guest has pku), as ctest runs them,
# with its stores on the guest's 600 MB tmpfs (MMS_TEST_TMP, MMS_TEST_SHM:
# the guest has no /dev/shm). First guard_kind checks that a handle opened
# so gets the key guard, so that a pass is the key's. Then guard_cost
# measures a small transaction with each guard, A/B/C interleaved (TCG
# timings are only relative; GUARD_COST="MB ROUNDS TXNS", default
# "64 5 100", 0: not run; three stores of MB must fit the tmpfs).
# Prints two lines per program:
#   QEMU-RESULT <test> <exit status>
#   QEMU-CASES <test> <n> run, <m> skipped
# and exits non-zero if the guest had no pku, the handles no key, or any
# test failed. QEMU_LOG=FILE keeps the guest's whole console (a failing
# test's output is in it); QEMU_TEST_TIMEOUT is each test's limit in
# seconds (default 1200); QEMU_MEM the guest's memory (default 2G: the
# tmpfs's 600 MB are memory, and test_recover's large-journal case holds
# 288 MiB of private pages besides; with 1G the guest's OOM killer ended it).
# Cases that need more than the guest's 600 MB of tmpfs are skipped
# (QEMU_SKIP overrides the list; tests/test.h MMS_TEST_SKIP).
# guard_kind also prints QEMU-DIRTY (scan: the PAGEMAP_SCAN ioctl; pagemap:
# /proc/self/pagemap) and QEMU-WP (1: held pages write-protected through
# userfaultfd). Debian 12's kernel (6.1) has no PAGEMAP_SCAN (Linux >= 6.7):
# there the library finds dirty pages through /proc/self/pagemap, so the
# scan and its write protection of held pages do not run under a key. For
# them, boot a bookworm-backports kernel (no apt change; its serial
# console, tmpfs, userfaultfd and pkeys are built in, no modules needed):
#   curl -O http://deb.debian.org/debian/pool/main/l/linux/linux-image-6.12.95+deb12-amd64-unsigned_6.12.95-1~bpo12+1_amd64.deb
#   dpkg-deb -x linux-image-*.deb /tmp/k
#   KERNEL=/tmp/k/boot/vmlinuz-6.12.95+deb12-amd64 tests/pkey_qemu.sh
# (the newest linux-image-6.*-amd64-unsigned in the suite's
# main/binary-amd64/Packages.xz), and see "QEMU-DIRTY scan", "QEMU-WP 1".
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build}
kernel=${KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
skip=${QEMU_SKIP:-trim_renews_empty_spans}
tests=${*:-test_guard test_txn test_basic test_index test_table_migrate test_backlog}
work=$(mktemp -d /tmp/pkey_qemu.XXXXXX)
trap 'rm -rf "$work"' EXIT
log=${QEMU_LOG:-$work/log}

command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64" >&2; exit 2; }
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "no kernel in /boot (linux-image-amd64)" >&2; exit 2; }
[ -x "$build/tests/test_guard" ] || { echo "build first: make build" >&2; exit 2; }
bb=$(command -v busybox) || { echo "no busybox" >&2; exit 2; }

root=$work/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/tmp" "$root/dev" "$root/t"
cp "$bb" "$root/bin/busybox"
for a in sh mount poweroff grep cat rm mkdir echo timeout head tail sleep ls uname \
    cmp md5sum xargs wc; do
    ln -s busybox "$root/bin/$a"
done
for p in guard_cost guard_kind; do
    cc -O2 -I"$here/include" "$here/tests/pkey_qemu/$p.c" "$build/libmmstore.a" \
        -lpthread -o "$root/t/$p"
done
cp "$build/mms" "$root/bin/mms"
# The examples, where test_fixed and test_examples look for them: beside
# MMS_TOOL.
for e in "$here"/examples/*.c; do
    e=$(basename "$e" .c)
    [ ! -x "$build/$e" ] || cp "$build/$e" "$root/bin/$e"
done
# GNU cp, du and sed, where tests use what busybox lacks: test_crash copies
# stores with cp --sparse=always, test_compact counts with du -B1, test_dump
# edits dumps with sed's \x00; and dash as /bin/sh, since busybox's shell
# runs its own applets first.
for g in cp du sed; do cp "$(command -v $g)" "$root/bin/$g"; done
rm -f "$root/bin/sh" && cp "$(command -v dash)" "$root/bin/sh"
for t in $tests; do cp "$build/tests/$t" "$root/t/"; done
# What some tests read from the host, where they look for it: test_examples
# its own source, the header and the README, test_csv tests/data (by their
# paths here); test_dump and test_ucd the Unicode data (37 MB: only when
# they run).
for f in tests/test_examples.c include/mmstore.h README.md tests/data; do
    mkdir -p "$root$here/$(dirname "$f")" && cp -r "$here/$f" "$root$here/$f"
done
case " $tests " in *" test_dump "* | *" test_ucd "*)
    [ ! -d /usr/share/unicode ] || { mkdir -p "$root/usr/share" && cp -rL /usr/share/unicode "$root/usr/share/"; } ;;
esac
# The shared libraries they need, at the paths the loader looks for.
for f in "$root"/bin/* "$root"/t/*; do
    ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true
done | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

cat > "$root/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o size=600m tmp /tmp
echo
echo "QEMU-KERNEL \$(uname -r)"
if grep -qw pku /proc/cpuinfo; then echo "QEMU-PKU yes"; else echo "QEMU-PKU no"; fi
# The environment of every test: the key guard where there is pku (what
# guard_kind checks), stores on the tmpfs (no /dev/shm here: MMS_TEST_SHM
# names test.h's tmpfs directory, inside the one the test's run clears).
# A limit of open files as a login's, not the 1024 the kernel gives init
# (test_multi's hog opens hundreds of handles, each with its files).
ulimit -n 65536
export MMS_GUARD=1 MMS_TEST_TMP=/tmp/t MMS_TEST_SHM=/tmp/t/shm MMS_TOOL=/bin/mms MMS_TEST_SKIP="$skip"
mkdir -p /tmp/t && /t/guard_kind /tmp/t/kind
echo "QEMU-RESULT guard_kind \$?"
rm -rf /tmp/t
for t in $tests; do
    mkdir -p /tmp/t
    timeout ${QEMU_TEST_TIMEOUT:-1200} /t/\$t > /tmp/\$t.log 2>&1
    rc=\$?
    echo "QEMU-RESULT \$t \$rc"
    echo "QEMU-CASES \$t \$(grep -c '^-- ' /tmp/\$t.log) run, \$(grep -c '^-- .*skipped' /tmp/\$t.log) skipped"
    [ \$rc = 0 ] || cat /tmp/\$t.log
    grep -h "protection keys" /tmp/\$t.log || true
    rm -rf /tmp/t
done
if [ "${GUARD_COST:-}" != 0 ]; then
    mkdir -p /tmp/c && /t/guard_cost /tmp/c ${GUARD_COST:-64 5 100}
    echo "QEMU-RESULT guard_cost \$?"
fi
echo QEMU-DONE
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

echo "kernel $kernel; tests: $tests" >&2
timeout "${QEMU_TIMEOUT:-3600}" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "${QEMU_MEM:-2G}" -nographic \
    -no-reboot -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init" | tee "$log" | grep --line-buffered -E "^QEMU-|guard_cost|^(pkey|mprotect|none|asked) |protection keys|\.[ch]:[0-9]+:|^  detail:"
grep -q "^QEMU-PKU yes" "$log" || { echo "the guest has no pku" >&2; exit 1; }
grep -q "^QEMU-GUARD pkey" "$log" || { echo "the tests' handles had no key guard" >&2; exit 1; }
grep -q "^QEMU-DONE" "$log" || { echo "the guest did not finish" >&2; exit 1; }
! grep -E "^QEMU-RESULT [^ ]+ [1-9]" "$log" >/dev/null
