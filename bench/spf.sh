#!/usr/bin/env bash
# bench/spf.sh: how fast rblmuxd answers the spf. view, on loopback.
#
#   1. warm: SPF verdicts from the cache against combined verdicts from the
#      cache, same rblmuxd, same run, alternated (target: SPF at least half
#      the combined verdict's QPS);
#   2. cold: SPF evaluations per second (each a helper evaluation: the
#      domain's TXT, then the A of its "a" mechanism) against a stand-in
#      answering after BENCH_LATENCY_MS.
#
# rblmuxd gets threads = 1, pinned to core BENCH_SERVER_CPU (its SPF helper
# inherits that), dnsperf core BENCH_CLIENT_CPU; rbldnsd serves four lists
# (bench/lib/gendata.awk's, as bench/run.sh), the stand-in
# (tests/standin.py) the SPF zone. Every process it starts is stopped by PID
# when it ends.
#
# Environment (all optional):
#   RBLMUXD          the rblmuxd binary (default $RBLMUX_BUILD/resolver/rblmuxd,
#                    RBLMUX_BUILD default <repo>/build); rblmux-spf must be
#                    beside it
#   BENCH_NAMES      distinct warm names per view (default 5000)
#   BENCH_COLD       cold evaluations (default 4000)
#   BENCH_DURATION   seconds per warm run (default 10)
#   BENCH_RUNS       warm runs per view, alternated (default 3)
#   BENCH_LATENCY_MS the stand-in's delay for the cold run (default 5)
#   BENCH_OUTSTANDING dnsperf -q for the cold run (default 200)
#   BENCH_PORT       first of four loopback ports (default 25453)
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU (default 0 / 1)
#   BENCH_KEEP       1: keep the scratch directory
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
"") ;;
*)
	echo "usage: $0" >&2
	exit 2
	;;
esac

