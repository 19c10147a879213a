#!/bin/bash
# tools/deps.sh: install the Debian 12 packages rblmux needs to build, test and
# run its demo, if any is missing. Fast when everything is there (dpkg only).
# Installing never starts services: a policy-rc.d that answers 101 keeps
# rbldnsd, unbound, redis-server and postfix from taking ports on a fresh host.
# Postfix is preseeded to "No configuration": the mail-path tests run their own
# instance (tests/test_mta.py) and the host's /etc/postfix stays untouched.
set -euo pipefail

PACKAGES=(
	meson ninja-build pkg-config gcc
	libuv1-dev libc-ares-dev libhiredis-dev libspf2-dev libcmocka-dev
	rbldnsd dnsutils python3-pytest python3-dnspython python3-yaml
	redis-server unbound dnsperf
	# the mail-path tests: sendmail-cf is only the m4 macros (sendmail-bin
	# conflicts with postfix); libio-socket-inet6-perl is swaks's IPv6, a
	# Recommends that --no-install-recommends would skip, as is unbound's
	# dns-root-data (the root trust anchor the tests validate with)
	postfix swaks libio-socket-inet6-perl iproute2 m4 sendmail-cf dns-root-data
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null; then
	SUDO=(sudo)
else
	echo "deps.sh: missing packages and neither root nor sudo: ${missing[*]}" >&2
	exit 1
fi

POLICY=/usr/sbin/policy-rc.d
placed=no
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\n# placed by rblmux tools/deps.sh during an install\nexit 101\n' |
		"${SUDO[@]}" tee "$POLICY" >/dev/null
	"${SUDO[@]}" chmod 755 "$POLICY"
	placed=yes
fi
cleanup() {
	if [ "$placed" = yes ]; then
		"${SUDO[@]}" rm -f "$POLICY"
	fi
}
trap cleanup EXIT

# Noninteractive, postfix would take its default (Internet Site) and write an
# /etc/postfix/main.cf; the tests run their own instance and need none.
echo "postfix postfix/main_mailer_type select No configuration" |
	"${SUDO[@]}" debconf-set-selections

"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
	apt-get install -y -q --no-install-recommends "${missing[@]}"
