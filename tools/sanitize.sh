#!/bin/bash
# tools/sanitize.sh: every test of rblmux under AddressSanitizer +
# UndefinedBehaviorSanitizer, or the black-box suite under valgrind.
#
#   tools/sanitize.sh [--valgrind] [--junit FILE] [PYTEST ARGS...]
#
# Default: builds $RBLMUX_ASAN_BUILD (default build-asan: -Db_sanitize=
# address,undefined -Db_lundef=false), runs the cmocka unit tests and the
# fuzz corpus replays (meson test --suite unit), then the black-box tests
# (pytest tests/) against the sanitized rblmuxd. Every report is fatal
# (ASAN_OPTIONS detect_leaks=1:abort_on_error=1, UBSAN_OPTIONS
# halt_on_error=1), and a daemon's report that no test noticed still
# counts: the logs of every rblmuxd the tests started are searched for
# sanitizer reports afterwards, leaks at exit included (known ones, each
# with its reason, are in tools/sanitize.lsan.supp and .valgrind.supp).
#
# --valgrind: the black-box tests against the plain build ($RBLMUX_BUILD,
# default build) with every rblmuxd under valgrind memcheck
# (RBLMUX_WRAPPER, tests/harness.py); its logs are searched for errors and
# for memory definitely lost at exit. Slow: give PYTEST ARGS
# (-k ..., a file) to run a part; tests/test_load.py is left out.
#
# --junit FILE: one report for everything (the pytest cases plus one case
# per meson test and one for the log search), for tools/test.sh.
# Ends with "N passed, N failed"; exits non-zero when anything failed.
set -uo pipefail

cd "$(dirname "$0")/.."
PYTHON=/usr/bin/python3
MODE=asan
JUNIT=
PYARGS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--valgrind) MODE=valgrind; shift ;;
	--junit) JUNIT=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) PYARGS+=("$1"); shift ;;
	esac
done

die() {
	echo "sanitize.sh: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

if [ "${CI:-}" = true ]; then
	export TERM=dumb NO_COLOR=1
	COLOR=(--color=no)
else
	COLOR=()
fi

tools/deps.sh >&2 || die "installing dependencies failed"

if [ "$MODE" = asan ]; then
	BUILD=${RBLMUX_ASAN_BUILD:-build-asan}
	if [ ! -f "$BUILD/build.ninja" ]; then
		meson setup "$BUILD" -Db_sanitize=address,undefined -Db_lundef=false >&2 ||
			die "meson setup failed"
	fi
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	# Known leaks at exit, each with the reason it is still there.
	export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tools/sanitize.lsan.supp:print_suppressions=0}
	unset RBLMUX_WRAPPER
