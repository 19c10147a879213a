#!/usr/bin/env bash
# bench/redis.sh: what the Redis tier costs and saves, on loopback, in one run.
#
#   bench/redis.sh            5 rounds, then the outage runs (3 to 5 min)
#   bench/redis.sh --short    2 rounds, shorter outage runs (about 2 min)
#
# A "fleet-warm" answer is one whose list answers are not in this rblmuxd's
# own cache but are in Redis (another member asked the lists before). A seed
# rblmuxd first asks the lists (rbldnsd, bench/lib/gendata.awk's data) about
# every name, which fills Redis. Each round then starts a fresh rblmuxd
# (empty in-process tier) and measures, for the same names:
#   - latency: dnsperf -q 1 (one query at a time), each name once:
#     fleet-warm (every list answer from Redis), then again warm in process;
#     the difference of the medians is what the Redis round trip adds;
#   - throughput: dnsperf -q BENCH_OUTSTANDING over other names, fleet-warm,
#     then warm in process: QPS, and CPU per answer of rblmuxd and of Redis.
# Where each list answer came from (Redis, the lists, the process) is read
# from rblmuxd's metrics (rblmux_lookups_total by tier), and the rcodes are
# checked against the data. Beside them, one loopback round trip two ways:
# a Redis GET from redis-benchmark (one client, no pipelining) on rblmuxd's
# core, and a bare UDP echo (bench/lib/udp_echo.c) under dnsperf -q 1.
# Then the outage runs: a fresh rblmuxd answers dnsperf traffic while Redis
# is killed (SIGKILL), and while it is paused (SIGSTOP); every name is new to
# it, so every answer needs the lists.
#
# Bars:
#   a fleet-warm answer costs no more than one extra loopback round trip:
#   median (fleet-warm p50 - in-process p50) <= median Redis GET p50;
#   Redis down or stalled: under 0.1% of the queries lost, no SERVFAIL.
#
# rblmuxd (threads = 1, redis_timeout 5ms, the default), rbldnsd and Redis run
# on core BENCH_SERVER_CPU, dnsperf on BENCH_CLIENT_CPU, as in bench/run.sh. A
# fleet's Redis would be on another host; here it shares rblmuxd's core
# (BENCH_REDIS_CPU moves it).
#
# Environment (all optional):
#   BENCH_ROUNDS      rounds (default 5, 2 with --short)
#   BENCH_IPS         distinct names for the throughput runs (default 50000)
#   BENCH_LAT_IPS     distinct names for the latency runs (default 3000)
#   BENCH_OUTSTANDING dnsperf -q for throughput and outage runs (default 100)
#   BENCH_DOWN_DURATION seconds of each outage run (default 10, 5 with --short)
#   BENCH_PORT        first of five loopback ports used (default 25363):
#                     rbldnsd, Redis, rblmuxd, the echo, rblmuxd's metrics
#   BENCH_SERVER_CPU, BENCH_CLIENT_CPU, BENCH_REDIS_CPU (default 0, 1, 0)
#   BENCH_BUILD       build directory (default <repo>/build-bench, release)
#   RBLMUXD           use this rblmuxd binary instead of building one
#   BENCH_NICE        niceness as root (default -19; 0 = leave it)
#   BENCH_QUIET_WAIT  seconds, over the whole benchmark, it may wait for other
#                     processes to leave the cores idle before a round
#                     (default 120; 0 = never wait)
#   BENCH_KEEP        1: keep the scratch directory (configs, logs, reports)
#
# Exits 0 once the figures are printed, whether the bars are met or not; it
# exits non-zero only when the benchmark itself cannot run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

rounds_default=5
down_default=10
case "${1:-}" in
--short)
	rounds_default=2
	down_default=5
	;;
"") ;;
-h | --help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [--short]" >&2
	exit 2
	;;
esac

rounds=${BENCH_ROUNDS:-$rounds_default}
nips=${BENCH_IPS:-50000}
lat_ips=${BENCH_LAT_IPS:-3000}
outstanding=${BENCH_OUTSTANDING:-100}
down_duration=${BENCH_DOWN_DURATION:-$down_default}
port_base=${BENCH_PORT:-25363}
server_cpu=${BENCH_SERVER_CPU:-0}
client_cpu=${BENCH_CLIENT_CPU:-1}
redis_cpu=${BENCH_REDIS_CPU:-$server_cpu}
build=${BENCH_BUILD:-$repo/build-bench}
keep=${BENCH_KEEP:-0}
nice_level=${BENCH_NICE:--19}
quiet_budget=${BENCH_QUIET_WAIT:-120}

