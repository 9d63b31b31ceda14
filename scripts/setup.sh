#!/usr/bin/env bash
# Prepare a Debian 12 machine (as root) to build, test, demo and benchmark synack.
#
#   scripts/setup.sh [--deps-only] [--xgen] [--no-cargo]
#
#   (default)     Debian packages, then `cargo build --release` (which builds `synack load`, the
#                 load generator the benchmarks use besides wrk)
#   --deps-only   Debian packages only (what CI needs before scripts/test.sh)
#   --xgen        also build xgen, the external C AF_XDP generator, to compare `synack load` with
#                 it (bench/vs-nginx.sh --clients wrk,load,xgen); --no-xgen is accepted and ignored
#   --no-cargo    skip `cargo build --release`
#
# Packages already present are not asked for again; if all are present, apt is not run at all. A
# package that does not exist in the configured archive (e.g. linux-perf) is reported and skipped.
# apt is kept from starting nginx (Debian's nginx package starts a server on port 80 on install): a
# temporary policy-rc.d forbids service starts during our install, and if an nginx that this install
# started is running anyway, it is stopped.
#
# With --xgen, xgen is looked for in $XGEN_DIR (default: ../shared/tools/xgen beside the repository,
# then /work/shared/tools/xgen). Its sources are copied into target/xgen/ and built there, so that
# worktrees and CI never write into the shared tool directory. If it is not found, that is said and
# skipped. Nothing in the repository needs it: the benchmarks run wrk and `synack load` by default.
#
# Environment: XGEN_DIR, CARGO (path to cargo), SETUP_APT=0 to never run apt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/toolchain.sh
. "$ROOT/scripts/toolchain.sh"

deps_only=0 want_xgen=0 want_cargo=1
for a in "$@"; do
	case $a in
	--deps-only) deps_only=1 ;;
	--xgen) want_xgen=1 ;;
	--no-xgen) want_xgen=0 ;;
	--no-cargo) want_cargo=0 ;;
	-h | --help)
		sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "setup: unknown option '$a' (see --help)" >&2
		exit 2
		;;
	esac
done
((deps_only)) && want_xgen=0 want_cargo=0

say() { printf 'setup: %s\n' "$*"; }

# Packages: the tools the scripts and tests call, and what xgen and the XDP program build with.
# memcached and libmemcached-tools (memcslap): the reference and the load generator of
# examples/kv (tests/kv.rs, bench/kv-vs-memcached.sh); the policy below keeps memcached's service
# from starting.
# prometheus: for its promtool (`promtool check metrics`, tests/metrics.rs); Debian ships no
# promtool-only package (about 100 MB installed). Its service is kept from starting too, and
# is disabled if this install enabled it.
PACKAGES=(clang llvm libbpf-dev libxdp-dev bpftool wrk apache2-utils nginx-light hping3 tcpdump ethtool iproute2
	python3 python3-scapy curl linux-perf gcc make pkg-config git util-linux procps shellcheck
	memcached libmemcached-tools prometheus)

# Python modules the tests import, installed with pip for the python3 on PATH (which may not be
# Debian's): pymemcache, the second client of tests/kv.rs.
# Python modules (from PyPI: the python3 on PATH may be pyenv's, not Debian's) the tests'
# clients import: pymemcache (tests/kv.rs), requests (tests/examples.rs, hello_json).
PY_MODULES=(pymemcache requests)

pkg_installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

POLICY_RC=/usr/sbin/policy-rc.d
policy_made=0
nginx_before=0
prometheus_before=0
cleanup() {
	if ((policy_made)); then rm -f "$POLICY_RC"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_started_nginx: stop the nginx that installing nginx-light just started (and only that one).
stop_started_nginx() {
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
		if systemctl is-active --quiet nginx 2>/dev/null; then
			say "stopping and disabling the nginx service that the package install started"
			systemctl stop nginx || true
			systemctl disable nginx >/dev/null 2>&1 || true
		fi
		return 0
	fi
	# No systemd: the init script writes /run/nginx.pid. Stop it only if that pid is an nginx master
	# running /etc/nginx/nginx.conf (the packaged default), not some other nginx.
	local pid
	[[ -r /run/nginx.pid ]] || return 0
	pid=$(tr -dc '0-9' </run/nginx.pid)
	[[ -n $pid && -d /proc/$pid ]] || return 0
	if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == /usr/sbin/nginx ]] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '^nginx: master process /usr/sbin/nginx'; then
		say "stopping the nginx master (pid $pid) that the package install started"
		kill -TERM "$pid" 2>/dev/null || true
		local i
		for ((i = 0; i < 50; i++)); do
			[[ -d /proc/$pid ]] || break
			sleep 0.1
		done
	fi
}

