#!/bin/bash
# tools/demo.sh [start|stop|status]: the offline demo of SPEC §4.
#
# start: install what is missing (tools/deps.sh), build, then run rbldnsd on
#        127.0.0.1:5301 with the stand-in lists of tools/demo/ and rblmuxd on
#        127.0.0.1:5353 (apex rblmux.internal) in the background, wait until
#        rblmuxd answers, and print dig commands with their expected answers.
# stop:  stop both (by the PIDs in .demo/).
# status: say what runs and ask rblmuxd for its health.
#
# Environment: RBLMUX_BUILD (default build) is the meson build directory.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${RBLMUX_BUILD:-build}
STATE=$ROOT/.demo
DEMO=$ROOT/tools/demo
LIST_PORT=5301
DNS_PORT=5353
APEX=rblmux.internal
# /usr/sbin is not on a Debian user's PATH.
RBLDNSD=$(command -v rbldnsd || echo /usr/sbin/rbldnsd)

pid_alive() {
	local f=$STATE/$1.pid
	[ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

stop_one() {
	local name=$1 f=$STATE/$1.pid pid
	if pid_alive "$name"; then
		pid=$(cat "$f")
		kill "$pid"
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid"
		fi
		echo "stopped $name (pid $pid)"
	fi
	rm -f "$f"
}

# ask NAME TYPE PORT: dig's short answer, empty when none came.
ask() {
	dig @127.0.0.1 -p "$3" +short +time=1 +tries=1 "$1" "$2" 2>/dev/null || true
}

wait_answer() {
	local name=$1 type=$2 port=$3 what=$4
	for _ in $(seq 50); do
		if [ -n "$(ask "$name" "$type" "$port")" ]; then
			return 0
		fi
		pid_alive "$what" || break
		sleep 0.2
	done
	echo "demo: $what did not answer $name $type on port $port; its log:" >&2
	tail -n 30 "$STATE/$what.log" >&2 || true
	return 1
}

start() {
	stop_one rblmuxd >/dev/null
	stop_one rbldnsd >/dev/null
	tools/deps.sh
	if [ ! -f "$BUILD/build.ninja" ]; then
		meson setup "$BUILD"
	fi
	ninja -C "$BUILD"
	local daemon=$BUILD/resolver/rblmuxd
	if [ ! -x "$daemon" ]; then
		echo "demo: $daemon was not built" >&2
		exit 1
	fi

	mkdir -p "$STATE/data"
	# rbldnsd reads its files as its own user: a world-readable copy.
	cp "$DEMO"/*.ip4 "$DEMO"/*.ip6 "$DEMO"/*.dom "$STATE/data/"
	chmod 755 "$STATE/data"
	chmod 644 "$STATE/data"/*
	local user=()
	if [ "$(id -u)" -eq 0 ]; then
		if getent passwd rbldns >/dev/null; then user=(-u rbldns); else user=(-u nobody); fi
	fi
	local zones
	mapfile -t zones < <(grep -v '^#' "$DEMO/zones" | grep .)

	setsid "$RBLDNSD" -n -b "127.0.0.1/$LIST_PORT" -w "$STATE/data" "${user[@]}" \
		"${zones[@]}" </dev/null >"$STATE/rbldnsd.log" 2>&1 &
	echo $! >"$STATE/rbldnsd.pid"
	wait_answer a.demo.invalid SOA "$LIST_PORT" rbldnsd || { stop; exit 1; }

	setsid "$daemon" -c "$DEMO/rblmuxd.conf" </dev/null >"$STATE/rblmuxd.log" 2>&1 &
	echo $! >"$STATE/rblmuxd.pid"
	wait_answer "$APEX" SOA "$DNS_PORT" rblmuxd || { stop; exit 1; }

	local d="dig @127.0.0.1 -p $DNS_PORT"
	cat <<EOF

rblmux demo running: rblmuxd on 127.0.0.1:$DNS_PORT (pid $(cat "$STATE/rblmuxd.pid")),
stand-in lists (rbldnsd) on 127.0.0.1:$LIST_PORT (pid $(cat "$STATE/rbldnsd.pid")).
Logs: .demo/rblmuxd.log, .demo/rbldnsd.log. Lists: tools/demo/README.

Try (expected answer after #):
  $d +short 1.2.0.192.$APEX A             # 127.0.0.2 (192.0.2.1: score 8 >= 5)
  $d +short 1.2.0.192.$APEX TXT           # why: demo-a, demo-b, demo-c with codes
  $d 2.2.0.192.$APEX A | grep status:     # NXDOMAIN (192.0.2.2: score 2 < 5)
  $d +short 2.2.0.192.score.$APEX A       # 127.0.1.2 (score 2)
  $d +short 7.100.51.198.score.$APEX A    # 127.0.2.5 (allowlisted: score -5)
  $d 3.2.0.192.$APEX A | grep status:     # NXDOMAIN (192.0.2.3 is on no list)
  $d +short 1.2.0.192.demo-c.$APEX A      # 127.0.0.3 (demo-c's own answer)
  $d +short 1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.$APEX A   # 127.0.0.2
  $d +short spam.example.rhs.$APEX A      # 127.0.0.2 (domain list demo-dbl)
  $d +short 2.0.0.127.$APEX TXT           # the RFC 5782 test point
  $d +short health.$APEX TXT              # one line per list: ok
Stop it with: tools/demo.sh stop
EOF
}

stop() {
	stop_one rblmuxd
	stop_one rbldnsd
}

status() {
	local running=0
	for what in rbldnsd rblmuxd; do
		if pid_alive "$what"; then
			echo "$what running (pid $(cat "$STATE/$what.pid"))"
			running=$((running + 1))
		else
			echo "$what not running"
		fi
	done
	if pid_alive rblmuxd; then
		ask "health.$APEX" TXT "$DNS_PORT"
	fi
	[ "$running" -eq 2 ]
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 [start|stop|status]" >&2
	exit 2
	;;
esac
