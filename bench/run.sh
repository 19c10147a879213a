#!/usr/bin/env bash
# bench/run.sh: rblmuxd's warm combined-verdict answers against unbound's
# cache hits, in one run, on loopback. See bench/README.md for what is
# compared and why.
#
#   bench/run.sh            5 alternated runs of 10 s per server (5-7 min)
#   bench/run.sh --short    2 runs, a quick check (2-3 min)
#
# Every server is pinned to one core (BENCH_SERVER_CPU, default 0) and
# dnsperf to the other (BENCH_CLIENT_CPU, default 1); only one server is
# queried at a time, in turn. A server's cost is its CPU time
# (/proc/PID/stat utime+stime) over a run divided by the answers dnsperf
# received, because dnsperf saturates its own core before a fast server does.
#
# Environment (all optional):
#   BENCH_RUNS       measured runs per server (default 5, 2 with --short)
#   BENCH_DURATION   seconds per measured run (default 10)
#   BENCH_IPS        test addresses, i.e. distinct query names (default 10000)
#   BENCH_PORT       first of five loopback ports used (default 25353)
#   BENCH_CLIENTS    dnsperf -c (default 1)
#   BENCH_OUTSTANDING dnsperf -q (default 100)
#   BENCH_MAX_QPS    dnsperf -Q, unset = as fast as dnsperf goes
#   BENCH_AUTO       1 (default): also measure rblmuxd with threads = auto,
#                    on both cores (informational, not part of the bar)
#   BENCH_AUTO_CLIENTS dnsperf -c for that one (default 4)
#   BENCH_BUILD      build directory (default <repo>/build-bench, release)
#   RBLMUXD          use this rblmuxd binary instead of building one
#   BENCH_KEEP       1: keep the scratch directory (zones, configs, logs)
#   BENCH_NICE       niceness of the servers and dnsperf, and of the
#                    session's autogroup, when run as root (default -19, so
#                    that other processes on a shared machine take less of
#                    their cores; 0 = leave it)
#   BENCH_QUIET_WAIT seconds, over the whole benchmark, it may spend waiting
#                    for other processes to leave the cores idle before a
#                    run (default 24 per run, 120 for 5; 0 = never wait)
#
# Exits 0 once the figures are printed, whether the bar is met or not; it
# exits non-zero only when the benchmark itself cannot run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

runs_default=5
case "${1:-}" in
--short) runs_default=2 ;;
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

runs=${BENCH_RUNS:-$runs_default}
duration=${BENCH_DURATION:-10}
nips=${BENCH_IPS:-10000}
port_base=${BENCH_PORT:-25353}
clients=${BENCH_CLIENTS:-1}
outstanding=${BENCH_OUTSTANDING:-100}
max_qps=${BENCH_MAX_QPS:-}
with_auto=${BENCH_AUTO:-1}
auto_clients=${BENCH_AUTO_CLIENTS:-4}
server_cpu=${BENCH_SERVER_CPU:-0}
client_cpu=${BENCH_CLIENT_CPU:-1}
build=${BENCH_BUILD:-$repo/build-bench}
keep=${BENCH_KEEP:-0}
quiet_budget=${BENCH_QUIET_WAIT:-}
nice_level=${BENCH_NICE:--19}

apex=rblmux.internal
suffix=bench.invalid
lists="a b c d"
threshold=2
# Longer than the whole run, so that no cached entry expires while measured.
ttl=3600

for v in runs duration nips port_base clients auto_clients outstanding \
	server_cpu client_cpu quiet_budget; do
	[ "$v" = quiet_budget ] && [ -z "$quiet_budget" ] && continue
	if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -gt 1000000 ]; then
		echo "bench: $v must be a number, got '${!v}'" >&2
		exit 2
	fi
done
[ -n "$quiet_budget" ] || quiet_budget=$((24 * runs))
if [ "$runs" -lt 1 ] || [ "$duration" -lt 1 ] || [ "$nips" -lt 1 ] ||
	[ "$port_base" -lt 1024 ] || [ "$port_base" -gt 65530 ]; then
	echo "bench: runs, duration and IPs must be >= 1, port 1024..65530" >&2
	exit 2
