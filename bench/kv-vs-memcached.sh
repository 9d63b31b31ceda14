#!/usr/bin/env bash
# examples/kv against memcached (one thread) on the same test hosts, same pinning, driven by
# memcslap (Debian libmemcached-tools). Seastar's memcached is the anchor of this comparison.
#
#   sudo bench/kv-vs-memcached.sh [options]
#
#   --rounds N        rounds (default 3); each round runs both servers, in alternating order
#   --execute N       memcslap --execute-number per thread (default 20000)
#   --concurrency N   memcslap threads, one connection each (default 4)
#   --tests LIST      comma list of memcslap tests: set,get,mget (default all three)
#   --out DIR         where the report goes (default bench/results)
#
# The server runs on CPU 1 (memcached -t 1; kv with one worker, --cores 1), memcslap on CPU 0
# (taskset), as bench/vs-nginx.sh pins. memcached listens on the server namespace's kernel stack,
# kv on the AF_XDP path, both on port 11211; one runs at a time. Per (server, test) the report has
# the median operations/s (requests made / memcslap's time) and the ratio kv/memcached. The report goes to
# DIR/<date>-<commit>-kv.md with the command line and the commit; raw memcslap outputs stay in
# DIR/tmp-kv-<stamp>/ (not committed).
#
# Exit status: 0 done; 1 a run or a server failed; 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/testbed.sh
. "$ROOT/scripts/testbed.sh"
# shellcheck source=scripts/toolchain.sh
. "$ROOT/scripts/toolchain.sh"
# shellcheck source=scripts/harness.sh
. "$ROOT/scripts/harness.sh"

CMDLINE="$0$(printf ' %q' "$@")"
rounds=3 execute=20000 conc=4 tests=set,get,mget out="$ROOT/bench/results"
usage() {
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while (($#)); do
	case $1 in
	--rounds | --execute | --concurrency | --tests | --out)
		[[ $# -ge 2 && -n $2 ]] || usage
		;;&
	--rounds) rounds=$2 ;;
	--execute) execute=$2 ;;
	--concurrency) conc=$2 ;;
	--tests) tests=$2 ;;
	--out) out=$2 ;;
	-h | --help) usage ;;
	*)
		echo "kv-vs-memcached: unknown option '$1'" >&2
		usage
		;;
	esac
	shift 2
done
int_in() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2 && $1 <= $3)); }
int_in "$rounds" 1 50 || usage
int_in "$execute" 100 10000000 || usage
int_in "$conc" 1 256 || usage
IFS=, read -r -a TESTS <<<"$tests"
for t in "${TESTS[@]}"; do [[ $t == set || $t == get || $t == mget ]] || usage; done

[[ $(id -u) == 0 ]] || {
	echo "kv-vs-memcached: run as root (namespaces, XDP): sudo $0" >&2
	exit 1
}
for c in ip taskset memcached memcslap timeout; do
	command -v "$c" >/dev/null 2>&1 || {
		echo "kv-vs-memcached: $c is missing (scripts/setup.sh --deps-only)" >&2
		exit 1
	}
done