apex=rblmux.internal
suffix=bench.invalid
lists="a b c d"
threshold=2
# Longer than the whole run: nothing expires while measured.
ttl=3600

for v in rounds nips lat_ips outstanding down_duration port_base server_cpu \
	client_cpu redis_cpu quiet_budget; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -gt 1000000 ]; then
		echo "bench: $v must be a number, got '${!v}'" >&2
		exit 2
	fi
done
if [ "$rounds" -lt 1 ] || [ "$nips" -lt 1 ] || [ "$lat_ips" -lt 1 ] || [ "$down_duration" -lt 1 ] ||
	[ "$outstanding" -lt 1 ] || [ "$port_base" -lt 1024 ] || [ "$port_base" -gt 65530 ]; then
	echo "bench: rounds, names, durations and -q must be >= 1, port 1024..65530" >&2
	exit 2
fi
if ! [[ $nice_level =~ ^-?[0-9]+$ ]] || [ "$nice_level" -lt -20 ] ||
	[ "$nice_level" -gt 19 ]; then
	echo "bench: BENCH_NICE must be a niceness, -20..19" >&2
	exit 2
fi
total_ips=$((nips + lat_ips))
if [ "$total_ips" -gt 1000000 ]; then
	echo "bench: at most 1000000 names in all" >&2
	exit 2
fi

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# --- tools ----------------------------------------------------------------

