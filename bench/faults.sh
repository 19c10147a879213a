#!/bin/bash
# bench/faults.sh: rblmuxd under a steady stream of mixed queries while a
# list goes silent, slow, SERVFAILs and lists the world, Redis is killed and
# restarted, the configuration is reloaded ten times and TCP clients connect
# and never send (bench/faults.py says what is measured and how).
#
#   bench/faults.sh [--short] [--rate QPS]
#
# Default: the full run, about 5 minutes; --short: about one minute (what
# tests/test_load.py runs in CI). Loopback only; every process it starts is
# stopped by PID at the end. Builds $RBLMUX_BUILD (default build) first.
# Prints the figures, writes them to $RBLMUX_BUILD/faults.json, and exits
# non-zero when a bar is not met.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${RBLMUX_BUILD:-build}
export RBLMUX_BUILD=$BUILD
MODE=--full
ARGS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--short) MODE=--short; shift ;;
	--full) MODE=--full; shift ;;
	--rate) ARGS+=(--rate "$2"); shift 2 ;;
	-h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "faults.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

tools/deps.sh >&2
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >&2
ninja -C "$BUILD" >&2
echo "faults.sh: $(date -u +%FT%TZ), $(nproc) cores, build $BUILD, mode ${MODE#--}"
exec /usr/bin/python3 bench/faults.py "$MODE" "${ARGS[@]}" --json "$BUILD/faults.json"
