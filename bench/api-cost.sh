#!/usr/bin/env bash
# What the library API costs: `synack serve --body` (the built-in responder) against an example
# built on the public API (default examples/hello_json: a dynamic HTTP handler), in one run, on
# the same test hosts and pinning as bench/vs-nginx.sh. Issue 8 asks for them within 10%.
#
#   sudo bench/api-cost.sh [--rounds N] [--duration S] [--connections N] [--clients wrk,load,xgen]
#                          [--workloads keepalive,close] [--example NAME] [--baseline BIN] [--out DIR]
#
# --baseline BIN compares against `BIN serve --body` instead of an example: a synack binary built
# from another commit, to measure (or bisect) a regression of the datapath in one run.
#
# Rounds alternate the order of the two servers. Per (server, client, workload) it prints the
# median requests/s and the ratio example/serve, and writes DIR/<date>-<commit>-api-cost.md
# (default DIR bench/results) with the command, the commit and every run.
#
# Exit status: 0 done, no errors; 3 done but some run counted errors; 1 a server failed; 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/testbed.sh
. "$ROOT/scripts/testbed.sh"
# shellcheck source=scripts/toolchain.sh
. "$ROOT/scripts/toolchain.sh"
# shellcheck source=scripts/harness.sh
. "$ROOT/scripts/harness.sh"

CMDLINE="$0$(printf ' %q' "$@")"
rounds=3 secs=8 conns=64 clients=wrk,load workloads=keepalive,close example=hello_json baseline=
out="$ROOT/bench/results"
usage() {
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while (($#)); do
	[[ $1 == -h || $1 == --help ]] && usage
	[[ $# -ge 2 && -n $2 ]] || usage
	case $1 in
	--rounds) rounds=$2 ;;
	--duration) secs=$2 ;;
	--connections) conns=$2 ;;
	--clients) clients=$2 ;;
	--workloads) workloads=$2 ;;
	--example) example=$2 ;;
	--baseline) baseline=$2 ;;
	--out) out=$2 ;;
	*)
		echo "api-cost: unknown option '$1'" >&2
		usage
		;;
	esac
	shift 2
done
[[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 20 ]] || usage
[[ $secs =~ ^[0-9]+$ && $secs -ge 1 && $secs -le 60 ]] || usage
[[ $(id -u) == 0 ]] || {
	echo "api-cost: run as root (namespaces, XDP): sudo $0" >&2
	exit 1
}
IFS=, read -r -a CLIENTS <<<"$clients"
IFS=, read -r -a WORKLOADS <<<"$workloads"
SYNACK_BIN=$(synack_binary) || exit 1
if [[ -n $baseline ]]; then
	EXAMPLE_BIN=$(realpath "$baseline" 2>/dev/null) || EXAMPLE_BIN=
	if [[ -z $EXAMPLE_BIN || ! -x $EXAMPLE_BIN ]]; then
		echo "api-cost: --baseline $baseline is not an executable synack binary" >&2
		exit 1
	fi
	example=baseline
else
	EXAMPLE_BIN="$ROOT/target/release/examples/$example"
	[[ -x $EXAMPLE_BIN ]] || {
		echo "api-cost: $EXAMPLE_BIN is missing: cargo build --release --examples" >&2
		exit 1
	}
fi
XGEN_BIN=
for c in "${CLIENTS[@]}"; do
	if [[ $c == xgen ]]; then XGEN_BIN=$(xgen_binary) || exit 1; fi
done

commit=$(git -C "$ROOT" rev-parse --short=10 HEAD 2>/dev/null || echo nogit)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
out=$(cd "$out" && pwd)
RAW="$out/tmp-$stamp"
mkdir -p "$RAW"
report="$out/$(date -u +%Y-%m-%d)-$commit-api-cost.md"
[[ -n $baseline ]] && report="$out/$(date -u +%Y-%m-%d)-$commit-vs-baseline.md"

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
P=$(tb_unique_prefix api) || exit 1
tb_names "$P"
tb_up "$P" 1 >/dev/null || exit 1