need_pkgs=()
for tool in dnsperf:dnsperf rbldnsd:rbldnsd redis-server:redis-server \
	redis-cli:redis-tools redis-benchmark:redis-tools dig:dnsutils \
	taskset:util-linux cc:gcc; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || need_pkgs+=("${tool#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
	mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${need_pkgs[*]} from Debian"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2 ||
			{ apt-get update >&2 &&
				apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2; } ||
			die "could not install ${need_pkgs[*]}"
	else
		die "missing ${need_pkgs[*]}: apt-get install ${need_pkgs[*]}"
	fi
fi
ncpu=$(getconf _NPROCESSORS_ONLN)
[ "$server_cpu" -lt "$ncpu" ] && [ "$client_cpu" -lt "$ncpu" ] &&
	[ "$redis_cpu" -lt "$ncpu" ] && [ "$server_cpu" != "$client_cpu" ] ||
	die "need two distinct online cores (server $server_cpu, client $client_cpu, $ncpu online)"
clk_tck=$(getconf CLK_TCK)
prio=()
if [ "$nice_level" != 0 ] && [ "$(id -u)" = 0 ]; then
	prio=(nice -n "$nice_level")
else
	nice_level=0
fi

# --- scratch space, processes and cleanup ---------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/rblmux-bench-redis.XXXXXX")
# rbldnsd drops to its own user and must still read the zones.
chmod 755 "$work"
declare -A pid=()
started=()

# stop_pid PID: SIGTERM (SIGCONT first: it may be paused), then SIGKILL.
stop_pid() {
	local p=$1
	kill -CONT "$p" 2>/dev/null || true
	kill "$p" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
stop_all() {
	local p
	for p in "${started[@]}"; do
		stop_pid "$p"
	done
	started=()
}
cleanup() {
	stop_all
	if [ "$keep" = 1 ]; then
		log "scratch kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- rblmuxd, built for release (as bench/run.sh) ---------------------------

if [ -n "${RBLMUXD:-}" ]; then
	rblmuxd=$RBLMUXD
	[ -x "$rblmuxd" ] || die "RBLMUXD=$rblmuxd is not executable"
else
	rblmuxd=$build/resolver/rblmuxd
	if [ ! -f "$build/build.ninja" ]; then
		log "configuring $build (release)"
		meson setup "$build" "$repo" --buildtype=release >"$work/meson-setup.log" 2>&1 ||
			die "meson setup failed: $(tail -n 3 "$work/meson-setup.log")"
	elif ! grep -q '"name": "buildtype", "value": "release"' \
		"$build/meson-info/intro-buildoptions.json" 2>/dev/null; then
		log "switching $build to --buildtype=release"
		meson configure "$build" -Dbuildtype=release >/dev/null ||
			die "meson configure -Dbuildtype=release failed"
	fi
	log "building rblmuxd"
	ninja -C "$build" resolver/rblmuxd >"$work/ninja.log" 2>&1 ||
		die "ninja -C $build resolver/rblmuxd failed: $(grep -m 3 -iE 'error' "$work/ninja.log" | cut -c 1-200)"
	[ -x "$rblmuxd" ] || die "$rblmuxd was not built"
fi

port_free() {
	[ -z "$(ss -Hlnu "( sport = :$1 )" 2>/dev/null)" ] &&
		[ -z "$(ss -Hlnt "( sport = :$1 )" 2>/dev/null)" ]
}

# spawn NAME CPUS COMMAND...: COMMAND pinned to CPUS, logging to
# $work/NAME.log (appended), its PID in pid[NAME].
spawn() {
	local name=$1 cpus=$2
	shift 2
	"${prio[@]}" taskset -c "$cpus" "$@" >>"$work/$name.log" 2>&1 &
	pid[$name]=$!
	started+=("$!")
}

# forget NAME: stop NAME (by its PID) and drop it from the cleanup list.
forget() {
	local p=${pid[$1]} keep_pids=() q
	stop_pid "$p"
	for q in "${started[@]}"; do
		[ "$q" = "$p" ] || keep_pids+=("$q")
	done
	started=("${keep_pids[@]}")
	unset "pid[$1]"
}

# wait_dns NAME PORT PROBE: until PROBE (an A question) gets an answer.
wait_dns() {
	local name=$1 p=$2 probe=$3
	for _ in $(seq 100); do
		kill -0 "${pid[$name]}" 2>/dev/null ||
			{ tail -n 20 "$work/$name.log" >&2; die "$name exited at start"; }
		if dig @127.0.0.1 -p "$p" +tries=1 +time=1 +norec "$probe" A 2>/dev/null |
			grep -q 'status: '; then
			return 0
		fi
		sleep 0.1
	done
	tail -n 20 "$work/$name.log" >&2
	die "$name does not answer on 127.0.0.1:$p"
}

rcli() { timeout 10 redis-cli -h 127.0.0.1 -p "$p_redis" "$@"; }

start_redis() {
	port_free "$p_redis" || die "port $p_redis is in use (set BENCH_PORT)"
	spawn redis "$redis_cpu" redis-server --bind 127.0.0.1 --port "$p_redis" \
		--save "" --appendonly no --dir "$work" --daemonize no --logfile ""
	# It is SIGKILLed on purpose: no "Killed" notice from this shell.
	disown "${pid[redis]}"
	for _ in $(seq 100); do
		[ "$(rcli PING 2>/dev/null)" = PONG ] && return 0
		kill -0 "${pid[redis]}" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$work/redis.log" >&2
	die "redis-server does not answer on 127.0.0.1:$p_redis"
}

# core_busy CPU: ticks core CPU spent on processes, hard interrupts or steal
# (as bench/run.sh).
core_busy() {
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $9 }' /proc/stat
}

# wait_quiet: on a shared machine, wait (1 s samples, within a budget for
# the whole benchmark) until both cores are nearly idle.
quiet_left=$quiet_budget
wait_quiet() {
	local a0 b0 a1 b1
	while [ "$quiet_left" -gt 0 ]; do
		a0=$(core_busy "$server_cpu")
		b0=$(core_busy "$client_cpu")
		sleep 1
		a1=$(core_busy "$server_cpu")
		b1=$(core_busy "$client_cpu")
		[ $((a1 - a0 + b1 - b0)) -gt $((clk_tck / 10)) ] || return 0
		quiet_left=$((quiet_left - 1))
	done
}

cpu_ticks() {
	# utime + stime of /proc/PID/stat, counted after the ")" closing the
	# command name, which may itself hold spaces.
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# start_member NAME: a fresh rblmuxd (empty in-process tier) on Redis,
# waiting until it answers and its health says Redis is up.
start_member() {
	local name=$1
	port_free "$p_member" || die "port $p_member is in use (set BENCH_PORT)"
	spawn "$name" "$server_cpu" "$rblmuxd" -c "$work/rblmuxd.conf"
	wait_dns "$name" "$p_member" "2.0.0.127.$apex"
	for _ in $(seq 100); do
		dig @127.0.0.1 -p "$p_member" +tries=1 +time=1 +short "health.$apex" TXT |
			grep -q '"redis up ' && return 0
		sleep 0.1
	done
	tail -n 20 "$work/$name.log" >&2
	die "$name: Redis is not up"
}

# dnsperf_run PORT QFILE OUT ARGS...: dnsperf from the client core, bounded.
dnsperf_run() {
	local p=$1 q=$2 out=$3
	shift 3
	timeout 300 "${prio[@]}" taskset -c "$client_cpu" \
		dnsperf -s 127.0.0.1 -p "$p" -d "$q" "$@" >"$out" 2>&1 ||
		{ cat "$out" >&2; die "dnsperf against port $p failed"; }
}

# parse OUT: "sent completed lost qps noerror nxdomain other avg_latency_us".
parse() {
	awk '
	/Queries sent:/      { sent = $3 }
	/Queries completed:/ { done = $3 }
	/Queries lost:/      { lost = $3 }
	/Queries per second:/ { qps = $4 }
	/Average Latency/    { lat = $4 * 1e6 }
	/Response codes:/ {
		sub(/.*Response codes: */, "")
		n = split($0, parts, /, */)
		for (i = 1; i <= n; i++) {
			split(parts[i], f, " ")
			if (f[1] == "NOERROR") noerror = f[2]
			else if (f[1] == "NXDOMAIN") nxdomain = f[2]
			else other += f[2]
		}
	}
	END {
		if (done == "") exit 1
		printf "%d %d %d %.1f %d %d %d %.1f\n", sent, done, lost, qps, noerror, nxdomain, other, lat
	}' "$1"
}

# --- data -----------------------------------------------------------------

awk -v n="$total_ips" -v dir="$work" -v apex="$apex" -v suffix="$suffix" \
	-v ttl="$ttl" -v threshold="$threshold" -f "$here/lib/gendata.awk" >/dev/null ||
	die "test data generation failed"
chmod a+r "$work"/*
[ -s "$work/q-combined.txt" ] || die "test data generation failed"
head -n "$lat_ips" "$work/q-combined.txt" >"$work/q-lat.txt"
tail -n +"$((lat_ips + 1))" "$work/q-combined.txt" >"$work/q-tput.txt"

# listed FROM TO: how many of test addresses FROM..TO-1 are listed at the
# threshold (gendata.awk: list a holds i % 2 == 0, b % 3, c % 5, d % 7).
listed() {
	awk -v from="$1" -v to="$2" -v t="$threshold" 'BEGIN {
		for (i = from; i < to; i++)
			if ((i % 2 == 0) + (i % 3 == 0) + (i % 5 == 0) + (i % 7 == 0) >= t) n++
		print n + 0 }'
}
expect_lat=$(listed 0 "$lat_ips")
expect_tput=$(listed "$lat_ips" "$total_ips")

# answers_ok NOERROR NXDOMAIN OTHER EXPECTED NAMES: an exact pass (-n 1)
# over a file answers exactly its listed names NOERROR, the rest NXDOMAIN.
answers_ok() {
	[ "$3" = 0 ] && [ "$1" = "$4" ] && [ "$2" = $(($5 - $4)) ]
}

cc -O2 -std=gnu11 -Wall -Wextra -o "$work/udp_echo" "$here/lib/udp_echo.c" ||
	die "cannot build bench/lib/udp_echo.c"

p_rbldnsd=$port_base
p_redis=$((port_base + 1))
p_member=$((port_base + 2))
p_echo=$((port_base + 3))
p_metrics=$((port_base + 4))

zone_args=()
for l in $lists; do
	zone_args+=("$l.$suffix:ip4set:$l.zone")
done

cat >"$work/rblmuxd.conf" <<EOF
[server]
listen = 127.0.0.1:$p_member
zone = $apex
threads = 1
allow = 127.0.0.0/8
; where each answer's list answers came from: rblmux_lookups_total{tier}
metrics = 127.0.0.1:$p_metrics

[upstream]
servers = 127.0.0.1:$p_rbldnsd
timeout = 1500ms
deadline = 2s

[scoring]
threshold = $threshold

[cache]
redis = 127.0.0.1:$p_redis
memory = 512M
; longer than the run: the measured answers all come from a cache
min_ttl = 1h
max_ttl = 2h

[ptr]
enabled = no

[spf]
enabled = no
EOF
for l in $lists; do
	printf '\n[source list-%s]\nzone = %s.%s\ntype = ip4\nweight = 1\n' \
		"$l" "$l" "$suffix" >>"$work/rblmuxd.conf"
done
chmod a+r "$work"/*
"$rblmuxd" -t -c "$work/rblmuxd.conf" >"$work/rblmuxd-check.log" 2>&1 ||
	{ cat "$work/rblmuxd-check.log" >&2; die "rblmuxd -t rejects the benchmark's configuration"; }

# --- servers ----------------------------------------------------------------

rbldnsd_user=()
[ "$(id -u)" = 0 ] && rbldnsd_user=(-u rbldns)
port_free "$p_rbldnsd" || die "port $p_rbldnsd is in use (set BENCH_PORT)"
spawn rbldnsd "$server_cpu" rbldnsd -n "${rbldnsd_user[@]}" -w "$work" \
	-b "127.0.0.1/$p_rbldnsd" -t "$ttl" -a "${zone_args[@]}"
wait_dns rbldnsd "$p_rbldnsd" "0.0.0.10.a.$suffix"
port_free "$p_echo" || die "port $p_echo is in use (set BENCH_PORT)"
spawn echo "$server_cpu" "$work/udp_echo" 127.0.0.1 "$p_echo"
wait_dns echo "$p_echo" "echo.$apex"
start_redis

# --- seed: one member asks the lists, and so fills Redis ----------------------

want_keys=$((4 * total_ips))
for attempt in 1 2 3; do
	log "seeding Redis: $total_ips names x 4 lists (attempt $attempt)"
	start_member seed
	dnsperf_run "$p_member" "$work/q-combined.txt" "$work/seed.txt" -n 1 -q 16 -t 5
	keys=0
	for _ in $(seq 50); do
		keys=$(rcli DBSIZE)
		[ "$keys" -ge "$want_keys" ] && break
		sleep 0.1
	done
	forget seed
	[ "$keys" -ge "$want_keys" ] && break
	log "Redis holds $keys keys of $want_keys"
done
[ "$keys" -ge "$want_keys" ] || die "Redis holds $keys keys of $want_keys after seeding"

# --- rounds -------------------------------------------------------------------

# tiers: "redis upstream mem other" of rblmux_lookups_total, summed over the
# lists, scraped from the member's metrics endpoint.
tiers() {
	local reply
	exec 3<>"/dev/tcp/127.0.0.1/$p_metrics" || die "cannot reach the metrics endpoint"
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	reply=$(timeout 5 cat <&3) || true
	exec 3<&-
	awk '/^rblmux_lookups_total\{/ {
		t = $1; sub(/.*tier="/, "", t); sub(/".*/, "", t)
		if (t == "redis" || t == "upstream" || t == "mem") n[t] += $2
		else n["other"] += $2
	} END { printf "%d %d %d %d\n", n["redis"], n["upstream"], n["mem"], n["other"] }' <<<"$reply"
}

