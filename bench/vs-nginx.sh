#!/usr/bin/env bash
# synack against nginx on the same test hosts, same pinning, same response body. See bench/README.md.
#
#   sudo bench/vs-nginx.sh [options]
#
#   --rounds N          rounds (default 3); each round runs every server, in alternating order
#   --duration S        seconds per measured run (default 10, at most 60)
#   --connections N     concurrent connections of the load generator (default 64)
#   --only SERVER       nginx or synack: run one server only (no ratio then)
#   --clients LIST      comma list of wrk,load,xgen (default wrk,load). load is `synack load`
#                       (this build's), xgen the external C generator (../shared/tools/xgen),
#                       skipped with the reason printed when it is not built
#   --workloads LIST    comma list of keepalive,close (default both)
#   --body TEXT         the response body (default 'hello from synack'), served by nginx with
#                       `return 200` and by synack with --body
#   --body-size N       instead: a file of N bytes, served by nginx from its root and by synack with
#                       --root, requested as /bench.txt
#   --queues N          veth queues, and synack --queues (default 1)
#   --synack-args ARGS  more arguments for `synack serve` (one string, split on spaces)
#   --family 4|6        the address family the clients use (default 4). 6: both ends of the bed
#                       get IPv6 addresses, nginx listens on [fd00:198:18::1], synack serves it,
#                       wrk and synack load connect to it; xgen (IPv4 only) is skipped. The report's name ends
#                       in -ipv6
#   --access-log        both servers write an access log into the raw directory: nginx with
#                       `access_log FILE combined`, synack with --access-log FILE (combined plus the
#                       request time); the report's name ends in -access-log
#   --log-cost          every round runs each server twice, without and with its access log (as
#                       --access-log), in rotating order: the report adds what the log costs each
#                       server and the ratio synack/nginx with logs over the ratio without, per round
#                       and as the median; the report's name ends in -log-cost
#   --rx-on-server-cpu  the server end's receive path runs on the server's CPU, as on a host whose NIC
#                       interrupts go to its own cores: RPS for the kernel's stack (nginx), and for
#                       XDP (synack) the veth's NAPI as a kernel thread pinned there, its CPU time
#                       counted as synack's. By default veth runs a server's receive path on the
#                       sender's CPU, the load generator's, so a server is spared part of its kernel
#                       work and may not fill its core; with this option both servers pay all of it on
#                       their core, the fair footing for comparing costs (--log-cost). The report's
#                       name ends in -rx-on-server-cpu
#   --warmup S          seconds of unmeasured wrk keep-alive load after each server start (default 1)
#   --pause S           seconds between runs (default 1)
#   --out DIR           where the report goes (default bench/results)
#
# Server on CPU 1, load generator on CPU 0 (taskset), one nginx worker. Per (server, client, workload)
# it reports medians of requests/s, p50 and p99 latency, the errors, the server core's busy share and
# the host's CPU steal, and the ratio synack/nginx of the medians. The report goes to
# DIR/<date>-<commit>.md and .json; raw outputs stay in DIR/tmp-<stamp>/ (not committed).
#
# Exit status: 0 done and no errors counted; 3 done but some run counted errors; 1 a run or a server
# failed; 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/testbed.sh
. "$ROOT/scripts/testbed.sh"
# shellcheck source=scripts/toolchain.sh
. "$ROOT/scripts/toolchain.sh"
# shellcheck source=scripts/harness.sh
. "$ROOT/scripts/harness.sh"

CMDLINE="$0$(printf ' %q' "$@")"
rounds=3 secs=10 conns=64 only='' clients=wrk,load workloads=keepalive,close
body='hello from synack' body_size='' queues=1 synack_args='' warmup=1 pause=1 out="$ROOT/bench/results"
access_log=no family=4 rx_on_server=no

