#!/bin/bash
# tools/test.sh: run every test of rblmux (the README's test command).
#
# Installs what is missing (tools/deps.sh), builds (meson setup if needed,
# ninja), runs the cmocka unit tests (meson test --suite unit), then the
# black-box tests (pytest tests/) against the built rblmuxd. Ends with one
# line "N passed, N failed[, N skipped]" and exits non-zero when anything
# failed or nothing ran.
#
# Environment: RBLMUX_BUILD (default build) is the meson build directory;
# CI=true means no terminal (plain output). Extra arguments go to pytest.
# Under CI, or with RBLMUX_HARDENING=1, also a bounded libFuzzer run of every
# fuzz target (tools/fuzz.sh, RBLMUX_FUZZ_SECONDS each, default 30) and the
# whole suite again under ASan+UBSan (tools/sanitize.sh); RBLMUX_HARDENING=0
# turns them off. Their results are counted in the same line.
set -uo pipefail

cd "$(dirname "$0")/.."
BUILD=${RBLMUX_BUILD:-build}
export RBLMUX_BUILD=$BUILD
PYTHON=/usr/bin/python3

if [ "${CI:-}" = true ]; then
	export TERM=dumb NO_COLOR=1
	COLOR=(--color=no)
	NINJA_STATUS="[%f/%t] "
	export NINJA_STATUS
else
	COLOR=()
fi

fail() {
	echo "test.sh: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

tools/deps.sh || fail "installing dependencies failed"
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" || fail "meson setup failed"
fi
ninja -C "$BUILD" || fail "build failed"

LOGS=$BUILD/meson-logs
rm -f "$LOGS/testlog.json"
meson test -C "$BUILD" --suite unit --print-errorlogs
unit_rc=$?

JUNIT=$BUILD/pytest-junit.xml
rm -f "$JUNIT"
"$PYTHON" -m pytest -q -p no:cacheprovider "${COLOR[@]}" tests/ --junitxml="$JUNIT" "$@"
py_rc=$?

EXTRA_JUNIT=()
if [ "${RBLMUX_HARDENING:-}" = 1 ] || { [ "${CI:-}" = true ] && [ "${RBLMUX_HARDENING:-}" != 0 ]; }; then
	EXTRA_JUNIT=("$BUILD/fuzz-junit.xml" "$BUILD/asan-junit.xml")
	rm -f "${EXTRA_JUNIT[@]}"
	tools/fuzz.sh -t "${RBLMUX_FUZZ_SECONDS:-30}" --junit "$BUILD/fuzz-junit.xml"
	tools/sanitize.sh --junit "$BUILD/asan-junit.xml"
fi

# Sum both: meson's testlog.json (one JSON object per test) and pytest's junit.
"$PYTHON" - "$LOGS/testlog.json" "$JUNIT" "$unit_rc" "$py_rc" "${EXTRA_JUNIT[@]}" <<'EOF'
import json
import sys
import xml.etree.ElementTree as ET

testlog, junit, unit_rc, py_rc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
passed = failed = skipped = 0
try:
    with open(testlog) as f:
        for line in f:
            if not line.strip():
                continue
            result = json.loads(line).get("result", "")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
except FileNotFoundError:
    pass
try:
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        tests = int(s.get("tests", 0))
        bad = int(s.get("failures", 0)) + int(s.get("errors", 0))
        skip = int(s.get("skipped", 0))
        passed += tests - bad - skip
        failed += bad
        skipped += skip
except (FileNotFoundError, ET.ParseError):
    failed += 1   # pytest did not even write its report
# The hardening runs' reports (tools/fuzz.sh, tools/sanitize.sh).
for extra in sys.argv[5:]:
    try:
        s = ET.parse(extra).getroot()
        tests = int(s.get("tests", 0))
        bad = int(s.get("failures", 0)) + int(s.get("errors", 0))
        skip = int(s.get("skipped", 0))
        passed += tests - bad - skip
        failed += bad
        skipped += skip
    except (FileNotFoundError, ET.ParseError):
        failed += 1   # the run died before writing its report
# A runner that failed without a failed test (a crash, a collection error
# counted nowhere) still fails the run.
if failed == 0 and (py_rc not in (0,) or unit_rc not in (0,)):
    failed = 1
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
EOF