# measure NAME QFILE ARGS...: one dnsperf pass (each name once) against the
# member. Sets r_line (parse's fields), r_ticks and r_rticks (the member's
# and Redis's CPU ticks), r_tiers (lookups per tier during the pass, as
# tiers) and r_p50 (median latency in us, from -v's per-query lines).
measure() {
	local name=$1 q=$2 t0 t1 rt0 rt1 a b
	shift 2
	local out=$work/$name.round$round.txt
	t0=$(cpu_ticks "${pid[member]}")
	rt0=$(cpu_ticks "${pid[redis]}")
	a=$(tiers)
	dnsperf_run "$p_member" "$q" "$out" -n 1 "$@"
	b=$(tiers)
	t1=$(cpu_ticks "${pid[member]}")
	rt1=$(cpu_ticks "${pid[redis]}")
	r_line=$(parse "$out") || die "cannot read dnsperf's report ($name)"
	r_ticks=$((t1 - t0))
	r_rticks=$((rt1 - rt0))
	r_tiers=$(awk -v a="$a" -v b="$b" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		printf "%d %d %d %d\n", y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] - x[4] }')
	r_p50=$(p50 "$out")
}

# p50 OUT: the median of dnsperf -v's per-query latencies, in us.
p50() {
	awk '/^> / { print $NF * 1e6 }' "$1" | median_of
}