# start NAME ROUND: start the server, wait for its ready line and a 200 answer.
start() {
	local s=$1 r=$2 log="$RAW/$1-r$2.log" bin args
	if [[ $s == serve ]]; then
		bin=$SYNACK_BIN
		args=(serve --body 'hello from synack')
	elif [[ -n $baseline ]]; then
		bin=$EXAMPLE_BIN
		args=(serve --body 'hello from synack')
	else
		bin=$EXAMPLE_BIN
		args=()
	fi
	h_start_bg "$log" ip netns exec "$TB_SRV_NS" taskset -c "$H_SERVER_CPU" "$bin" "${args[@]}" \
		--iface "$TB_SRV_IF" --ip "$TB_SRV_IP" --port "$H_PORT" --cores "$H_SERVER_CPU" --quiet
	PID=$H_LAST_PID
	h_wait_line "$PID" "$log" "$H_READY_LINE" 20 || {
		tail -n 20 "$log" >&2
		return 1
	}
	ip netns exec "$TB_CLI_NS" curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://$TB_SRV_IP:$H_PORT/" |
		grep -q 200
}

printf 'round\tserver\tclient\tworkload\trps\tp50_us\tp99_us\terrors\n' >"$RAW/runs.tsv"
errors=0
for ((r = 1; r <= rounds; r++)); do
	order=(serve "$example")
	((r % 2 == 0)) && order=("$example" serve)
	for s in "${order[@]}"; do
		start "$s" "$r" || {
			echo "api-cost: $s failed to start" >&2
			exit 1
		}
		h_run_wrk "$RAW/warmup-$s-r$r.out" 1 "$conns" keepalive / || true
		for c in "${CLIENTS[@]}"; do
			for w in "${WORKLOADS[@]}"; do
				o="$RAW/r$r-$s-$c-$w.out"
				sleep 1
				if [[ $c == wrk ]]; then
					h_run_wrk "$o" "$secs" "$conns" "$w" / || true
				elif [[ $c == load ]]; then
					# The client is always this build's `synack load`, whichever server runs.
					h_run_load "$SYNACK_BIN" "$o" "$secs" "$conns" "$w" / || true
				else
					h_run_xgen "$XGEN_BIN" "$o" "$secs" "$conns" "$w" / || true
				fi
				line=$(python3 "$ROOT/scripts/loadgen.py" "$c" "$o") || line=$'nan\tnan\tnan\t1'
				printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$c" "$w" "$line" >>"$RAW/runs.tsv"
				printf '  round %d %-11s %-4s %-9s %s\n' "$r" "$s" "$c" "$w" "$line"
				e=$(cut -f4 <<<"$line")
				[[ $e == 0 ]] || errors=$((errors + 1))
			done
		done
		h_stop "$PID" 10 || {
			echo "api-cost: $s did not exit cleanly (see $RAW/$s-r$r.log)" >&2
			exit 1
		}
	done
done

python3 - "$RAW/runs.tsv" "$example" "$CMDLINE" "$(git -C "$ROOT" rev-parse HEAD)" "$EXAMPLE_BIN" >"$report" <<'PY'
import csv, statistics, sys
path, example, cmd, commit, other = sys.argv[1:6]
rows = list(csv.DictReader(open(path), delimiter="\t"))
if example == "baseline":
    print(f"# synack serve --body: this build vs a baseline build\n")
else:
    print(f"# API cost: synack serve --body vs examples/{example}\n")
print(f"- command: `{cmd}`\n- commit: {commit}\n- other server: {other}\n")
if example == "baseline":
    print("| client | workload | this build req/s | baseline req/s | this build / baseline |")
else:
    print(f"| client | workload | serve req/s | {example} req/s | {example} / serve |")
print("|---|---|---|---|---|")
keys = sorted({(r["client"], r["workload"]) for r in rows})
for c, w in keys:
    med = {}
    for s in ("serve", example):
        v = [float(r["rps"]) for r in rows if (r["client"], r["workload"], r["server"]) == (c, w, s)]
        med[s] = statistics.median(v) if v else float("nan")
    ratio = med['serve'] / med[example] if example == "baseline" else med[example] / med['serve']
    print(f"| {c} | {w} | {med['serve']:.0f} | {med[example]:.0f} | {ratio:.3f} |")
print("\n## Runs\n\n| round | server | client | workload | req/s | p50 us | p99 us | errors |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['round']} | {r['server']} | {r['client']} | {r['workload']} | {r['rps']} | {r['p50_us']} | {r['p99_us']} | {r['errors']} |")
PY
cat "$report"
rm -rf "$RAW"
((errors == 0)) || exit 3