usage() {
	sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
need_arg() { [[ $# -ge 2 && -n $2 ]] || {
	echo "vs-nginx: $1 needs a value" >&2
	exit 2
}; }
while (($#)); do
	case $1 in
	--rounds | --duration | --connections | --only | --clients | --workloads | --body | --body-size | \
		--queues | --synack-args | --warmup | --pause | --out | --family) need_arg "$@" ;;&
	--rounds) rounds=$2 ;;
	--duration) secs=$2 ;;
	--connections) conns=$2 ;;
	--only) only=$2 ;;
	--clients) clients=$2 ;;
	--workloads) workloads=$2 ;;
	--body) body=$2 ;;
	--body-size) body_size=$2 ;;
	--queues) queues=$2 ;;
	--synack-args) synack_args=$2 ;;
	--warmup) warmup=$2 ;;
	--pause) pause=$2 ;;
	--out) out=$2 ;;
	--family) family=$2 ;;
	--access-log)
		access_log=yes
		shift
		continue
		;;
	--log-cost)
		access_log=both
		shift
		continue
		;;
	--rx-on-server-cpu)
		rx_on_server=yes
		shift
		continue
		;;
	-h | --help) usage ;;
	*)
		echo "vs-nginx: unknown option '$1'" >&2
		usage
		;;
	esac
	shift 2
done

die() {
	echo "vs-nginx: $*" >&2
	exit 2
}
int_in() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2 && $1 <= $3)); }
int_in "$rounds" 1 50 || die "--rounds: 1-50"
int_in "$secs" 1 60 || die "--duration: 1-60 seconds"
int_in "$conns" 1 10000 || die "--connections: 1-10000"
int_in "$queues" 1 64 || die "--queues: 1-64"
int_in "$warmup" 0 30 || die "--warmup: 0-30 seconds"
int_in "$pause" 0 30 || die "--pause: 0-30 seconds"
[[ -z $body_size ]] || int_in "$body_size" 1 1048576 || die "--body-size: 1-1048576 bytes"
# nginx's `return 200 "..."` takes the text literally only without these characters.
if [[ -z $body_size && ( -z $body || $body =~ [\"\\\$\{\}\;] || $body == *$'\n'* ) ]]; then
	die "--body: give a non-empty text without \" \\ \$ { } ; or newlines (or use --body-size)"
fi
case $only in '' | nginx | synack) ;; *) die "--only: nginx or synack" ;; esac
case $family in 4 | 6) ;; *) die "--family: 4 or 6" ;; esac
IFS=, read -r -a CLIENTS <<<"$clients"
IFS=, read -r -a WORKLOADS <<<"$workloads"
for c in "${CLIENTS[@]}"; do [[ $c == wrk || $c == load || $c == xgen ]] || die "--clients: wrk, load and/or xgen"; done
for w in "${WORKLOADS[@]}"; do [[ $w == keepalive || $w == close ]] || die "--workloads: keepalive and/or close"; done
read -r -a SYNACK_EXTRA <<<"$synack_args"

[[ $(id -u) == 0 ]] || {
	echo "vs-nginx: run as root (namespaces, XDP): sudo $0" >&2
	exit 1
}
for c in ip taskset curl wrk nginx python3 timeout; do
	command -v "$c" >/dev/null 2>&1 || {
		echo "vs-nginx: $c is missing (scripts/setup.sh)" >&2
		exit 1
	}
done

SERVERS=(nginx synack)
[[ -n $only ]] && SERVERS=("$only")
if [[ $access_log == both ]]; then
	[[ -z $only ]] || die "--log-cost compares both servers: drop --only"
	SERVERS=(nginx synack nginx-log synack-log)
fi
if [[ $only != nginx || " ${CLIENTS[*]} " == *" load "* ]]; then
	SYNACK_BIN=$(synack_binary) || {
		echo "vs-nginx: (use --only nginx to run nginx alone)" >&2
		exit 1
	}
	if [[ -n $(find "$ROOT/src" "$ROOT/bpf" -newer "$SYNACK_BIN" -type f 2>/dev/null | head -n 1) ]]; then
		echo "vs-nginx: warning: $SYNACK_BIN is older than the sources (cargo build --release?)" >&2
	fi