median_of() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print "nan"
		else if (NR % 2) printf "%.1f\n", v[(NR + 1) / 2]
		else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

us_per() { awk -v t="$1" -v hz="$clk_tck" -v n="$2" 'BEGIN { printf "%.2f", n ? t / hz * 1e6 / n : 0 }'; }

csv=$work/rounds.csv
echo "round,lat_redis_p50_us,lat_mem_p50_us,added_p50_us,lat_redis_avg_us,lat_mem_avg_us,rtt_redis_get_p50_us,rtt_udp_echo_p50_us,qps_redis,qps_mem,cpu_redis_us,cpu_mem_us,redis_cpu_us,lost,answers_ok,lat_lookups_redis,lat_lookups_upstream,tput_lookups_redis,tput_lookups_upstream,mem_lookups_upstream" >"$csv"

for round in $(seq "$rounds"); do
	wait_quiet
	start_member member
	ok=yes
	lost=0

	# Latency: one query at a time, each name once from Redis, then again
	# from the process's own cache.
	measure lat-redis "$work/q-lat.txt" -q 1 -v
	read -r _ n_done l _ ne nx o lat_redis_avg <<<"$r_line"
	answers_ok "$ne" "$nx" "$o" "$expect_lat" "$lat_ips" || ok=no
	lost=$((lost + l))
	lat_redis=$r_p50
	read -r lat_from_redis lat_from_lists _ _ <<<"$r_tiers"
	measure lat-mem "$work/q-lat.txt" -q 1 -v
	read -r _ n_done l _ ne nx o lat_mem_avg <<<"$r_line"
	answers_ok "$ne" "$nx" "$o" "$expect_lat" "$lat_ips" || ok=no
	lost=$((lost + l))
	lat_mem=$r_p50
	read -r _ mem_from_lists _ _ <<<"$r_tiers"

	# Throughput: many outstanding, other names, the same two ways.
	measure tput-redis "$work/q-tput.txt" -q "$outstanding"
	read -r _ n_done l qps_redis ne nx o _ <<<"$r_line"
	answers_ok "$ne" "$nx" "$o" "$expect_tput" "$nips" || ok=no
	lost=$((lost + l))
	cpu_redis=$(us_per "$r_ticks" "$n_done")
	redis_us=$(us_per "$r_rticks" "$n_done")
	read -r tput_from_redis tput_from_lists _ _ <<<"$r_tiers"
	measure tput-mem "$work/q-tput.txt" -q "$outstanding"
	read -r _ n_done l qps_mem ne nx o _ <<<"$r_line"
	answers_ok "$ne" "$nx" "$o" "$expect_tput" "$nips" || ok=no
	lost=$((lost + l))
	cpu_mem=$(us_per "$r_ticks" "$n_done")
	read -r _ n _ _ <<<"$r_tiers"
	mem_from_lists=$((mem_from_lists + n))
	forget member

	# One loopback round trip, two ways, while the member is stopped: a
	# Redis GET from the member's core, and a UDP echo from dnsperf's.
	timeout 120 "${prio[@]}" taskset -c "$server_cpu" redis-benchmark -h 127.0.0.1 \
		-p "$p_redis" -c 1 -P 1 -n 20000 -t get --csv >"$work/rtt.round$round.csv" 2>&1 ||
		die "redis-benchmark failed: $(tail -n 3 "$work/rtt.round$round.csv")"
	rtt_redis=$(awk -F'","' '/^"GET/ { printf "%.1f", $5 * 1000 }' "$work/rtt.round$round.csv")
	[ -n "$rtt_redis" ] || die "cannot read redis-benchmark's report"
	dnsperf_run "$p_echo" "$work/q-lat.txt" "$work/echo.round$round.txt" -n 1 -q 1 -v
	rtt_echo=$(p50 "$work/echo.round$round.txt")

	added=$(awk -v a="$lat_redis" -v b="$lat_mem" 'BEGIN { printf "%.1f", a - b }')
	echo "$round,$lat_redis,$lat_mem,$added,$lat_redis_avg,$lat_mem_avg,$rtt_redis,$rtt_echo,$qps_redis,$qps_mem,$cpu_redis,$cpu_mem,$redis_us,$lost,$ok,$lat_from_redis,$lat_from_lists,$tput_from_redis,$tput_from_lists,$mem_from_lists" >>"$csv"
	log "round $round/$rounds: latency p50 fleet-warm $lat_redis us, in-process $lat_mem us" \
		"(+$added us; Redis GET $rtt_redis us, UDP echo $rtt_echo us);" \
		"QPS fleet-warm $qps_redis, in-process $qps_mem; CPU/answer $cpu_redis / $cpu_mem us" \
		"(+ Redis $redis_us us); lookups from Redis/lists: latency $lat_from_redis/$lat_from_lists," \
		"throughput $tput_from_redis/$tput_from_lists; answers $ok, lost $lost"