install_packages() {
	if [[ ${SETUP_APT:-1} == 0 ]]; then
		say "SETUP_APT=0: not running apt"
		return 0
	fi
	if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
		say "no apt-get/dpkg here: install these yourself: ${PACKAGES[*]}"
		return 0
	fi
	local p missing=()
	for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
	if ((${#missing[@]} == 0)); then
		say "all Debian packages present"
		return 0
	fi
	if [[ $(id -u) != 0 ]]; then
		say "missing packages (${missing[*]}) and not root: run as root, or install them yourself"
		return 1
	fi
	pkg_installed nginx-light && nginx_before=1
	pkg_installed nginx && nginx_before=1
	pkg_installed prometheus && prometheus_before=1
	if [[ ! -e $POLICY_RC ]]; then
		# invoke-rc.d and deb-systemd-invoke ask this script; 101 = "action forbidden".
		printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
		chmod 755 "$POLICY_RC"
		policy_made=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	local apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	say "installing: ${missing[*]}"
	apt-get update -q || say "apt-get update failed; trying with the current package lists"
	if ! apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}"; then
		# One of them may not exist in this archive (package names move): install one by one.
		say "bulk install failed; installing one by one"
		for p in "${missing[@]}"; do
			pkg_installed "$p" && continue
			apt-get install "${apt_opts[@]}" --no-install-recommends "$p" >/dev/null 2>&1 ||
				say "warning: could not install '$p' (skipped)"
		done
	fi
	if ((policy_made)); then
		rm -f "$POLICY_RC"
		policy_made=0
	fi
	((nginx_before)) || stop_started_nginx
	# Only promtool is wanted: the Prometheus server this install enabled is not left to start
	# at the next boot.
	if ((!prometheus_before)) && pkg_installed prometheus && command -v systemctl >/dev/null 2>&1; then
		systemctl disable prometheus >/dev/null 2>&1 || true
	fi
	local still=()
	for p in "${missing[@]}"; do pkg_installed "$p" || still+=("$p"); done
	((${#still[@]} == 0)) || say "warning: not installed: ${still[*]}"
	return 0
}

install_python_modules() {
	local m missing=()
	for m in "${PY_MODULES[@]}"; do python3 -c "import $m" >/dev/null 2>&1 || missing+=("$m"); done
	((${#missing[@]})) || return 0
	if ! python3 -m pip --version >/dev/null 2>&1; then
		say "warning: python3 has no pip: install these modules yourself: ${missing[*]}"
		return 0
	fi
	say "pip installing: ${missing[*]}"
	python3 -m pip install --quiet "${missing[@]}" || say "warning: pip could not install ${missing[*]}"
}

check_commands() {
	local c missing=()
	for c in ip ethtool taskset curl wrk ab nginx python3 clang hping3 tcpdump shellcheck memcached memcslap promtool; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	if ((${#missing[@]})); then
		say "warning: commands still missing: ${missing[*]}"
	fi
}

build_xgen() {
	local src out
	if ! src=$(xgen_source_dir); then
		say "xgen sources not found (XGEN_DIR=${XGEN_DIR:-unset}; tried ${XGEN_CANDIDATES[*]}): skipping;" \
			"benchmarks run wrk and synack load"
		return 0
	fi
	out="$ROOT/target/xgen"
	mkdir -p "$out"
	local f
	for f in Makefile xgen.c xgen_kern.c; do
		[[ -f $src/$f ]] || {
			say "xgen: $src/$f missing: skipping"
			return 0
		}
		if ! cmp -s "$src/$f" "$out/$f"; then
			rm -f "$out/$f"
			cp -p "$src/$f" "$out/$f"
		fi
	done
	say "building xgen from $src in $out"
	if make -s -C "$out" >"$out/build.log" 2>&1; then
		say "xgen: $out/xgen"
	else
		say "warning: xgen did not build (see $out/build.log): benchmarks run wrk and synack load"
		tail -n 5 "$out/build.log" >&2 || true
	fi
}

build_synack() {
	say "cargo build --release"
	run_cargo build --release
	say "synack: $ROOT/target/release/synack"
}

install_packages
install_python_modules
check_commands
((want_xgen)) && build_xgen
((want_cargo)) && build_synack
say "done"
