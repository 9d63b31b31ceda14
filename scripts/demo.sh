#!/usr/bin/env bash
# synack in one command: set up, start two test hosts, serve, talk to it with curl and wrk, stop.
#
#   sudo scripts/demo.sh [--no-setup] [--duration S] [--keep-log]
#
#   --no-setup     do not run scripts/setup.sh first (packages and build already done)
#   --duration S   seconds per wrk run (default 5)
#   --keep-log     keep the temporary directory with synack's and wrk's output
#
# What it does: scripts/setup.sh (packages, xgen, cargo build --release); two network namespaces
# joined by a veth pair (scripts/testbed.sh); synack serving 'hello from synack' on 198.18.0.1:8080
# in the server namespace, pinned to CPU 1; from the client namespace: curl GET, HEAD and a missing
# path, then wrk (pinned to CPU 0, 1 thread, 64 connections) with keep-alive and with
# `Connection: close`; SIGTERM to synack and its final statistics. Everything it started is stopped
# and the namespaces are removed on exit, also on Ctrl-C or failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/testbed.sh
. "$ROOT/scripts/testbed.sh"
# shellcheck source=scripts/toolchain.sh
. "$ROOT/scripts/toolchain.sh"
# shellcheck source=scripts/harness.sh
. "$ROOT/scripts/harness.sh"

run_setup=1 secs=5 keep=0
while (($#)); do
	case $1 in
	--no-setup) run_setup=0 ;;
	--duration)
		secs=${2:-}
		shift
		;;
	--keep-log) keep=1 ;;
	-h | --help)
		sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "demo: unknown option '$1' (see --help)" >&2
		exit 2
		;;
	esac
	shift
done
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs < 1 || secs > 60)); then
	echo "demo: --duration takes 1-60 seconds" >&2
	exit 2
fi
if [[ $(id -u) != 0 ]]; then
	echo "demo: run as root (it creates network namespaces and attaches XDP): sudo $0" >&2
	exit 1
fi

BODY='hello from synack'
step() { printf '\n== %s\n' "$*"; }
fail() {
	printf 'demo: FAILED: %s\n' "$*" >&2
	exit 1
}

P=
TMP=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	h_stop_all
	[[ -n $P ]] && tb_down "$P"
	if [[ -n $TMP ]]; then
		if ((keep || rc != 0)); then echo "demo: output kept in $TMP" >&2; else rm -rf "$TMP"; fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((run_setup)); then
	step "setup (scripts/setup.sh)"
	"$ROOT/scripts/setup.sh" --no-xgen
fi
BIN=$(synack_binary) || fail "no synack binary"
for c in curl wrk taskset ip; do command -v "$c" >/dev/null || fail "$c not installed (scripts/setup.sh)"; done
if (($(nproc) < 2)); then echo "demo: note: fewer than 2 CPUs; pinning to CPUs 0 and 1 will fail" >&2; fi

TMP=$(mktemp -d /tmp/synack-demo.XXXXXX)
P=$(tb_unique_prefix sdemo) || fail "no free namespace prefix"
tb_names "$P"

step "test hosts: $TB_SRV_NS ($TB_SRV_IP) <-> $TB_CLI_NS ($TB_CLI_IP)"
tb_up "$P" 1 || fail "could not create the test hosts"

step "synack check --iface $TB_SRV_IF"
if ! ip netns exec "$TB_SRV_NS" "$BIN" check --iface "$TB_SRV_IF" 2>&1 | sed 's/^/  /'; then
	echo "  (synack check reported a problem; trying to serve anyway)"
fi

step "synack serve on $TB_SRV_IP and [$TB_SRV_IP6], port $H_PORT, CPU $H_SERVER_CPU"
# Serve a small site from memory (--root), so that a missing page gets its 404.
mkdir -p "$TMP/www"
printf '%s' "$BODY" >"$TMP/www/index.html"
h_start_synack "$TMP/synack.log" --iface "$TB_SRV_IF" --ip "$TB_SRV_IP" --ip "$TB_SRV_IP6" --port "$H_PORT" --root "$TMP/www" ||
	fail "synack did not start"
echo "  pid $H_SYNACK_PID: $(grep -F -m1 "$H_READY_LINE" "$TMP/synack.log")"

# demo_verdict: prints each check's result from RESULT and fails unless every one passed (a wrk
# run passes with 0 errors). One list, so that no check is printed without counting.
# (scripts/test_loadgen.py runs this function on its own.)
demo_verdict() {
	local k bad=0
	for k in get get-ipv6 head 404 wrk-keepalive wrk-close load-keepalive load-close exit; do
		printf '  %-14s %s\n' "$k" "${RESULT[$k]:-not run}"
		case $k in
		wrk-* | load-*) [[ ${RESULT[$k]:-} == *", 0 errors" ]] || bad=1 ;;
		*) [[ ${RESULT[$k]:-} == ok ]] || bad=1 ;;
		esac
	done
	return "$bad"
}