# The example, built with the release profile.
(cd "$ROOT" && cargo build --release --quiet --example kv)
KV_BIN="$ROOT/target/release/examples/kv"
commit=$(git -C "$ROOT" rev-parse --short=10 HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$ROOT" status --porcelain -- src examples 2>/dev/null) ]] || commit+="-dirty"
mkdir -p "$out"
RAW="$out/tmp-kv-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$RAW"
report="$out/$(date -u +%Y-%m-%d)-$commit-kv.md"

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

P=$(tb_unique_prefix bkv) || exit 1
tb_names "$P"
tb_up "$P" 1 >/dev/null || exit 1
MC_PORT=11211

# start_server NAME LOG: memcached or kv on CPU 1, ready to take connections.
start_server() {
	local name=$1 log=$2 i
	if [[ $name == memcached ]]; then
		h_start_bg "$log" ip netns exec "$TB_SRV_NS" taskset -c "$H_SERVER_CPU" \
			memcached -U 0 -p "$MC_PORT" -l "$TB_SRV_IP" -u root -t 1
	else
		h_start_bg "$log" ip netns exec "$TB_SRV_NS" taskset -c "$H_SERVER_CPU" "$KV_BIN" \
			--iface "$TB_SRV_IF" --ip "$TB_SRV_IP" --port "$MC_PORT" --cores "$H_SERVER_CPU" --quiet
		h_wait_line "$H_LAST_PID" "$log" "$H_READY_LINE" 20 || {
			h_log "kv did not start:"
			tail -n 5 "$log" >&2
			return 1
		}
	fi
	for ((i = 0; i < 100; i++)); do
		if ip netns exec "$TB_CLI_NS" timeout 2 memcslap -s "$TB_SRV_IP:$MC_PORT" -t set -c 1 -e 1 \
			>/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	h_log "$name does not answer on $TB_SRV_IP:$MC_PORT"
	return 1
}

# run_memcslap TEST OUT: one memcslap run on CPU 0; prints operations/s: the requests made
# (threads x --execute-number) over memcslap's time (its key count is of hits, which depends on
# what the server's eviction kept).
run_memcslap() {
	local t=$1 f=$2 secs
	ip netns exec "$TB_CLI_NS" timeout 300 taskset -c "$H_CLIENT_CPU" memcslap \
		-s "$TB_SRV_IP:$MC_PORT" -t "$t" -c "$conc" -e "$execute" -N >"$f" 2>&1 || {
		h_log "memcslap -t $t failed:"
		tail -n 5 "$f" >&2
		return 1
	}
	if grep -q "Failed" "$f"; then
		h_log "memcslap -t $t reported failures:"
		grep -m 3 "Failed" "$f" >&2
		return 1
	fi
	secs=$(awk -v t="$t" '$1 == "Time" && $2 == "to" && $3 == t && $6 == "by" { print $(NF-1) }' "$f")
	[[ -n ${secs:-} ]] || {
		h_log "no result line in $f"
		return 1
	}
	awk -v n="$((conc * execute))" -v s="$secs" 'BEGIN { if (s <= 0) s = 0.0005; printf "%.0f\n", n / s }'
}

declare -A RESULTS=()
order=(memcached kv)
for ((r = 1; r <= rounds; r++)); do
	for name in "${order[@]}"; do
		start_server "$name" "$RAW/$name-$r.log" || exit 1
		pid=$H_LAST_PID
		for t in "${TESTS[@]}"; do
			ops=$(run_memcslap "$t" "$RAW/$name-$t-$r.txt") || exit 1
			RESULTS[$name,$t]+="$ops "
			h_log "round $r $name $t: $ops ops/s"
		done
		h_stop "$pid" 15 || true
	done
	order=("${order[1]}" "${order[0]}")
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# shellcheck disable=SC2016  # the backquotes are Markdown
{
	printf '# kv vs memcached (memcslap)\n\n'
	printf -- '- command: `%s`\n' "$CMDLINE"
	printf -- '- commit: %s\n' "$commit"
	printf -- '- date: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf -- '- memcached: %s, `-t 1`, kernel TCP stack; kv: one worker (AF_XDP, %s)\n' \
		"$(memcached -V 2>/dev/null)" "$(grep -o 'XDP [a-z]* mode' "$RAW/kv-1.log" | head -n 1)"
	printf -- '- server on CPU %s, memcslap on CPU %s; memcslap -c %s -e %s -N; %s rounds, alternating\n\n' \
		"$H_SERVER_CPU" "$H_CLIENT_CPU" "$conc" "$execute" "$rounds"
	printf '| test | memcached ops/s (median) | kv ops/s (median) | kv / memcached | runs memcached | runs kv |\n'
	printf '|---|---:|---:|---:|---|---|\n'
	for t in "${TESTS[@]}"; do
		m=$(median <<<"${RESULTS[memcached,$t]}")
		k=$(median <<<"${RESULTS[kv,$t]}")
		ratio=$(awk -v m="$m" -v k="$k" 'BEGIN { printf "%.2f", (m > 0 ? k / m : 0) }')
		printf '| %s | %s | %s | %s | %s| %s|\n' "$t" "$m" "$k" "$ratio" \
			"${RESULTS[memcached,$t]}" "${RESULTS[kv,$t]}"
	done
} >"$report"
cat "$report"
h_log "report: $report (raw outputs in $RAW)"