fi
if ! [[ $nice_level =~ ^-?[0-9]+$ ]] || [ "$nice_level" -lt -20 ] ||
	[ "$nice_level" -gt 19 ]; then
	echo "bench: BENCH_NICE must be a niceness, -20..19" >&2
	exit 2
fi
if [ -n "$max_qps" ] && ! [[ $max_qps =~ ^[0-9]+$ ]]; then
	echo "bench: BENCH_MAX_QPS must be a number" >&2
	exit 2
fi

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# --- tools ----------------------------------------------------------------

need_pkgs=()
for tool in dnsperf:dnsperf rbldnsd:rbldnsd unbound:unbound dig:dnsutils \
	taskset:util-linux ss:iproute2 cc:gcc; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || need_pkgs+=("${tool#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
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
	[ "$server_cpu" != "$client_cpu" ] ||
	die "need two distinct online cores (server $server_cpu, client $client_cpu, $ncpu online)"
clk_tck=$(getconf CLK_TCK)
prio=()
if [ "$nice_level" != 0 ] && [ "$(id -u)" = 0 ]; then
	prio=(nice -n "$nice_level")
else
	nice_level=0
fi

# --- scratch space, processes and cleanup ---------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/rblmux-bench.XXXXXX")
# rbldnsd drops to its own user and must still read the zones.
chmod 755 "$work"
declare -A pid=() port=() qfile=() label=() expect_noerror=() nclients=()
started=()

stop_all() {
	local p i
	for p in "${started[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${started[@]}"; do
		for i in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	started=()
}
cleanup() {
	stop_all
	if [ -n "$autogroup_was" ]; then
		echo "$autogroup_was" >"/proc/$$/autogroup" 2>/dev/null || true
	fi
	if [ "$keep" = 1 ]; then
		log "scratch kept in $work"
	else
		rm -rf "$work"
	fi
}
autogroup_was=""
trap cleanup EXIT
trap 'exit 130' INT TERM

# With autogroups, niceness only ranks processes of one session against each
# other: the session's own group must rank high too for a compiler in another
# session not to take half a core. Put back at exit.
if [ "$nice_level" != 0 ] &&
	[ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] &&
	[ -w "/proc/$$/autogroup" ]; then
	was=$(awk '{ print $NF }' "/proc/$$/autogroup")
	if echo "$nice_level" >"/proc/$$/autogroup" 2>/dev/null; then
		autogroup_was=$was
	fi
fi

# --- rblmuxd, built for release ------------------------------------------

rblmuxd_missing=""
if [ -n "${RBLMUXD:-}" ]; then
	rblmuxd=$RBLMUXD
	[ -x "$rblmuxd" ] || rblmuxd_missing="RBLMUXD=$rblmuxd is not executable"
else
	rblmuxd=$build/resolver/rblmuxd
	if [ ! -f "$build/build.ninja" ]; then
		log "configuring $build (release)"
		meson setup "$build" "$repo" --buildtype=release >"$work/meson-setup.log" 2>&1 ||
			rblmuxd_missing="meson setup failed: $(tail -n 3 "$work/meson-setup.log")"
	elif ! grep -q '"name": "buildtype", "value": "release"' \
		"$build/meson-info/intro-buildoptions.json" 2>/dev/null; then
		log "switching $build to --buildtype=release"
		meson configure "$build" -Dbuildtype=release >/dev/null ||
			rblmuxd_missing="meson configure -Dbuildtype=release failed"
	fi
	if [ -z "$rblmuxd_missing" ]; then
		log "building rblmuxd"
		if ! ninja -C "$build" resolver/rblmuxd >"$work/ninja.log" 2>&1; then
			rblmuxd_missing="ninja -C $build resolver/rblmuxd failed: $(grep -m 3 -iE 'error|unknown target' "$work/ninja.log" | cut -c 1-200)"
		fi
	fi
	[ -n "$rblmuxd_missing" ] || [ -x "$rblmuxd" ] ||
		rblmuxd_missing="$rblmuxd was not built"
fi
if [ -n "$rblmuxd_missing" ]; then
	log "rblmuxd half skipped: $rblmuxd_missing"
	with_auto=0
fi

port_free() {
	[ -z "$(ss -Hlnu "( sport = :$1 )" 2>/dev/null)" ] &&
		[ -z "$(ss -Hlnt "( sport = :$1 )" 2>/dev/null)" ]
}

# start NAME PORT PROBE-NAME CPUS COMMAND...: runs COMMAND pinned to CPUS,
# logging to $work/NAME.log, and waits until PROBE-NAME gets an answer.
start() {
	local name=$1 p=$2 probe=$3 cpus=$4 i
	shift 4
	port_free "$p" || die "port $p is in use (set BENCH_PORT)"
	"${prio[@]}" taskset -c "$cpus" "$@" >"$work/$name.log" 2>&1 &
	pid[$name]=$!
	port[$name]=$p
	started+=("$!")
	for i in $(seq 100); do
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

# foreign_pct TICKS: TICKS as a share of one core over a measured run.
foreign_pct() {
	awk -v t="$1" -v hz="$clk_tck" -v d="$duration" 'BEGIN {
		p = 100 * t / (hz * d); printf "%d", p < 0 ? 0 : p }'
}

cpu_ticks() {
	# Fields 14 and 15 (utime, stime) of /proc/PID/stat, counted after the
	# ")" closing the command name, which may itself hold spaces.
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# core_busy CPU: the ticks core CPU has spent running processes (any), in
# hard interrupts, or stolen by the hypervisor. Softirq ticks are left out:
# they are the kernel's own packet work for our traffic, charged to no
# process. Less the server's ticks, this is what else used the server's core.
core_busy() {
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $9 }' /proc/stat
}

# wait_quiet: on a shared machine, wait (1 s samples, within a budget for
# the whole benchmark) until the two cores are nearly idle before a run, so
# that fewer runs share their cores with someone's compiler.
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

# children_cpu: sets kids_cpu to the CPU seconds of this shell's finished
# children (dnsperf, through timeout), from the times builtin; called in
# this shell, not in $(), whose fork would start from zero.
children_cpu() {
	times >"$work/times.txt"
	kids_cpu=$(awk 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, f, /[ms]/); t += f[1] * 60 + f[2] }
		print t }' "$work/times.txt")
}

