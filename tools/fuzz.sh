#!/bin/bash
# tools/fuzz.sh: build rblmux's libFuzzer targets and run them.
#
#   tools/fuzz.sh [-t SECONDS] [--replay] [--merge] [--junit FILE] [TARGET...]
#
# Targets: query (zones/fuzz_query.c: query parser + answer writer),
# listans (zones/fuzz_listans.c: upstream answers, cache encoding),
# ptrclass (zones/fuzz_ptrclass.c: PTR classifier), config
# (resolver/fuzz_config.c: the INI parser); default: all four.
#
# Builds $RBLMUX_FUZZ_BUILD (default build-fuzz) with clang, -Dfuzz=true and
# ASan+UBSan (installs clang with apt-get when it is missing and we are
# root), then for each target:
#   --replay     runs the seed corpus tests/fuzz/TARGET/ and the crash
#                regressions tests/fuzz/regressions/TARGET/ once;
#   otherwise    replays them, then fuzzes for SECONDS (default 60), new
#                inputs going to BUILD/corpus/TARGET/ (outside the repo);
#   --merge      afterwards adds the inputs that reach new code to the
#                committed corpus tests/fuzz/TARGET/ (libFuzzer -merge=1).
# A crash leaves its input in BUILD/artifacts/TARGET/; fix the bug, then copy
# the input to tests/fuzz/regressions/TARGET/ so every build replays it.
# --junit FILE writes one test case per target and phase (for tools/test.sh).
# Ends with "N passed, N failed"; exits non-zero when a target failed.
set -uo pipefail

cd "$(dirname "$0")/.."
BUILD=${RBLMUX_FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=60
REPLAY_ONLY=no
MERGE=no
JUNIT=
TARGETS=()
ALL=(query listans ptrclass config)

while [ $# -gt 0 ]; do
	case "$1" in
	-t) SECONDS_EACH=$2; shift 2 ;;
	--replay) REPLAY_ONLY=yes; shift ;;
	--merge) MERGE=yes; shift ;;
	--junit) JUNIT=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	query|listans|ptrclass|config) TARGETS+=("$1"); shift ;;
	*) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
case "$SECONDS_EACH" in
''|*[!0-9]*) echo "fuzz.sh: -t takes whole seconds" >&2; exit 2 ;;
esac

die() {
	echo "fuzz.sh: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

# clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev).
if ! command -v clang >/dev/null || ! clang -fsanitize=fuzzer -x c - -o /dev/null \
	<<<'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' 2>/dev/null; then
	if [ "$(id -u)" -ne 0 ]; then
		die "clang with libFuzzer is missing: apt-get install clang libclang-rt-14-dev"
	fi
	env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		clang libclang-rt-14-dev >&2 || die "installing clang failed"
fi

if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debugoptimized >&2 || die "meson setup failed"
fi
exe() {
	case "$1" in
	config) echo "$BUILD/resolver/fuzz_$1" ;;
	*) echo "$BUILD/zones/fuzz_$1" ;;
	esac
}
NINJA_TARGETS=()
for t in "${TARGETS[@]}"; do
	NINJA_TARGETS+=("$(exe "$t" | sed "s|^$BUILD/||")")
done
ninja -C "$BUILD" "${NINJA_TARGETS[@]}" >&2 || die "build failed"

# Every report is a crash: leaks, UBSan findings and failed checks alike.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
CASES=()
record() { # name ok|fail seconds message
	if [ "$2" = ok ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
	CASES+=("$1|$2|$3|$4")
}

count_files() {
	find "$1" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l
}

for t in "${TARGETS[@]}"; do
	bin=$(exe "$t")
	seeds=tests/fuzz/$t
	regress=tests/fuzz/regressions/$t
	corpus=$BUILD/corpus/$t
	artifacts=$BUILD/artifacts/$t/
	log=$BUILD/fuzz-$t.log
	mkdir -p "$corpus" "$artifacts" "$regress"

	start=$(date +%s)
	if "$bin" -runs=0 -artifact_prefix="$artifacts" "$seeds" "$regress" >"$log.replay" 2>&1; then
		record "fuzz-$t-replay" ok $(($(date +%s) - start)) ""
		echo "fuzz $t: replayed $(count_files "$seeds") seeds and $(count_files "$regress") regressions"
	else
		record "fuzz-$t-replay" fail $(($(date +%s) - start)) "$(tail -30 "$log.replay")"
		echo "fuzz $t: REPLAY FAILED (log $log.replay)"
		tail -30 "$log.replay" >&2
		continue
	fi
	[ "$REPLAY_ONLY" = yes ] && continue

	start=$(date +%s)
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$artifacts" \
		"$corpus" "$seeds" "$regress" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	if [ $rc -eq 0 ]; then
		record "fuzz-$t-run" ok "$took" ""
		echo "fuzz $t: ${took}s, ${runs:-?} runs, new corpus $(count_files "$corpus") inputs, no crash"
	else
		crash=$(ls -t "$artifacts" 2>/dev/null | head -1)
		record "fuzz-$t-run" fail "$took" "$(grep -m1 -E 'ERROR|check failed|runtime error' "$log") input $artifacts$crash"
		echo "fuzz $t: CRASH after ${took}s: $artifacts$crash (log $log)"
		grep -m5 -E 'ERROR|check failed|runtime error|#[0-9] ' "$log" >&2
		continue
	fi
	if [ "$MERGE" = yes ]; then
		before=$(count_files "$seeds")
		"$bin" -merge=1 -artifact_prefix="$artifacts" "$seeds" "$corpus" >"$log.merge" 2>&1 ||
			echo "fuzz $t: merge failed (log $log.merge)" >&2
		echo "fuzz $t: merged into $seeds: $before -> $(count_files "$seeds") inputs"
	fi
done

if [ -n "$JUNIT" ]; then
	/usr/bin/python3 - "$JUNIT" "${CASES[@]}" <<'EOF'
import sys
import xml.etree.ElementTree as ET

path, cases = sys.argv[1], sys.argv[2:]
suite = ET.Element("testsuite", name="fuzz", tests=str(len(cases)),
                   failures=str(sum(c.split("|")[1] != "ok" for c in cases)),
                   errors="0", skipped="0")
for c in cases:
    name, status, took, msg = c.split("|", 3)
    case = ET.SubElement(suite, "testcase", classname="fuzz", name=name, time=took)
    if status != "ok":
        ET.SubElement(case, "failure", message=msg.splitlines()[0] if msg else "failed").text = msg
ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)
EOF
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