URL="http://$TB_SRV_IP:$H_PORT"
cli() { ip netns exec "$TB_CLI_NS" "$@"; }
declare -A RESULT=()

step "curl -v $URL/"
got=$(cli curl -sS -v -m 5 "$URL/" 2>"$TMP/curl-v.err") || true
sed -n 's/^\([<>*]\)/  \1/p' "$TMP/curl-v.err" | grep -v '^  \* *$' || true
printf '  body: %s\n' "$got"
if [[ $got == "$BODY" ]]; then RESULT[get]=ok; else RESULT[get]="FAILED (body '${got:0:60}')"; fi

URL6="http://[$TB_SRV_IP6]:$H_PORT"
step "curl $URL6/ (IPv6, same server)"
got6=$(cli curl -sS -m 5 "$URL6/" 2>&1) || true
printf '  body: %s\n' "$got6"
if [[ $got6 == "$BODY" ]]; then RESULT[get-ipv6]=ok; else RESULT[get-ipv6]="FAILED (body '${got6:0:60}')"; fi

step "curl --head $URL/"
head_out=$(cli curl -sS -I -m 5 "$URL/" 2>&1) || true
printf '%s\n' "$head_out" | tr -d '\r' | sed 's/^/  /'
if [[ $head_out =~ ^HTTP/1\.1\ 200 ]]; then RESULT[head]=ok; else RESULT[head]=FAILED; fi

step "curl $URL/no-such-page"
code=$(cli curl -sS -o /dev/null -w '%{http_code}' -m 5 "$URL/no-such-page" 2>&1) || true
echo "  status: $code"
if [[ $code == 404 ]]; then RESULT[404]=ok; else RESULT[404]="got '$code', expected 404"; fi

wrk_run() {
	local mode=$1 name=$2 line rps p50 p99 err
	step "wrk -t1 -c64 -d${secs}s ($mode), CPU $H_CLIENT_CPU"
	if ! h_run_wrk "$TMP/wrk-$mode.out" "$secs" 64 "$mode" /; then
		sed 's/^/  /' "$TMP/wrk-$mode.out"
		RESULT[$name]="FAILED (wrk)"
		return 0
	fi
	sed 's/^/  /' "$TMP/wrk-$mode.out"
	if line=$(python3 "$ROOT/scripts/loadgen.py" wrk "$TMP/wrk-$mode.out"); then
		read -r rps p50 p99 err <<<"$line"
		RESULT[$name]=$(printf '%.0f requests/s, p50 %s us, p99 %s us, %s errors' "$rps" "$p50" "$p99" "$err")
	else
		RESULT[$name]="FAILED (no result in wrk's output)"
	fi
}
wrk_run keepalive wrk-keepalive
wrk_run close wrk-close

load_run() {
	local mode=$1 name=$2 line rps p50 p99 err
	step "synack load -c64 -d$secs --mode $mode (synack's own AF_XDP client), CPU $H_CLIENT_CPU"
	if ! h_run_load "$BIN" "$TMP/load-$mode.out" "$secs" 64 "$mode" /; then
		sed 's/^/  /' "$TMP/load-$mode.out"
		RESULT[$name]="FAILED (synack load)"
		return 0
	fi
	sed 's/^/  /' "$TMP/load-$mode.out"
	if line=$(python3 "$ROOT/scripts/loadgen.py" load "$TMP/load-$mode.out"); then
		read -r rps p50 p99 err <<<"$line"
		RESULT[$name]=$(printf '%.0f requests/s, p50 %s us, p99 %s us, %s errors' "$rps" "$p50" "$p99" "$err")
	else
		RESULT[$name]="FAILED (no result in synack load's output)"
	fi
}
load_run keepalive load-keepalive
load_run close load-close

step "SIGTERM to synack (pid $H_SYNACK_PID)"
lines_before=$(wc -l <"$TMP/synack.log")
rc=0
h_stop "$H_SYNACK_PID" 10 || rc=$?
echo "  exit status: $rc"
echo "  final statistics:"
tail -n +"$((lines_before + 1))" "$TMP/synack.log" | sed 's/^/    /'
if ((rc == 0)); then RESULT[exit]=ok; else RESULT[exit]="exit status $rc (expected 0)"; fi

step "summary"
if ! demo_verdict; then
	echo "demo: something did not work (see above)"
	exit 1
fi
echo "demo: all good"