done

# --- outage: Redis killed, then paused, under load -----------------------------

declare -A outage_result=()

# outage KIND SIGNAL: a fresh member (Redis up), then SIGNAL to Redis, then
# dnsperf for down_duration s over every name (all new to this member).
outage() {
	local kind=$1 sig=$2 out=$work/outage-$1.txt line
	wait_quiet
	start_member member
	kill "-$sig" "${pid[redis]}"
	dnsperf_run "$p_member" "$work/q-combined.txt" "$out" -l "$down_duration" \
		-q "$outstanding" -t 3
	kill -0 "${pid[member]}" 2>/dev/null || die "rblmuxd died with Redis $kind"
	dig @127.0.0.1 -p "$p_member" +tries=1 +time=1 +short "health.$apex" TXT |
		grep -o '"redis [^"]*"' | tr -d '"' >"$work/outage-$kind.health" || true
	forget member
	line=$(parse "$out") || die "cannot read dnsperf's report (Redis $kind)"
	read -r o_sent o_done o_lost _ o_ne o_nx o_other _ <<<"$line"
	outage_result[$kind]="$o_sent $o_done $o_lost $o_ne $o_nx $o_other"
	log "Redis $kind: sent $o_sent, completed $o_done, lost $o_lost, NOERROR $o_ne," \
		"NXDOMAIN $o_nx, other $o_other; health: $(cat "$work/outage-$kind.health")"
}