# dnsperf_run NAME OUT ARGS...: dnsperf from the client core, bounded in time.
dnsperf_run() {
	local name=$1 out=$2
	shift 2
	timeout $((duration + 60)) "${prio[@]}" taskset -c "$client_cpu" \
		dnsperf -s 127.0.0.1 -p "${port[$name]}" -d "${qfile[$name]}" "$@" \
		>"$out" 2>&1 || { cat "$out" >&2; die "dnsperf against $name failed"; }
}

# parse OUT: "sent completed lost qps noerror nxdomain other" from a
# dnsperf report.
parse() {
	awk '
	/Queries sent:/      { sent = $3 }
	/Queries completed:/ { done = $3 }
	/Queries lost:/      { lost = $3 }
	/Queries per second:/ { qps = $4 }
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
		printf "%d %d %d %.1f %d %d %d\n", sent, done, lost, qps, noerror, nxdomain, other
	}' "$1"
}

# answers_ok NAME NOERROR NXDOMAIN OTHER: do the rcodes match the data?
# A timed run ends part way through the query file, so the listed share may
# differ from the file's by a little.
answers_ok() {
	local name=$1 noerror=$2 nxdomain=$3 other=$4
	[ -n "${expect_noerror[$name]:-}" ] || return 0
	awk -v ne="$noerror" -v nx="$nxdomain" -v o="$other" \
		-v want="${expect_noerror[$name]}" -v names="$nips" 'BEGIN {
		total = ne + nx + o
		if (o > 0 || total == 0) exit 1
		d = ne / total - want / names
		exit !(d < 0.01 && d > -0.01)
	}'
}

# warm NAME: ask every name once, gently (a cold rblmuxd turns each question
# into four upstream ones), then check a second full pass answers from the
# data. A second warm-up covers answers that failed the first time.
warm() {
	local name=$1 attempt r line
	for attempt in 1 2; do
		dnsperf_run "$name" "$work/$name.warm.txt" -n 1 -q 16 -t 5
		dnsperf_run "$name" "$work/$name.check.txt" -n 1 -q "$outstanding"
		line=$(parse "$work/$name.check.txt") ||
			die "cannot read dnsperf's report for $name"
		read -r -a r <<<"$line"
		if [ "${r[2]}" = 0 ] && answers_ok "$name" "${r[4]}" "${r[5]}" "${r[6]}"; then
			log "$name warm: ${r[1]} names, NOERROR ${r[4]}, NXDOMAIN ${r[5]}"
			return 0
		fi
		log "$name after warm-up $attempt: NOERROR ${r[4]}, NXDOMAIN ${r[5]}," \
			"other ${r[6]}, lost ${r[2]} (expected NOERROR ${expect_noerror[$name]:-any})"
	done
	log "$name: answers still differ from the data after two warm-ups; measuring anyway"
}

