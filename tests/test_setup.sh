#!/bin/sh
# test_setup.sh SRC -- the set-up that `make demo`, `make test`, `make check`
# and .ci/run share (scripts/setup.sh), and the quiet make wrapper.
#
#  - everything installed: silent, exit 0, no apt-get at all, and quick;
#  - a package missing, not root: exit 1 and the one command to run;
#  - a package missing, root: apt-get update, then install of exactly the
#    missing packages;
#  - the Makefile's demo, test and check targets and .ci/run use it; .ci/run
#    ends with make test and -DMMS_WERROR=ON;
#  - make prints no "Entering directory" lines; make check builds no
#    sanitizer build.
# dpkg-query, id and apt-get are replaced by fakes on PATH.
set -eu
src=$(cd "${1:?usage: test_setup.sh SRC}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_setup: $*" >&2; exit 1; }

mkdir "$tmp/bin"
# dpkg-query: every package asked for is installed, except those in $MISSING.
cat >"$tmp/bin/dpkg-query" <<'FAKE'
#!/bin/sh
for a in "$@"; do
    case $a in -*) continue ;; esac
    case " ${MISSING:-} " in *" $a "*) continue ;; esac
    printf '%s install ok installed\n' "$a"
done
FAKE
cat >"$tmp/bin/id" <<'FAKE'
#!/bin/sh
echo "${FAKE_UID:-1000}"
FAKE
cat >"$tmp/bin/apt-get" <<'FAKE'
#!/bin/sh
echo "apt-get $*" >>"$APT_LOG"
FAKE
chmod +x "$tmp/bin/"*
export PATH="$tmp/bin:$PATH" APT_LOG="$tmp/apt.log"

# Everything there: silent and quick, whoever runs it.
for uid in 0 1000; do
    out=$(FAKE_UID=$uid MISSING= "$src/scripts/setup.sh" test 2>&1) || fail "exit $? with nothing missing"
    [ -z "$out" ] || fail "output with nothing missing: $out"
done
[ ! -e "$APT_LOG" ] || fail "apt-get ran with nothing missing: $(cat "$APT_LOG")"

# Missing, not root: the command to run, exit 1.
if out=$(FAKE_UID=1000 MISSING="unicode-data python3-pandas" "$src/scripts/setup.sh" test 2>&1); then
    fail "exit 0 with packages missing"
fi
echo "$out" | grep -q "sudo apt-get install --no-install-recommends unicode-data python3-pandas$" ||
    fail "no command to run in: $out"
[ ! -e "$APT_LOG" ] || fail "apt-get ran without root"
# The build set does not need them.
FAKE_UID=1000 MISSING="unicode-data python3-pandas" "$src/scripts/setup.sh" build ||
    fail "build needs unicode-data"

# Missing, root: update, then install exactly those.
FAKE_UID=0 MISSING="cmake python3-numpy" "$src/scripts/setup.sh" test >/dev/null ||
    fail "exit $? as root"
grep -q "^apt-get update" "$APT_LOG" || fail "no apt-get update: $(cat "$APT_LOG")"
grep -q "^apt-get install .* cmake python3-numpy$" "$APT_LOG" ||
    fail "not installed: $(cat "$APT_LOG")"

# Who uses it.
for t in demo test check; do
    (cd "$src" && make -n "$t" BUILD="$tmp/b" ASAN_BUILD="$tmp/a" 2>/dev/null) | grep -q "scripts/setup.sh" ||
        fail "make $t does not run scripts/setup.sh"
done
grep -q "^scripts/setup.sh" "$src/.ci/run" || fail ".ci/run does not run scripts/setup.sh"
[ "$(grep -v '^ *#' "$src/.ci/run" | grep -v '^ *$' | tail -1)" = 'make test CMAKE_FLAGS="-DMMS_WERROR=ON"' ] ||
    fail ".ci/run does not end with make test CMAKE_FLAGS=\"-DMMS_WERROR=ON\""

# Quiet: no Entering/Leaving directory; check is one build, test two.
out=$( (cd "$src" && make -n test BUILD="$tmp/b" ASAN_BUILD="$tmp/a" 2>&1))
echo "$out" | grep -q "Entering directory" && fail "make test prints Entering directory"
echo "$out" | grep -q "MMS_SANITIZE=ON" || fail "make test has no sanitizer build"
out=$( (cd "$src" && make -n check BUILD="$tmp/b" ASAN_BUILD="$tmp/a" 2>&1))
echo "$out" | grep -q "Entering directory" && fail "make check prints Entering directory"
echo "$out" | grep -q "MMS_SANITIZE" && fail "make check builds with sanitizers"
echo "setup ok"