outage killed KILL
forget redis
start_redis
outage paused STOP
kill -CONT "${pid[redis]}"

# --- summary ----------------------------------------------------------------

col() { awk -F, -v c="$1" 'NR > 1 { print $c }' "$csv"; }
sum() { col "$1" | awk '{ s += $1 } END { print s + 0 }'; }
declare -A med=()
for c in 2:lat_redis 3:lat_mem 4:added 5:lat_redis_avg 6:lat_mem_avg 7:rtt_redis 8:rtt_echo \
	9:qps_redis 10:qps_mem 11:cpu_redis 12:cpu_mem 13:redis_us; do
	med[${c#*:}]=$(col "${c%%:*}" | median_of)
done
all_ok=$(awk -F, 'NR > 1 && $15 != "yes" { bad = 1 } END { print bad ? "NO" : "yes" }' "$csv")
lost_rounds=$(sum 14)
lat_r=$(sum 16)
lat_u=$(sum 17)
tput_r=$(sum 18)
tput_u=$(sum 19)
mem_u=$(sum 20)

# ratio_of A B: the median over rounds of column A / column B.
ratio_of() {
	awk -F, -v a="$1" -v b="$2" 'NR > 1 && $b > 0 { print $a / $b }' "$csv" | median_of |
		awk '{ printf "%.2f", $1 }'
}

pct() { awk -v l="$1" -v s="$2" 'BEGIN { printf "%.3f", s ? 100 * l / s : 0 }'; }
outage_line() {
	local kind=$1 sent n_done lost ne nx other
	read -r sent n_done lost ne nx other <<<"${outage_result[$kind]}"
	printf '  Redis %-6s  %8d sent  %8d answered  lost %d (%s%%)  NOERROR %d  NXDOMAIN %d  other %d  health after: %s\n' \
		"$kind" "$sent" "$n_done" "$lost" "$(pct "$lost" "$sent")" "$ne" "$nx" "$other" \
		"$(cat "$work/outage-$kind.health" 2>/dev/null || echo '?')"
}

summary=$work/summary.txt
{
	echo "rblmux Redis-tier benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $ncpu cores"
	echo "  dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2; exit }'), $(redis-server --version | awk '{ print $1, $2, $3 }'), rbldnsd $(dpkg-query -W -f '${Version}' rbldnsd 2>/dev/null || echo '?')"
	echo "  niceness $nice_level; rblmuxd (threads = 1, redis_timeout 5ms) and rbldnsd on core $server_cpu, Redis on core $redis_cpu, dnsperf on core $client_cpu"
	echo "  $rounds round(s), each on a fresh rblmuxd; combined verdict over 4 lists; medians over rounds"
	echo "  latency: dnsperf -q 1 over $lat_ips names (p50 per round); throughput: dnsperf -q $outstanding over $nips names"
	echo "  (waited $((quiet_budget - quiet_left)) s of $quiet_budget s for idle cores before rounds)"
	echo
	printf '  %-48s %9s us  (avg %s us)\n' "latency p50, fleet-warm (4 list answers from Redis)" "${med[lat_redis]}" "${med[lat_redis_avg]}"
	printf '  %-48s %9s us  (avg %s us)\n' "latency p50, warm in process" "${med[lat_mem]}" "${med[lat_mem_avg]}"
	printf '  %-48s %9s us\n' "added by Redis (per-round p50 difference)" "${med[added]}"
	printf '  %-48s %9s us\n' "one loopback round trip: Redis GET p50, 1 client" "${med[rtt_redis]}"
	printf '  %-48s %9s us\n' "one loopback round trip: UDP echo p50, dnsperf" "${med[rtt_echo]}"
	printf '  %-48s %9s x a Redis GET, %s x a UDP echo\n' "added, per-round ratio (median)" \
		"$(ratio_of 4 7)" "$(ratio_of 4 8)"
	echo
	printf '  %-48s %9.0f QPS  %6s us CPU/answer  (+ Redis %s us)\n' "throughput, fleet-warm" \
		"${med[qps_redis]}" "${med[cpu_redis]}" "${med[redis_us]}"
	printf '  %-48s %9.0f QPS  %6s us CPU/answer\n' "throughput, warm in process" \
		"${med[qps_mem]}" "${med[cpu_mem]}"
	echo
	echo "  list answers of the fleet-warm passes (all rounds): latency $lat_r from Redis, $lat_u from the lists;"
	echo "  throughput $tput_r from Redis, $tput_u from the lists (Redis not answering within redis_timeout);"
	echo "  in-process passes: $mem_u from the lists. Answers match the data: $all_ok; lost $lost_rounds."
	echo
	echo "  outage runs (${down_duration}s each, dnsperf -q $outstanding, a fresh rblmuxd, every name new to it):"
	outage_line killed
	outage_line paused
	echo
	# A list answer of the latency passes that did not come from Redis
	# timed out (5 ms): on a busy machine, a few per run.
	if [ "$all_ok" = yes ] && [ "$lost_rounds" = 0 ] && [ "$mem_u" = 0 ] &&
		awk -v r="$lat_r" -v n=$((4 * lat_ips * rounds)) 'BEGIN { exit !(r >= 0.999 * n) }'; then
		echo "CHECK OK: answers match the data; the latency passes' list answers came from Redis ($lat_r of $((4 * lat_ips * rounds))), the in-process passes' from the process"
	else
		echo "CHECK FAILED: answers $all_ok, lost $lost_rounds, latency pass lookups $lat_r from Redis of $((4 * lat_ips * rounds)), $lat_u from the lists; in-process $mem_u from the lists"
	fi
	if awk -v a="${med[added]}" -v b="${med[rtt_redis]}" 'BEGIN { exit !(a <= b) }'; then
		echo "BAR MET: a fleet-warm answer adds ${med[added]} us <= one loopback round trip (Redis GET ${med[rtt_redis]} us)"
	else
		echo "BAR NOT MET: a fleet-warm answer adds ${med[added]} us > one loopback round trip (Redis GET ${med[rtt_redis]} us)"
	fi
	for kind in killed paused; do
		read -r sent _ lost _ _ other <<<"${outage_result[$kind]}"
		if awk -v l="$lost" -v s="$sent" -v o="$other" 'BEGIN { exit !(s > 0 && 100 * l / s < 0.1 && o == 0) }'; then
			echo "BAR MET: Redis $kind: lost $lost of $sent ($(pct "$lost" "$sent")% < 0.1%), no SERVFAIL"
		else
			echo "BAR NOT MET: Redis $kind: lost $lost of $sent ($(pct "$lost" "$sent")%), other rcodes $other"
		fi
	done
} >"$summary"
echo
cat "$summary"

results=$build/bench-results
mkdir -p "$results"
cp "$csv" "$results/redis-rounds.csv"
cp "$summary" "$results/redis-summary.txt"
log "per-round figures: $results/redis-rounds.csv"