# --- data -----------------------------------------------------------------

while read -r tag file names listed; do
	[ "$tag" = expected ] || continue
	case $file in
	q-combined.txt) expect_combined=$listed ;;
	q-single.txt) expect_single=$listed ;;
	esac
done < <(awk -v n="$nips" -v dir="$work" -v apex="$apex" -v suffix="$suffix" \
	-v ttl="$ttl" -v threshold="$threshold" -f "$here/lib/gendata.awk")
chmod a+r "$work"/*
[ -n "${expect_combined:-}" ] && [ -n "${expect_single:-}" ] ||
	die "test data generation failed"

cc -O2 -std=gnu11 -Wall -Wextra -o "$work/udp_echo" "$here/lib/udp_echo.c" ||
	die "cannot build bench/lib/udp_echo.c"

p_rbldnsd=$port_base
p_unbound=$((port_base + 1))
p_rblmuxd=$((port_base + 2))
p_echo=$((port_base + 3))
p_auto=$((port_base + 4))

zone_args=()
for l in $lists; do
	zone_args+=("$l.$suffix:ip4set:$l.zone")
done

{
	cat <<EOF
server:
	verbosity: 1
	num-threads: 1
	interface: 127.0.0.1
	port: $p_unbound
	do-ip6: no
	access-control: 127.0.0.0/8 allow
	username: ""
	chroot: ""
	directory: "$work"
	pidfile: ""
	use-syslog: no
	logfile: ""
	module-config: "iterator"
	qname-minimisation: no
	do-not-query-localhost: no
	msg-cache-size: 128m
	rrset-cache-size: 256m
	target-fetch-policy: "0 0 0 0 0"
	# The stand-in lists live under .invalid, which unbound answers itself
	# by default (RFC 6761).
	local-zone: "invalid." nodefault
remote-control:
	control-enable: no
EOF
	for l in $lists; do
		printf 'stub-zone:\n\tname: "%s.%s"\n\tstub-addr: 127.0.0.1@%s\n' \
			"$l" "$suffix" "$p_rbldnsd"
	done
} >"$work/unbound.conf"

# rblmuxd_conf THREADS PORT
rblmuxd_conf() {
	cat <<EOF
[server]
listen = 127.0.0.1:$2
zone = $apex
threads = $1
allow = 127.0.0.0/8

[upstream]
servers = 127.0.0.1:$p_rbldnsd
timeout = 1500ms
deadline = 2s

[scoring]
threshold = $threshold

[cache]
redis = none
memory = 512M
; longer than the run: the measured answers all come from the cache
min_ttl = 1h
max_ttl = 2h

; only the four lists count toward the verdict
[ptr]
enabled = no

[spf]
enabled = no
EOF
	for l in $lists; do
		# "list-a", not "a": a one-letter name a-f reads as an IPv6 nibble.
		printf '\n[source list-%s]\nzone = %s.%s\ntype = ip4\nweight = 1\n' \
			"$l" "$l" "$suffix"
	done
}
rblmuxd_conf 1 "$p_rblmuxd" >"$work/rblmuxd.conf"
rblmuxd_conf auto "$p_auto" >"$work/rblmuxd-auto.conf"
chmod a+r "$work"/*

# --- servers ----------------------------------------------------------------

rbldnsd_user=()
[ "$(id -u)" = 0 ] && rbldnsd_user=(-u rbldns)
start rbldnsd "$p_rbldnsd" "0.0.0.10.a.$suffix" "$server_cpu" \
	rbldnsd -n "${rbldnsd_user[@]}" -w "$work" -b "127.0.0.1/$p_rbldnsd" \
	-t "$ttl" -a "${zone_args[@]}"
start unbound "$p_unbound" "2.0.0.127.a.$suffix" "$server_cpu" \
	unbound -d -c "$work/unbound.conf"
start echo "$p_echo" "echo.$apex" "$server_cpu" "$work/udp_echo" 127.0.0.1 "$p_echo"

order=()
if [ -z "$rblmuxd_missing" ]; then
	if ! "$rblmuxd" -t -c "$work/rblmuxd.conf" >"$work/rblmuxd-check.log" 2>&1; then
		cat "$work/rblmuxd-check.log" >&2
		die "rblmuxd -t rejects the benchmark's configuration"
	fi
	start rblmuxd "$p_rblmuxd" "2.0.0.127.$apex" "$server_cpu" \
		"$rblmuxd" -c "$work/rblmuxd.conf"
	order+=(rblmuxd)
fi
order+=(unbound rbldnsd echo)
if [ "$with_auto" = 1 ]; then
	# threads = auto sizes itself to the cores it may use: pinned to one
	# core it is threads = 1 again, so it gets both (one loop each) and
	# shares the client's core with dnsperf, which opens several sockets
	# so that SO_REUSEPORT spreads them over the loops. Not part of the bar.
	start rblmuxd-auto "$p_auto" "2.0.0.127.$apex" "$server_cpu,$client_cpu" \
		"$rblmuxd" -c "$work/rblmuxd-auto.conf"
	order+=(rblmuxd-auto)
fi

label[rblmuxd]="rblmuxd threads=1 (combined, 4 lists)"
label[rblmuxd-auto]="rblmuxd threads=auto, 2 cores (info)"
label[unbound]="unbound cache hit (1 list)"
label[rbldnsd]="rbldnsd direct (1 list)"
label[echo]="bare UDP echo (floor)"
for s in rblmuxd rblmuxd-auto; do
	qfile[$s]=$work/q-combined.txt
	expect_noerror[$s]=$expect_combined
done
for s in unbound rbldnsd; do
	qfile[$s]=$work/q-single.txt
	expect_noerror[$s]=$expect_single
done
qfile[echo]=$work/q-combined.txt
for s in "${order[@]}"; do
	nclients[$s]=$clients
done
nclients[rblmuxd-auto]=$auto_clients

for s in "${order[@]}"; do
	[ "$s" = echo ] || warm "$s"
done

# --- measured runs ----------------------------------------------------------

csv=$work/runs.csv
echo "server,run,sent,completed,lost,qps,ticks,us_per_answer,noerror,nxdomain,other,upstream_ticks,answers_ok,foreign_ticks,client_foreign_ticks" >"$csv"
qps_arg=()
[ -n "$max_qps" ] && qps_arg=(-Q "$max_qps")
log "$runs run(s) of ${duration}s per server, order: ${order[*]}"
for run in $(seq "$runs"); do
	for s in "${order[@]}"; do
		out=$work/$s.run$run.txt
		wait_quiet
		up0=$(cpu_ticks "${pid[rbldnsd]}")
		c0=$(core_busy "$client_cpu")
		children_cpu
		k0=$kids_cpu
		b0=$(core_busy "$server_cpu")
		t0=$(cpu_ticks "${pid[$s]}")
		dnsperf_run "$s" "$out" -l "$duration" -c "${nclients[$s]}" -q "$outstanding" \
			"${qps_arg[@]}"
		kill -0 "${pid[$s]}" 2>/dev/null ||
			{ tail -n 20 "$work/$s.log" >&2; die "$s died during run $run"; }
		t1=$(cpu_ticks "${pid[$s]}")
		b1=$(core_busy "$server_cpu")
		children_cpu
		k1=$kids_cpu
		c1=$(core_busy "$client_cpu")
		up1=$(cpu_ticks "${pid[rbldnsd]}")
		line=$(parse "$out") || die "cannot read dnsperf's report for $s"
		read -r sent done lost qps noerror nxdomain other <<<"$line"
		[ "$done" -gt 0 ] || die "$s answered nothing (see $out)"
		ok=yes
		answers_ok "$s" "$noerror" "$nxdomain" "$other" || ok=no
		upstream=$((up1 - up0))
		[ "$s" = rbldnsd ] && upstream=0
		# dnsperf's own core, less dnsperf: what else ran beside the client.
		# The server on both cores: both cores, less the server and dnsperf.
		client_ticks=$(awk -v k0="$k0" -v k1="$k1" -v hz="$clk_tck" \
			'BEGIN { printf "%d", (k1 - k0) * hz + 0.5 }')
		cf=$((c1 - c0 - client_ticks))
		[ "$s" = rblmuxd-auto ] && cf=$((b1 - b0 + c1 - c0 - client_ticks - (t1 - t0)))
		us=$(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v n="$done" \
			'BEGIN { printf "%.3f", t / hz * 1e6 / n }')
		echo "$s,$run,$sent,$done,$lost,$qps,$((t1 - t0)),$us,$noerror,$nxdomain,$other,$upstream,$ok,$((b1 - b0 - t1 + t0)),$cf" >>"$csv"
		fs="$(foreign_pct $((b1 - b0 - t1 + t0)))%"
		[ "$s" = rblmuxd-auto ] && fs=-
		printf 'run %d/%d  %-13s %9.0f QPS  lost %6.3f%%  %6.2f us CPU/answer  answers %s  foreign %s/%d%%\n' \
			"$run" "$runs" "$s" "$qps" "$(awk -v l="$lost" -v s="$sent" 'BEGIN { print s ? 100 * l / s : 0 }')" \
			"$us" "$ok" "$fs" "$(foreign_pct "$cf")" >&2
	done
done

# --- summary ----------------------------------------------------------------

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print "nan"
		else if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
col() { awk -F, -v s="$1" -v c="$2" '$1 == s { print $c }' "$csv"; }
declare -A med_qps=() med_us=() lost_pct=() all_ok=() spread=() upstream_max=() med_foreign=() \
	med_cforeign=() med_util=()
for s in "${order[@]}"; do
	med_qps[$s]=$(col "$s" 6 | median)
	med_us[$s]=$(col "$s" 8 | median)
	lost_pct[$s]=$(awk -F, -v s="$s" '$1 == s { l += $5; n += $3 }
		END { printf "%.3f", n ? 100 * l / n : 0 }' "$csv")
	spread[$s]=$(col "$s" 8 | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
		END { print lo, hi }')
	all_ok[$s]=$(awk -F, -v s="$s" '$1 == s && $13 != "yes" { bad = 1 }
		END { print bad ? "NO" : "yes" }' "$csv")
	upstream_max[$s]=$(col "$s" 12 | sort -g | tail -n 1)
	med_foreign[$s]=$(foreign_pct "$(col "$s" 14 | median)")
	med_cforeign[$s]=$(foreign_pct "$(col "$s" 15 | median)")
	med_util[$s]=$(foreign_pct "$(col "$s" 7 | median)")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b ? a / b : 0 }'; }
# paired A B COLUMN: the median over runs of A's figure over B's in the same
# run; neighbours in time share the machine's mood, so this is steadier than
# the ratio of the medians when other processes come and go.
paired() {
	awk -F, -v a="$1" -v b="$2" -v c="$3" '
		$1 == a { x[$2] = $c } $1 == b { y[$2] = $c }
		END { for (r in x) if ((r in y) && y[r] > 0) print x[r] / y[r] }' "$csv" |
		median | awk '{ printf "%.3f", $1 }'
}
# ratios A B: one line comparing A with B.
ratios() {
	echo "ratio $1/$2: QPS $(ratio "${med_qps[$1]}" "${med_qps[$2]}") (paired $(paired "$1" "$2" 6)), CPU per answer $(ratio "${med_us[$1]}" "${med_us[$2]}") (paired $(paired "$1" "$2" 8))"
}

summary=$work/summary.txt
{
	echo "rblmux benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $ncpu cores"
	echo "  dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2; exit }'), unbound $(unbound -V | awk '/^Version/ { print $2; exit }'), rbldnsd $(dpkg-query -W -f '${Version}' rbldnsd 2>/dev/null || echo '?')"
	echo "  niceness $nice_level; servers on core $server_cpu, dnsperf on core $client_cpu (-c $clients -q $outstanding${max_qps:+ -Q $max_qps}; -c $auto_clients for threads=auto),"
	echo "  $runs alternated run(s) of ${duration}s per server, $nips names, medians; CPU = utime+stime / answers"
	echo
	printf '%-38s %8s %7s %11s %13s %5s %8s %9s %9s\n' "server" "QPS" "lost %" "CPU us/ans" "(min-max)" "CPU" "answers" "upstream" "foreign"
	for s in "${order[@]}"; do
		up=${upstream_max[$s]}
		[ "$s" = rbldnsd ] || [ "$s" = echo ] && up=-
		read -r lo hi <<<"${spread[$s]}"
		ok=${all_ok[$s]}
		[ "$s" = echo ] && ok=-
		fg="${med_foreign[$s]}%/${med_cforeign[$s]}%"
		[ "$s" = rblmuxd-auto ] && fg="-/${med_cforeign[$s]}%"
		printf '%-38s %8.0f %7s %11.2f %6.2f-%-6.2f %4s%% %8s %9s %9s\n' "${label[$s]}" "${med_qps[$s]}" \
			"${lost_pct[$s]}" "${med_us[$s]}" "$lo" "$hi" "${med_util[$s]}" "$ok" "$up" "$fg"
	done
	echo
	echo "  CPU: the server's median CPU time over a run, in % of one core (100%: saturated)"
	echo "  answers: rcode mix matches the stand-in data in every run (the echo is not checked)"
	echo "  upstream: most rbldnsd CPU ticks spent during one of the server's runs (0 = answered from cache)"
	echo "  foreign: median share of the server's / dnsperf's core used by other processes during its runs"
	echo "  (for threads=auto, of both cores); on a core the server does not fill, it is idle time put to use"
	echo "  (waited $((quiet_budget - quiet_left)) s of $quiet_budget s for idle cores before runs)"
	# Other load matters where it took time a saturated side wanted:
	# dnsperf's core is always full, the server's when the two add up.
	worst=$(for s in "${order[@]}"; do
		if [ "$s" != rblmuxd-auto ] &&
			[ $((med_util[$s] + med_foreign[$s])) -ge 90 ]; then
			echo "${med_foreign[$s]}"
		fi
		echo "${med_cforeign[$s]}"
	done | sort -g | tail -n 1)
	if [ "$worst" -gt 5 ]; then
		echo "  WARNING: other processes took up to $worst% of a core: QPS is depressed by as much;"
		echo "  CPU per answer less so (cache and scheduling effects). Rerun on an idle machine."
	fi
	echo
	if [ -n "$rblmuxd_missing" ]; then
		echo "rblmuxd: not measured ($rblmuxd_missing)"
		ratios unbound rbldnsd
		ratios unbound echo
		echo
		echo "BAR NOT CHECKED: CPU per warm answer (rblmuxd missing)"
		echo "BAR NOT CHECKED: QPS and lost queries (rblmuxd missing)"
	else
		for ref in unbound rbldnsd echo; do
			ratios rblmuxd "$ref"
		done
		[ "$with_auto" = 1 ] && ratios rblmuxd-auto unbound
		echo
		if [ "${all_ok[rblmuxd]}" != yes ]; then
			echo "BAR NOT MET: rblmuxd's answers do not match the stand-in data (see the check above)"
		fi
		if awk -v a="${med_us[rblmuxd]}" -v b="${med_us[unbound]}" 'BEGIN { exit !(a <= b) }'; then
			echo "BAR MET: CPU per warm answer, rblmuxd ${med_us[rblmuxd]} us <= unbound ${med_us[unbound]} us"
		else
			echo "BAR NOT MET: CPU per warm answer, rblmuxd ${med_us[rblmuxd]} us > unbound ${med_us[unbound]} us"
		fi
		if awk -v a="${med_qps[rblmuxd]}" -v b="${med_qps[unbound]}" -v l="${lost_pct[rblmuxd]}" \
			'BEGIN { exit !(a >= b && l < 0.1) }'; then
			echo "BAR MET: QPS, rblmuxd ${med_qps[rblmuxd]} >= unbound ${med_qps[unbound]}, lost ${lost_pct[rblmuxd]}% < 0.1%"
		else
			echo "BAR NOT MET: QPS, rblmuxd ${med_qps[rblmuxd]} vs unbound ${med_qps[unbound]} (needs >=), lost ${lost_pct[rblmuxd]}% (needs < 0.1%)"
		fi
	fi
} >"$summary"
echo
cat "$summary"

results=$build/bench-results
mkdir -p "$results"
cp "$csv" "$summary" "$results/"
for s in "${order[@]}"; do
	cp "$work/$s.log" "$results/$s.log" 2>/dev/null || true
done
log "per-run figures: $results/runs.csv"