fi
XGEN_BIN=
XGEN_NOTE=
for c in "${CLIENTS[@]}"; do
	[[ $c == xgen ]] || continue
	if [[ $family == 6 ]]; then
		XGEN_NOTE="xgen skipped: it speaks IPv4 only (--family 6)"
		echo "vs-nginx: $XGEN_NOTE" >&2
		continue
	fi
	if ! XGEN_BIN=$(xgen_binary 2>"${TMPDIR:-/tmp}/vs-nginx-xgen.$$"); then
		XGEN_NOTE="xgen skipped: $(cat "${TMPDIR:-/tmp}/vs-nginx-xgen.$$")"
		echo "vs-nginx: $XGEN_NOTE" >&2
		XGEN_BIN=
	fi
	rm -f "${TMPDIR:-/tmp}/vs-nginx-xgen.$$"
done
ACTIVE_CLIENTS=()
for c in "${CLIENTS[@]}"; do
	[[ $c == xgen && -z $XGEN_BIN ]] && continue
	ACTIVE_CLIENTS+=("$c")
done
((${#ACTIVE_CLIENTS[@]})) || die "no load generator left to run"

# --- where things go
commit=$(git -C "$ROOT" rev-parse --short=10 HEAD 2>/dev/null || echo nogit)
dirty=no
if [[ -n $(git -C "$ROOT" status --porcelain -- . ':!bench/results' 2>/dev/null) ]]; then dirty=yes; fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
out=$(cd "$out" && pwd)
RAW="$out/tmp-$stamp"
mkdir -p "$RAW"
base="$out/$(date -u +%Y-%m-%d)-$commit"
[[ $only == nginx ]] && base+="-nginx-only"
[[ $only == synack ]] && base+="-synack-only"
[[ $access_log == yes ]] && base+="-access-log"
[[ $access_log == both ]] && base+="-log-cost"
[[ $family == 6 ]] && base+="-ipv6"
[[ $rx_on_server == yes ]] && base+="-rx-on-server-cpu"
report=$base
for ((i = 2; i < 100; i++)); do
	[[ -e $report.md ]] || break
	report="$base-$i"
done

P=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	h_stop_all
	[[ -n $P ]] && tb_down "$P"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

P=$(tb_unique_prefix vsn) || exit 1
tb_names "$P"
tb_up "$P" "$queues" >/dev/null || exit 1
h_family "$family" || exit 1
# wrk in close mode closes first when the server's FIN comes after the response (it does with
# --rx-on-server-cpu): its ports then wait in TIME_WAIT, and once most of the range does, every
# connect() scans it (__inet_hash_connect) and the client collapses to a few hundred requests/s.
# Load generators reuse such ports; TCP timestamps (PAWS) keep that safe.
ip netns exec "$TB_CLI_NS" sysctl -qw net.ipv4.tcp_tw_reuse=1 || die "cannot set tcp_tw_reuse in $TB_CLI_NS"

# --- --rx-on-server-cpu: the server end's receive path on the server's CPU
SERVER_RX_PIDS=()
if [[ $rx_on_server == yes ]]; then
	# RPS: the kernel's stack takes the frames veth hands it on the server's CPU (each queue).
	ip netns exec "$TB_SRV_NS" sh -c "for q in /sys/class/net/$TB_SRV_IF/queues/rx-*; do
		printf %x $((1 << H_SERVER_CPU)) >\$q/rps_cpus || exit 1; done" ||
		die "--rx-on-server-cpu: cannot set rps_cpus on $TB_SRV_IF (a kernel without CONFIG_RPS?)"
fi
# server_rx_pin: once synack's XDP program is attached, veth receives through NAPI: make it a kernel
# thread (one per queue, "napi/IFACE-ID") and pin it to the server's CPU; SERVER_RX_PIDS lists them.
server_rx_pin() {
	SERVER_RX_PIDS=()
	[[ $rx_on_server == yes ]] || return 0
	if ! ip netns exec "$TB_SRV_NS" sh -c "echo 1 >/sys/class/net/$TB_SRV_IF/threaded"; then
		echo "vs-nginx: --rx-on-server-cpu: cannot make $TB_SRV_IF's NAPI threaded" >&2
		return 1
	fi
	local pid
	for pid in $(pgrep "^napi/$TB_SRV_IF-"); do
		taskset -pc "$H_SERVER_CPU" "$pid" >/dev/null || return 1
		SERVER_RX_PIDS+=("$pid")
	done
	if ((${#SERVER_RX_PIDS[@]} == 0)); then
		echo "vs-nginx: --rx-on-server-cpu: no NAPI thread of $TB_SRV_IF appeared" >&2
		return 1
	fi
}

# --- the body, the same bytes for both servers
WWW="$RAW/www"
mkdir -p "$WWW"
chmod 755 "$RAW" "$WWW"
if [[ -n $body_size ]]; then
	REQ_PATH=/bench.txt
	head -c "$body_size" /dev/zero | tr '\0' 'x' >"$WWW/bench.txt"
	NGINX_WWW=$WWW
	SYNACK_BODY_ARGS=(--root "$WWW")
else
	REQ_PATH=/
	printf '%s' "$body" >"$WWW/expected-body"
	NGINX_WWW=
	SYNACK_BODY_ARGS=(--body "$body")
fi
EXPECTED="$WWW/${REQ_PATH#/}"
[[ $REQ_PATH == / ]] && EXPECTED="$WWW/expected-body"

NGINX_DIR="$RAW/nginx"
mkdir -p "$NGINX_DIR"
NGINX_ACCESS_LOG=
SYNACK_LOG_ARGS=()
if [[ $access_log != no ]]; then
	NGINX_ACCESS_LOG="$RAW/nginx-access.log"
	SYNACK_LOG_ARGS=(--access-log "$RAW/synack-access.log")
fi
if [[ $access_log == both ]]; then
	# nginx without a log from NGINX_DIR, with its log from NGINX_DIR-log
	h_nginx_conf "$NGINX_DIR" "$body" "$NGINX_WWW" ""
	mkdir -p "$NGINX_DIR-log"
	h_nginx_conf "$NGINX_DIR-log" "$body" "$NGINX_WWW" "$NGINX_ACCESS_LOG"
else
	h_nginx_conf "$NGINX_DIR" "$body" "$NGINX_WWW" "$NGINX_ACCESS_LOG"
fi

# --- metadata
{
	printf 'command\t%s\n' "$CMDLINE"
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf 'commit\t%s\n' "$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo none)"
	printf 'dirty\t%s\n' "$dirty"
	printf 'kernel\t%s\n' "$(uname -r)"
	printf 'cpu_model\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	printf 'cpus\t%s\n' "$(nproc)"
	printf 'nginx\t%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
	printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }')"
	printf 'xgen\t%s\n' "${XGEN_BIN:-${XGEN_NOTE:-not asked for}}"
	[[ " ${CLIENTS[*]} " == *" load "* ]] && printf 'load\t%s load\n' "$SYNACK_BIN"
	printf 'synack\t%s\n' "${SYNACK_BIN:-not run}"
	[[ -n ${SYNACK_BIN:-} ]] && printf 'synack_built\t%s\n' "$(date -u -r "$SYNACK_BIN" '+%Y-%m-%d %H:%M:%S UTC')"
	printf 'rounds\t%s\n' "$rounds"
	printf 'duration_s\t%s\n' "$secs"
	printf 'connections\t%s\n' "$conns"
	printf 'queues\t%s\n' "$queues"
	printf 'access_log\t%s\n' "$access_log"
	printf 'family\t%s\n' "$family"
	printf 'rx_on_server_cpu\t%s\n' "$rx_on_server"
	printf 'server_addr\t%s\n' "$(h_srv_addr)"
	printf 'path\t%s\n' "$REQ_PATH"
	printf 'body_bytes\t%s\n' "$(stat -c %s "$EXPECTED")"
	printf 'server_cpu\t%s\n' "$H_SERVER_CPU"
	printf 'client_cpu\t%s\n' "$H_CLIENT_CPU"
	printf 'synack_args\t%s\n' "serve --iface $TB_SRV_IF --ip $(h_srv_addr) --port $H_PORT ${SYNACK_BODY_ARGS[*]} --queues $queues --cores $H_SERVER_CPU${SYNACK_LOG_ARGS[*]:+ ${SYNACK_LOG_ARGS[*]}}${SYNACK_EXTRA[*]:+ ${SYNACK_EXTRA[*]}}"
	printf 'nginx_conf\t%s\n' "$NGINX_DIR/nginx.conf"
	printf 'raw\t%s\n' "$RAW"
	printf 'loadavg_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RAW/meta.tsv"
printf 'round\tserver\tclient\tworkload\tstatus\toutput\tcpu_before\tcpu_after\n' >"$RAW/runs.tsv"
printf 'round\tserver\tevent\tdetail\n' >"$RAW/events.tsv"

event() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RAW/events.tsv"; }
failures=0

# start_server NAME ROUND: start it, check that it serves exactly the expected body.
start_server() {
	local s=$1 r=$2
	# with --log-cost, "nginx" and "synack" run without a log, "nginx-log" and "synack-log" with it
	local log_args=("${SYNACK_LOG_ARGS[@]}") nginx_dir=$NGINX_DIR
	if [[ $access_log == both ]]; then
		[[ $s == *-log ]] || log_args=()
		[[ $s == *-log ]] && nginx_dir=$NGINX_DIR-log
	fi
	case $s in
	nginx | nginx-log) h_start_nginx "$nginx_dir" "$RAW/$s-r$r.log" || return 1 ;;
	synack | synack-log)
		h_start_synack "$RAW/$s-r$r.log" --iface "$TB_SRV_IF" --ip "$(h_srv_addr)" --port "$H_PORT" \
			"${SYNACK_BODY_ARGS[@]}" --queues "$queues" --cores "$H_SERVER_CPU" "${log_args[@]}" \
			"${SYNACK_EXTRA[@]}" || return 1
		server_rx_pin || return 1
		;;
	esac
	local head_file="$RAW/response-$s.head" got="$RAW/response-$s.body"
	if ! ip netns exec "$TB_CLI_NS" curl -sS -m 5 -D "$head_file" -o "$got" "http://$(h_srv_host):$H_PORT$REQ_PATH"; then
		echo "vs-nginx: $s: the check request failed" >&2
		return 1
	fi
	if ! cmp -s "$got" "$EXPECTED"; then
		echo "vs-nginx: $s: the body differs from the expected $(stat -c %s "$EXPECTED") bytes (got $(stat -c %s "$got"))" >&2
		return 1
	fi
	if ! head -n 1 "$head_file" | grep -q '^HTTP/1\.1 200'; then
		echo "vs-nginx: $s: status is not 200: $(head -n 1 "$head_file")" >&2
		return 1
	fi
}

server_pid() { if [[ $1 == nginx* ]]; then echo "$H_NGINX_PID"; else echo "$H_SYNACK_PID"; fi; }
# server_cpu_pids NAME: what the server's CPU time is read from (synack's NAPI threads with --rx-on-server-cpu)
server_cpu_pids() {
	server_pid "$1"
	if [[ $1 == synack* ]] && ((${#SERVER_RX_PIDS[@]})); then printf '%s\n' "${SERVER_RX_PIDS[@]}"; fi
}

load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 1.0) }'; then
	echo "vs-nginx: warning: load average $load1 before the first run: other work is using the CPUs;" \
		"rates will be low and noisy (the report shows how much per run)" >&2
fi
total_runs=$((rounds * ${#SERVERS[@]} * ${#ACTIVE_CLIENTS[@]} * ${#WORKLOADS[@]}))
echo "vs-nginx: $total_runs runs of ${secs}s (${SERVERS[*]} x ${ACTIVE_CLIENTS[*]} x ${WORKLOADS[*]} x $rounds rounds)," \
	"about $(((total_runs * (secs + pause + 2) + rounds * ${#SERVERS[@]} * (warmup + 3)) / 60 + 1)) min; raw output in $RAW"
n=0
for ((r = 1; r <= rounds; r++)); do
	order=("${SERVERS[@]}")
	if ((${#SERVERS[@]} == 2 && r % 2 == 0)); then order=("${SERVERS[1]}" "${SERVERS[0]}"); fi
	if ((${#SERVERS[@]} == 4)); then
		# rotate, so that each server runs first, second... in turn
		k=$(((r - 1) % 4))
		order=("${SERVERS[@]:k}" "${SERVERS[@]:0:k}")
	fi
	for s in "${order[@]}"; do
		if ! start_server "$s" "$r"; then
			event "$r" "$s" start-failed "see $RAW/$s-r$r.log"
			failures=$((failures + 1))
			h_stop "$(server_pid "$s")" 5 || true
			continue
		fi
		event "$r" "$s" started "pid $(server_pid "$s")"
		if ((warmup > 0)); then h_run_wrk "$RAW/warmup-r$r-$s.out" "$warmup" "$conns" keepalive "$REQ_PATH" || true; fi
		for c in "${ACTIVE_CLIENTS[@]}"; do
			for w in "${WORKLOADS[@]}"; do
				n=$((n + 1))
				o="$RAW/r$r-$s-$c-$w.out"
				sleep "$pause"
				mapfile -t cpu_pids < <(server_cpu_pids "$s")
				h_cpu_snap "$o.cpu0" "${cpu_pids[@]}"
				st=0
				if [[ $c == wrk ]]; then
					h_run_wrk "$o" "$secs" "$conns" "$w" "$REQ_PATH" || st=$?
				elif [[ $c == load ]]; then
					h_run_load "$SYNACK_BIN" "$o" "$secs" "$conns" "$w" "$REQ_PATH" || st=$?
				else
					h_run_xgen "$XGEN_BIN" "$o" "$secs" "$conns" "$w" "$REQ_PATH" || st=$?
				fi
				h_cpu_snap "$o.cpu1" "${cpu_pids[@]}"
				printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$c" "$w" "$st" "$o" "$o.cpu0" "$o.cpu1" >>"$RAW/runs.tsv"
				line=$(python3 "$ROOT/scripts/loadgen.py" "$c" "$o" 2>/dev/null) || line="no result (status $st)"
				printf '  [%d/%d] round %d %-6s %-4s %-9s %s\n' "$n" "$total_runs" "$r" "$s" "$c" "$w" \
					"$(awk -F'\t' 'NF == 4 { printf "%.0f req/s  p50 %s us  p99 %s us  errors %s", $1, $2, $3, $4; next } { print }' <<<"$line")"
				if ! h_alive "$(server_pid "$s")"; then
					echo "vs-nginx: $s died during the run" >&2
					event "$r" "$s" died "during $c $w"
					failures=$((failures + 1))
					break 2
				fi
			done
		done
		st=0
		h_stop "$(server_pid "$s")" 10 || st=$?
		event "$r" "$s" stopped "exit status $st"
		if [[ $access_log == yes || $s == *-log ]]; then
			f=$NGINX_ACCESS_LOG
			[[ $s == synack* ]] && f=$RAW/synack-access.log
			event "$r" "$s" access-log "$(wc -l <"$f" 2>/dev/null || echo 0) lines so far in $f"
		fi
		((st == 0)) || {
			echo "vs-nginx: $s exited with status $st" >&2
			failures=$((failures + 1))
		}
	done
done

printf 'loadavg_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.tsv"
sum_rc=0
python3 "$ROOT/bench/summarize.py" "$RAW" "$report" || sum_rc=$?
if ((failures)); then
	echo "vs-nginx: $failures failure(s): see $RAW/events.tsv" >&2
	exit 1
fi
((sum_rc == 0 || sum_rc == 3)) || exit 1
exit "$sum_rc"
