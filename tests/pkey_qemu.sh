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
# MMS_GUARD=1 (the key guard where the guest has pku), as ctest runs them.
# Then guard_cost measures a small transaction with each guard, A/B/C
# interleaved (TCG timings are only relative; GUARD_COST="MB ROUNDS TXNS",
# default "64 5 100"; three stores of MB must fit the guest's 600 MB
# tmpfs). Prints one line per test and one for guard_cost:
#   QEMU-RESULT <test> <exit status>
# and exits non-zero if the guest had no pku or any test failed.
# Cases that need more than the guest's 600 MB of tmpfs are skipped
# (QEMU_SKIP overrides the list; tests/test.h MMS_TEST_SKIP).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build}
kernel=${KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
skip=${QEMU_SKIP:-trim_renews_empty_spans}
tests=${*:-test_guard test_txn test_basic test_index test_table_migrate test_backlog}
work=$(mktemp -d /tmp/pkey_qemu.XXXXXX)
trap 'rm -rf "$work"' EXIT

command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64" >&2; exit 2; }
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "no kernel in /boot (linux-image-amd64)" >&2; exit 2; }
[ -x "$build/tests/test_guard" ] || { echo "build first: make build" >&2; exit 2; }
bb=$(command -v busybox) || { echo "no busybox" >&2; exit 2; }

root=$work/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/tmp" "$root/dev" "$root/t"
cp "$bb" "$root/bin/busybox"
for a in sh mount poweroff grep cat rm mkdir echo timeout head sleep ls uname; do
    ln -s busybox "$root/bin/$a"
done
cc -O2 -I"$here/include" "$here/tests/pkey_qemu/guard_cost.c" "$build/libmmstore.a" \
    -lpthread -o "$root/t/guard_cost"
cp "$build/mms" "$root/bin/mms"
# GNU cp: test_crash copies stores with --sparse=always, which busybox lacks;
# and dash as /bin/sh, since busybox's shell runs its own applets first.
cp "$(command -v cp)" "$root/bin/cp"
rm -f "$root/bin/sh" && cp "$(command -v dash)" "$root/bin/sh"
for t in $tests; do cp "$build/tests/$t" "$root/t/"; done
# The shared libraries they need, at the paths the loader looks for.
for f in "$root/bin/busybox" "$root/bin/mms" "$root/bin/cp" "$root/bin/sh" "$root"/t/*; do
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
echo "QEMU-KERNEL \$(uname -r)"
if grep -qw pku /proc/cpuinfo; then echo "QEMU-PKU yes"; else echo "QEMU-PKU no"; fi
for t in $tests; do
    mkdir -p /tmp/t
    MMS_GUARD=1 MMS_TEST_TMP=/tmp/t MMS_TOOL=/bin/mms MMS_TEST_SKIP="$skip" timeout 1200 /t/\$t > /tmp/\$t.log 2>&1
    rc=\$?
    echo "QEMU-RESULT \$t \$rc"
    [ \$rc = 0 ] || cat /tmp/\$t.log
    grep -h "protection keys" /tmp/\$t.log || true
    rm -rf /tmp/t
done
mkdir -p /tmp/c && /t/guard_cost /tmp/c ${GUARD_COST:-64 5 100}
echo "QEMU-RESULT guard_cost \$?"
echo QEMU-DONE
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

echo "kernel $kernel; tests: $tests" >&2
timeout "${QEMU_TIMEOUT:-3600}" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1G -nographic \
    -no-reboot -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init" | tee "$work/log" | grep --line-buffered -E "^QEMU-|guard_cost|^(pkey|mprotect|none|asked) |protection keys|\.c:[0-9]+:"
grep -q "^QEMU-PKU yes" "$work/log" || { echo "the guest has no pku" >&2; exit 1; }
grep -q "^QEMU-DONE" "$work/log" || { echo "the guest did not finish" >&2; exit 1; }
! grep -E "^QEMU-RESULT [^ ]+ [1-9]" "$work/log" >/dev/null