else
	BUILD=${RBLMUX_BUILD:-build}
	if ! command -v valgrind >/dev/null; then
		[ "$(id -u)" -eq 0 ] || die "valgrind is missing: apt-get install valgrind"
		env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			valgrind >&2 || die "installing valgrind failed"
	fi
	[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >&2 || die "meson setup failed"
	# %p: one log per process; rblmuxd's stderr stays in its own log.
	VG_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/rblmux-valgrind.XXXXXX")
	export RBLMUX_WRAPPER="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite --suppressions=$PWD/tools/sanitize.valgrind.supp --track-origins=yes --num-callers=30 --log-file=$VG_LOGS/vg.%p.log"
fi
export RBLMUX_BUILD=$BUILD
ninja -C "$BUILD" >&2 || die "build failed"

OUT=$BUILD/sanitize
rm -rf "$OUT"
mkdir -p "$OUT"
unit_rc=0
if [ "$MODE" = asan ]; then
	rm -f "$BUILD/meson-logs/testlog.json"
	meson test -C "$BUILD" --suite unit --print-errorlogs --num-processes 2 \
		--timeout-multiplier 3
	unit_rc=$?
	cp "$BUILD/meson-logs/testlog.json" "$OUT/testlog.json" 2>/dev/null
fi

BASETEMP=$OUT/pytest-tmp
# Under valgrind every answer is some ten times slower: the timing-bound
# load test (tests/test_load.py) cannot meet its bars there.
[ "$MODE" = valgrind ] && PYARGS=(--ignore=tests/test_load.py "${PYARGS[@]}")
# tests/, unless PYTEST ARGS name files or folders of their own.
WHERE=(tests/)
for a in "${PYARGS[@]}"; do
	[ -e "${a%%::*}" ] && WHERE=()
done
"$PYTHON" -m pytest -q -p no:cacheprovider "${COLOR[@]}" --basetemp="$BASETEMP" \
	--junitxml="$OUT/pytest-junit.xml" "${WHERE[@]}" "${PYARGS[@]}"
py_rc=$?

# Reports no test saw: in the daemons' logs (ASan, UBSan, LeakSanitizer
# write to stderr) or valgrind's own logs.
if [ "$MODE" = asan ]; then
	grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' \
		$(find "$BASETEMP" -name 'rblmuxd.log' 2>/dev/null) /dev/null >"$OUT/reports.txt" 2>/dev/null
else
	: >"$OUT/reports.txt"
	for f in "$VG_LOGS"/vg.*.log; do
		[ -f "$f" ] || continue
		# Only rblmuxd's own logs (valgrind follows no children here).
		grep -q 'rblmuxd' "$f" || continue
		# Indirect losses hang off a definite one (suppressed or not).
		if grep -q -E 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$f"; then
			echo "$f" >>"$OUT/reports.txt"
		fi
	done
	cp -r "$VG_LOGS" "$OUT/valgrind" && rm -rf "$VG_LOGS"
fi
nreports=$(wc -l <"$OUT/reports.txt")
if [ "$nreports" -gt 0 ]; then
	echo "sanitize.sh: $nreports daemon log(s) with reports:" >&2
	while read -r f; do
		echo "--- $f" >&2
		grep -m 40 -E -A 12 'ERROR|runtime error|lost:|Invalid|uninitialised' "$f" >&2
	done <"$OUT/reports.txt"
fi

"$PYTHON" - "$OUT/testlog.json" "$OUT/pytest-junit.xml" "$unit_rc" "$py_rc" \
	"$OUT/reports.txt" "$MODE" "$JUNIT" <<'EOF'
import json
import sys
import xml.etree.ElementTree as ET

testlog, junit, unit_rc, py_rc, reports, mode, out = sys.argv[1:8]
unit_rc, py_rc = int(unit_rc), int(py_rc)
cases = []   # (name, ok, skipped, message)
try:
    with open(testlog) as f:
        for line in f:
            if line.strip():
                t = json.loads(line)
                r = t.get("result", "")
                cases.append((f"{mode}-unit-{t.get('name')}", r in ("OK", "EXPECTEDFAIL"),
                              r == "SKIP", r))
except FileNotFoundError:
    pass
try:
    root = ET.parse(junit).getroot()
    for case in root.iter("testcase"):
        bad = case.find("failure") is not None or case.find("error") is not None
        skip = case.find("skipped") is not None
        cases.append((f"{mode}-{case.get('classname')}.{case.get('name')}",
                      not bad and not skip, skip, "failed" if bad else ""))
except (FileNotFoundError, ET.ParseError):
    cases.append((f"{mode}-pytest", False, False, "pytest wrote no report"))
with open(reports) as f:
    logs = [line.strip() for line in f if line.strip()]
cases.append((f"{mode}-daemon-reports", not logs, False, "\n".join(logs)))
if (unit_rc or py_rc) and all(ok or skip for _, ok, skip, _ in cases):
    cases.append((f"{mode}-runners", False, False, f"meson {unit_rc}, pytest {py_rc}"))
passed = sum(ok for _, ok, _, _ in cases)
skipped = sum(skip for _, _, skip, _ in cases)
failed = len(cases) - passed - skipped
if out:
    suite = ET.Element("testsuite", name=f"sanitize-{mode}", tests=str(len(cases)),
                       failures=str(failed), errors="0", skipped=str(skipped))
    for name, ok, skip, msg in cases:
        c = ET.SubElement(suite, "testcase", classname=f"sanitize-{mode}", name=name)
        if skip:
            ET.SubElement(c, "skipped")
        elif not ok:
            ET.SubElement(c, "failure", message=(msg.splitlines() or ["failed"])[0]).text = msg
    ET.ElementTree(suite).write(out, encoding="unicode", xml_declaration=True)
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
EOF
