# packages.sh: the Debian packages the project needs, and their installer.
#
# Sourced by .ci/run, tests/run.sh and compose/local/stack.sh.  As root the
# missing ones are installed with apt-get; otherwise the exact command to
# run is printed and the caller stops.

PKG_BUILD="build-essential pkg-config clang clang-format libclang-rt-14-dev
 libnng-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libpq-dev
 libhiredis-dev libmsgpack-dev libjansson-dev"
PKG_RUN="postgresql postgresql-client redis-server redis-tools curl"
PKG_TEST="prometheus python3"

pkg_missing() {
	local p missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	echo "$missing"
}

# pkg_ensure PKG...: installs what is missing, or explains how.
pkg_ensure() {
	local missing
	missing=$(pkg_missing "$@")
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages:$missing" >&2
		echo "run: sudo apt-get install -y$missing" >&2
		return 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null 2>&1 || apt-get update
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		apt-get install -y --no-install-recommends $missing
	# Debian starts the packaged servers; ours are project-local.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now redis-server postgresql >/dev/null 2>&1 || true
	fi
	service redis-server stop >/dev/null 2>&1 || true
}