build=${RBLMUX_BUILD:-$repo/build}
[[ $build = /* ]] || build=$repo/$build
rblmuxd=${RBLMUXD:-$build/resolver/rblmuxd}
names=${BENCH_NAMES:-5000}
cold=${BENCH_COLD:-4000}
duration=${BENCH_DURATION:-10}
runs=${BENCH_RUNS:-3}
latency=${BENCH_LATENCY_MS:-5}
outstanding=${BENCH_OUTSTANDING:-200}
port=${BENCH_PORT:-25453}
server_cpu=${BENCH_SERVER_CPU:-0}
client_cpu=${BENCH_CLIENT_CPU:-1}
keep=${BENCH_KEEP:-0}
python=/usr/bin/python3
apex=rblmux.internal
domain=bench.example

for tool in dnsperf rbldnsd dig taskset "$python"; do
	command -v "$tool" >/dev/null || { echo "spf.sh: $tool is missing (tools/deps.sh)" >&2; exit 1; }
done
[ -x "$rblmuxd" ] || { echo "spf.sh: no rblmuxd at $rblmuxd (set RBLMUXD)" >&2; exit 1; }
[ -x "$(dirname "$rblmuxd")/rblmux-spf" ] ||
	{ echo "spf.sh: no rblmux-spf beside $rblmuxd" >&2; exit 1; }

work=$(mktemp -d /tmp/rblmux-bench-spf.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "$keep" = 1 ]; then
		echo "spf.sh: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT INT TERM

# The lists: bench/lib/gendata.awk's four rbldnsd ip4set zones (address i
# is 10.<i/65536>.<i/256>.<i%256>, on list a when i % 2 == 0, b % 3, c % 5,
# d % 7) and its combined-verdict query file. The SPF view is asked about
# the same addresses, for the domain bench.example. The cold set is
# 172.16.0.0 and up.
chmod 755 "$work"
awk -v n="$names" -v dir="$work" -v apex="$apex" -v suffix=bench.invalid -v ttl=3600 \
	-v threshold=2 -f "$here/lib/gendata.awk" >/dev/null
mv "$work/q-combined.txt" "$work/combined.txt"
sed "s/\.$apex A\$/.$domain.spf.$apex A/" "$work/combined.txt" >"$work/spf.txt"
awk -v n="$cold" -v s="$domain.spf.$apex" 'BEGIN {
	for (i = 0; i < n; i++)
		printf "%d.%d.%d.172.%s A\n", i % 256, int(i / 256) % 256, 16 + int(i / 65536) % 16, s
}' >"$work/cold.txt"
rbldnsd_user=()
[ "$(id -u)" = 0 ] && rbldnsd_user=(-u rbldns)
rbldnsd -n "${rbldnsd_user[@]}" -w "$work" -b "127.0.0.1/$((port + 3))" -t 3600 \
	a.bench.invalid:ip4set:a.zone b.bench.invalid:ip4set:b.zone \
	c.bench.invalid:ip4set:c.zone d.bench.invalid:ip4set:d.zone \
	>"$work/rbldnsd.log" 2>&1 &
pids+=($!)

# The stand-in serves the SPF zone (the cold run delays it).
cat >"$work/standin.json" <<EOF
{"zones": {"$domain": {"ttl": 3600, "neg_ttl": 3600, "records": [
  {"name": "$domain.", "type": "TXT", "rdata": [["v=spf1 a ip4:192.0.2.0/24 -all"]]},
  {"name": "$domain.", "type": "A", "rdata": ["192.0.2.25"]}]}}}
EOF
"$python" "$repo/tests/standin.py" --port "$((port + 1))" --control-port "$((port + 2))" \
	--spec "$work/standin.json" >"$work/standin.out" 2>"$work/standin.log" &
pids+=($!)
for _ in $(seq 100); do
	grep -q '"port"' "$work/standin.out" 2>/dev/null &&
		dig +short +time=1 +tries=1 -p "$((port + 3))" @127.0.0.1 2.0.0.127.a.bench.invalid A |
		grep -q 127.0.0.2 && break
	sleep 0.1
done
grep -q '"port"' "$work/standin.out" || { echo "spf.sh: the stand-in did not start" >&2; exit 1; }

control() { # one JSON request to the stand-in's control port
	exec 3<>"/dev/tcp/127.0.0.1/$((port + 2))"
	printf '%s\n' "$1" >&3
	read -r _ <&3
	exec 3<&-
}

cat >"$work/rblmuxd.conf" <<EOF
[server]
listen = 127.0.0.1:$port
zone = $apex
threads = 1
allow = 127.0.0.0/8
[upstream]
servers = 127.0.0.1:$((port + 1))
timeout = 1500ms
deadline = 3s
[scoring]
threshold = 2
[cache]
memory = 256M
min_ttl = 1h
max_ttl = 1h
[ptr]
enabled = no
[spf]
enabled = yes
ttl = 1h
EOF
for l in a b c d; do
	printf '[source list%s]\nzone = %s.bench.invalid\nweight = 1\nservers = 127.0.0.1:%s\n' \
		"$l" "$l" "$((port + 3))" >>"$work/rblmuxd.conf"
done
taskset -c "$server_cpu" "$rblmuxd" -c "$work/rblmuxd.conf" 2>"$work/rblmuxd.log" &
pids+=($!)
for _ in $(seq 100); do
	dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "$apex" SOA >/dev/null 2>&1 && break
	sleep 0.1
done
probe=$(dig +short +time=3 +tries=1 -p "$port" @127.0.0.1 "9.2.0.192.$domain.spf.$apex" A || true)
case "$probe" in
127.0.4.*) ;;
*)
	echo "spf.sh: $rblmuxd does not answer the spf view ($probe): is it routed?" >&2
	exit 1
	;;
esac

perf() { # file extra-args... -> queries per second
	taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$1" "${@:2}" 2>&1 |
		awk '/Queries per second/ { print $4 }'
}
lost() { # file extra-args... -> the dnsperf report
	taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$1" "${@:2}" 2>&1
}

# Warm up twice: the second pass catches what the first missed.
echo "warming $names combined and $names SPF names..."
for _ in 1 2; do
	perf "$work/combined.txt" -n 1 -q 100 >/dev/null
	perf "$work/spf.txt" -n 1 -q 100 >/dev/null
done

declare -a cq sq
for r in $(seq "$runs"); do
	cq+=("$(perf "$work/combined.txt" -l "$duration" -q 100)")
	sq+=("$(perf "$work/spf.txt" -l "$duration" -q 100)")
	echo "run $r: combined ${cq[-1]} qps, spf ${sq[-1]} qps"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
cmed=$(median "${cq[@]}")
smed=$(median "${sq[@]}")

control "{\"cmd\": \"set\", \"zone\": \"$domain\", \"delay_ms\": $latency}"
control '{"cmd": "reset"}'
start=$(date +%s.%N)
report=$(lost "$work/cold.txt" -n 1 -q "$outstanding" -t 10)
end=$(date +%s.%N)
control '{"cmd": "counts"}'
cold_qps=$(awk '/Queries per second/ { print $4 }' <<<"$report")
cold_lost=$(awk '/Queries lost/ { print $3 }' <<<"$report")
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
temperr=$(dig +short -p "$port" @127.0.0.1 "$(head -1 "$work/cold.txt" | cut -d' ' -f1)" TXT | head -c 60)

ratio=$(awk -v s="$smed" -v c="$cmed" 'BEGIN { printf "%.2f", s / c }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.5 ? "met" : "NOT met") }')
cat <<EOF

rblmuxd $(basename "$(dirname "$(dirname "$rblmuxd")")"), threads = 1 on core $server_cpu; dnsperf on core $client_cpu
warm combined verdicts (4 lists): $cmed qps (median of $runs x ${duration}s)
warm SPF verdicts:                $smed qps (median of $runs x ${duration}s)
  SPF / combined = $ratio  (target >= 0.5: $verdict)
cold SPF evaluations:             $cold_qps per second ($cold distinct clients,
  stand-in latency ${latency} ms, $outstanding outstanding, ${elapsed}s, lost $cold_lost)
  first cold verdict: $temperr
EOF
