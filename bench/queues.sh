#!/usr/bin/env bash
# synack with one queue (one worker, one core) against synack with two queues (two workers on
# both cores), on the same two-queue veth pair. The report explains what the numbers can and
# cannot say on a two-core machine ("Read this first").
#
#   sudo bench/queues.sh [options]
#
#   --rounds N          rounds (default 3); each round runs both configurations, alternating
#                       which goes first
#   --duration S        seconds per measured run (default 10, at most 60)
#   --connections N     concurrent connections (default 128)
#   --threads N         wrk threads (default 2)
#   --clients LIST      comma list of wrk,load,xgen (default wrk,load; load is `synack load` of
#                       this build; xgen is skipped, with the reason printed, when it is not built)
#   --workloads LIST    comma list of keepalive,close (default both)
#   --body TEXT         the response body (default 'hello from synack')
#   --synack-args ARGS  more arguments for both `synack serve` configurations
#   --warmup S          seconds of unmeasured wrk keep-alive load after each start (default 1)
#   --pause S           seconds between runs (default 1)
#   --out DIR           where the report goes (default bench/results)
#
# Configurations (the veth pair has two queues; `ethtool -L` sets how many are active):
#   q1: 1 active queue on each end, synack --queues 1 --cores 1     (whole process on CPU 1)
#   q2: 2 active queues on each end, synack --queues 2 --cores 1,0  (worker 0 on CPU 1, worker 1 on 0)
# wrk runs with -t2 on CPUs 0 and 1 (it shares both cores with synack in q2); synack load and xgen
# run on CPU 0 and bind queue 0 only. Per run: requests/s, p50/p99, errors, CPU, and how the frames split
# between the workers (from --metrics). The report goes to DIR/<date>-<commit>-queues.md; raw
# outputs stay in DIR/tmp-queues-<stamp>/ (not committed).
#
# Exit status: 0 done and no errors counted; 3 done but some run counted errors; 1 a run or the
# server failed; 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/testbed.sh
. "$ROOT/scripts/testbed.sh"
# shellcheck source=scripts/toolchain.sh
. "$ROOT/scripts/toolchain.sh"
# shellcheck source=scripts/harness.sh
. "$ROOT/scripts/harness.sh"

CMDLINE="$0$(printf ' %q' "$@")"
rounds=3 secs=10 conns=128 threads=2 clients=wrk,load workloads=keepalive,close
body='hello from synack' synack_args='' warmup=1 pause=1 out="$ROOT/bench/results"
METRICS=127.0.0.1:9100

usage() {
	sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "queues: $*" >&2
	exit 2
}
while (($#)); do
	case $1 in
	--rounds | --duration | --connections | --threads | --clients | --workloads | --body | \
		--synack-args | --warmup | --pause | --out)
		[[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
		;;&
	--rounds) rounds=$2 ;;
	--duration) secs=$2 ;;
	--connections) conns=$2 ;;
	--threads) threads=$2 ;;
	--clients) clients=$2 ;;
	--workloads) workloads=$2 ;;
	--body) body=$2 ;;
	--synack-args) synack_args=$2 ;;
	--warmup) warmup=$2 ;;
	--pause) pause=$2 ;;
	--out) out=$2 ;;
	-h | --help) usage ;;
	*)
		echo "queues: unknown option '$1'" >&2
		usage
		;;
	esac
	shift 2
done

int_in() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2 && $1 <= $3)); }
int_in "$rounds" 1 50 || die "--rounds: 1-50"
int_in "$secs" 1 60 || die "--duration: 1-60 seconds"
int_in "$conns" 1 10000 || die "--connections: 1-10000"
int_in "$threads" 1 64 || die "--threads: 1-64"
int_in "$warmup" 0 30 || die "--warmup: 0-30 seconds"
int_in "$pause" 0 30 || die "--pause: 0-30 seconds"
[[ -n $body && $body != *$'\n'* ]] || die "--body: a non-empty single line"
IFS=, read -r -a CLIENTS <<<"$clients"
IFS=, read -r -a WORKLOADS <<<"$workloads"
for c in "${CLIENTS[@]}"; do [[ $c == wrk || $c == load || $c == xgen ]] || die "--clients: wrk, load and/or xgen"; done
for w in "${WORKLOADS[@]}"; do [[ $w == keepalive || $w == close ]] || die "--workloads: keepalive and/or close"; done
read -r -a SYNACK_EXTRA <<<"$synack_args"

[[ $(id -u) == 0 ]] || {
	echo "queues: run as root (namespaces, XDP): sudo $0" >&2
	exit 1
}
for c in ip ethtool taskset curl wrk python3 timeout; do
	command -v "$c" >/dev/null 2>&1 || {
		echo "queues: $c is missing (scripts/setup.sh)" >&2
		exit 1
	}
done
((${#CLIENTS[@]})) || die "--clients: give at least one"
SYNACK_BIN=$(synack_binary) || exit 1
if [[ -n $(find "$ROOT/src" "$ROOT/bpf" -newer "$SYNACK_BIN" -type f 2>/dev/null | head -n 1) ]]; then
	echo "queues: warning: $SYNACK_BIN is older than the sources (cargo build --release?)" >&2
fi
XGEN_BIN='' XGEN_NOTE=''
ACTIVE_CLIENTS=()
for c in "${CLIENTS[@]}"; do
	if [[ $c == xgen ]]; then
		if ! XGEN_BIN=$(xgen_binary 2>"${TMPDIR:-/tmp}/queues-xgen.$$"); then
			XGEN_NOTE="xgen skipped: $(cat "${TMPDIR:-/tmp}/queues-xgen.$$")"
			echo "queues: $XGEN_NOTE" >&2
			XGEN_BIN=
			rm -f "${TMPDIR:-/tmp}/queues-xgen.$$"
			continue
		fi
		rm -f "${TMPDIR:-/tmp}/queues-xgen.$$"
	fi
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
RAW="$out/tmp-queues-$stamp"
mkdir -p "$RAW"
base="$out/$(date -u +%Y-%m-%d)-$commit-queues"
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

P=$(tb_unique_prefix qb) || exit 1
tb_names "$P"
tb_up "$P" 2 >/dev/null || exit 1
# On veth the sender picks the queue from a per-socket hash that Linux re-draws after a
# retransmission timeout; a NIC's RSS hash never moves a flow. Keep flows on their queue.
ip netns exec "$TB_CLI_NS" sysctl -qw net.core.txrehash=0 2>/dev/null || true

# channels N: N active queues on both ends of the veth pair (synack must not be running).
channels() {
	local n=$1 ns ifc cur ns_if
	for ns_if in "$TB_SRV_NS:$TB_SRV_IF" "$TB_CLI_NS:$TB_CLI_IF"; do
		ns=${ns_if%%:*} ifc=${ns_if#*:}
		cur=$(ip netns exec "$ns" ls "/sys/class/net/$ifc/queues" | grep -c '^rx-')
		if ((cur != n)); then
			ip netns exec "$ns" ethtool -L "$ifc" rx "$n" tx "$n" || return 1
		fi
		cur=$(ip netns exec "$ns" ls "/sys/class/net/$ifc/queues" | grep -c '^rx-')
		((cur == n)) || {
			echo "queues: $ifc has $cur queues, wanted $n" >&2
			return 1
		}
	done
}

# config NAME: set CFG_QUEUES, CFG_CORES, CFG_TASKSET for q1 or q2.
config() {
	case $1 in
	q1) CFG_QUEUES=1 CFG_CORES=1 CFG_TASKSET=1 ;;
	q2) CFG_QUEUES=2 CFG_CORES=1,0 CFG_TASKSET=0,1 ;;
	esac
}

WWW="$RAW/www"
mkdir -p "$WWW"
printf '%s' "$body" >"$WWW/expected-body"
URL="http://$TB_SRV_IP:$H_PORT/"

{
	printf 'command\t%s\n' "$CMDLINE"
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf 'commit\t%s\n' "$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo none)"
	printf 'dirty\t%s\n' "$dirty"
	printf 'kernel\t%s\n' "$(uname -r)"
	printf 'cpu_model\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	printf 'cpus\t%s\n' "$(nproc)"
	printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }')"
	printf 'xgen\t%s\n' "${XGEN_BIN:-${XGEN_NOTE:-not asked for}}"
	printf 'synack\t%s\n' "$SYNACK_BIN"
	printf 'synack_built\t%s\n' "$(date -u -r "$SYNACK_BIN" '+%Y-%m-%d %H:%M:%S UTC')"
	printf 'rounds\t%s\n' "$rounds"
	printf 'duration_s\t%s\n' "$secs"
	printf 'connections\t%s\n' "$conns"
	printf 'threads\t%s\n' "$threads"
	printf 'body_bytes\t%s\n' "$(stat -c %s "$WWW/expected-body")"
	printf 'synack_q1\t%s\n' "serve --iface $TB_SRV_IF --ip $TB_SRV_IP --port $H_PORT --body '$body' --queues 1 --cores 1 --quiet --metrics $METRICS${SYNACK_EXTRA[*]:+ ${SYNACK_EXTRA[*]}}"
	printf 'synack_q2\t%s\n' "serve --iface $TB_SRV_IF --ip $TB_SRV_IP --port $H_PORT --body '$body' --queues 2 --cores 1,0 --quiet --metrics $METRICS${SYNACK_EXTRA[*]:+ ${SYNACK_EXTRA[*]}}"
	printf 'raw\t%s\n' "$RAW"
	printf 'loadavg_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RAW/meta.tsv"
printf 'round\tconfig\tclient\tworkload\tstatus\toutput\n' >"$RAW/runs.tsv"
failures=0

# start_synack CONFIG ROUND: channels, start, check the body.
start_synack() {
	local cfg=$1 r=$2 got="$RAW/response-$1-r$2.body"
	config "$cfg"
	channels "$CFG_QUEUES" || return 1
	H_SERVER_CPU=$CFG_TASKSET h_start_synack "$RAW/synack-$cfg-r$r.log" --iface "$TB_SRV_IF" --ip "$TB_SRV_IP" \
		--port "$H_PORT" --body "$body" --queues "$CFG_QUEUES" --cores "$CFG_CORES" --quiet \
		--metrics "$METRICS" "${SYNACK_EXTRA[@]}" || return 1
	if ! ip netns exec "$TB_CLI_NS" curl -sS -m 5 -o "$got" "$URL" || ! cmp -s "$got" "$WWW/expected-body"; then
		echo "queues: $cfg: the check request failed or returned another body" >&2
		return 1
	fi
}

# scrape FILE: the metrics text (refreshed by synack once a second).
scrape() { ip netns exec "$TB_SRV_NS" curl -s -m 3 "http://$METRICS/metrics" >"$1" 2>/dev/null || true; }

run_wrk() {
	local o=$1 mode=$2 hdr=()
	[[ $mode == close ]] && hdr=(-H 'Connection: close')
	timeout -k 5 $((secs + 20)) ip netns exec "$TB_CLI_NS" taskset -c 0,1 \
		wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "${hdr[@]}" "$URL" >"$o" 2>&1
}

total_runs=$((rounds * 2 * ${#ACTIVE_CLIENTS[@]} * ${#WORKLOADS[@]}))
echo "queues: $total_runs runs of ${secs}s (q1 q2 x ${ACTIVE_CLIENTS[*]} x ${WORKLOADS[*]} x $rounds rounds)," \
	"about $(((total_runs * (secs + pause + 4) + rounds * 2 * (warmup + 4)) / 60 + 1)) min; raw output in $RAW"
n=0
for ((r = 1; r <= rounds; r++)); do
	order=(q1 q2)
	((r % 2 == 0)) && order=(q2 q1)
	for cfg in "${order[@]}"; do
		if ! start_synack "$cfg" "$r"; then
			echo "queues: $cfg did not start (see $RAW/synack-$cfg-r$r.log)" >&2
			failures=$((failures + 1))
			h_stop "${H_SYNACK_PID:-}" 5 || true
			continue
		fi
		if ((warmup > 0)); then run_wrk "$RAW/warmup-$cfg-r$r.out" keepalive || true; fi
		for c in "${ACTIVE_CLIENTS[@]}"; do
			for w in "${WORKLOADS[@]}"; do
				n=$((n + 1))
				o="$RAW/r$r-$cfg-$c-$w.out"
				sleep "$pause"
				sleep 1.1 # the metrics text is at most 1 s old
				scrape "$o.m0"
				h_cpu_snap "$o.cpu0" "$H_SYNACK_PID"
				st=0
				if [[ $c == wrk ]]; then
					run_wrk "$o" "$w" || st=$?
				elif [[ $c == load ]]; then
					H_CLIENT_CPU=0 h_run_load "$SYNACK_BIN" "$o" "$secs" "$conns" "$w" / || st=$?
				else
					H_CLIENT_CPU=0 h_run_xgen "$XGEN_BIN" "$o" "$secs" "$conns" "$w" / || st=$?
				fi
				h_cpu_snap "$o.cpu1" "$H_SYNACK_PID"
				sleep 1.1
				scrape "$o.m1"
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$cfg" "$c" "$w" "$st" "$o" >>"$RAW/runs.tsv"
				line=$(python3 "$ROOT/scripts/loadgen.py" "$c" "$o" 2>/dev/null) || line="no result (status $st)"
				printf '  [%d/%d] round %d %s %-4s %-9s %s\n' "$n" "$total_runs" "$r" "$cfg" "$c" "$w" \
					"$(awk -F'\t' 'NF == 4 { printf "%.0f req/s  p50 %s us  p99 %s us  errors %s", $1, $2, $3, $4; next } { print }' <<<"$line")"
				if ! h_alive "$H_SYNACK_PID"; then
					echo "queues: synack ($cfg) died during the run" >&2
					failures=$((failures + 1))
					break 2
				fi
			done
		done
		st=0
		h_stop "$H_SYNACK_PID" 10 || st=$?
		((st == 0)) || {
			echo "queues: synack ($cfg) exited with status $st" >&2
			failures=$((failures + 1))
		}
	done
done
printf 'loadavg_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.tsv"

sum_rc=0
python3 - "$ROOT" "$RAW" "$report" <<'PY' || sum_rc=$?
import math, os, re, statistics, sys

root, raw, report = sys.argv[1:4]
sys.path.insert(0, os.path.join(root, "scripts"))
import loadgen  # noqa: E402


def tsv(path):
    with open(path) as f:
        rows = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    return [dict(zip(rows[0], r)) for r in rows[1:]]


meta = {}
with open(os.path.join(raw, "meta.tsv")) as f:
    for line in f:
        k, _, v = line.rstrip("\n").partition("\t")
        meta[k] = v


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return None


def worker_frames(path):
    """synack_rx_frames_total per worker from a metrics scrape."""
    t = read(path) or ""
    return {int(m.group(1)): float(m.group(2))
            for m in re.finditer(r'^synack_rx_frames_total\{worker="(\d+)"\} (\S+)$', t, re.M)}


def med(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else math.nan


def f0(v, unit=""):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f}{unit}"


runs = []
for r in tsv(os.path.join(raw, "runs.tsv")):
    o = r["output"]
    text = read(o)
    res = None
    if text:
        try:
            res = {"wrk": loadgen.parse_wrk, "load": loadgen.parse_load, "xgen": loadgen.parse_xgen}[r["client"]](text)
        except (loadgen.NoResult, ValueError):
            res = None
    b, a = read(o + ".cpu0"), read(o + ".cpu1")
    cpu = loadgen.cpu_usage(b, a) if b and a else {}
    proc = loadgen.process_cpu_pct(b, a) if b and a else math.nan
    w0, w1 = worker_frames(o + ".m0"), worker_frames(o + ".m1")
    delta = {w: w1[w] - w0.get(w, 0.0) for w in w1}
    tot = sum(delta.values())
    split = "/".join(f"{100 * delta[w] / tot:.0f}" for w in sorted(delta)) if tot > 0 else "-"
    runs.append({
        **r,
        "ok": res is not None,
        "rps": res["rps"] if res else math.nan,
        "p50": res.get("p50_us", math.nan) if res else math.nan,
        "p99": res.get("p99_us", math.nan) if res else math.nan,
        "errors": (res.get("errors") if res else None),
        "proc_cpu": proc,
        "cpu0": cpu.get("cpu0", {}).get("busy_pct", math.nan),
        "cpu1": cpu.get("cpu1", {}).get("busy_pct", math.nan),
        "steal": cpu.get("cpu", {}).get("steal_pct", math.nan),
        "split": split,
        "frames": tot,
    })

keys = sorted({(r["client"], r["workload"]) for r in runs})
L = []
L.append("# synack: one queue or two")
L.append("")
L.append(f"- date: {meta.get('date')}")
L.append(f"- command: `{meta.get('command')}`")
L.append(f"- commit: {meta.get('commit')} ({'uncommitted changes' if meta.get('dirty') == 'yes' else 'clean tree'})")
L.append(f"- kernel: {meta.get('kernel')}; CPU: {meta.get('cpu_model')} x {meta.get('cpus')}; "
         f"load average at start {meta.get('loadavg_start')}, at end {meta.get('loadavg_end')}")
L.append(f"- {meta.get('wrk')}, synack load: this build, xgen: {meta.get('xgen')}")
L.append(f"- synack: {meta.get('synack')} (built {meta.get('synack_built')})")
L.append(f"- q1: `synack {meta.get('synack_q1')}`, 1 active queue on each veth end (`ethtool -L IF rx 1 tx 1`), whole process on CPU 1")
L.append(f"- q2: `synack {meta.get('synack_q2')}`, 2 active queues on each veth end")
L.append(f"- {meta.get('rounds')} rounds x {meta.get('duration_s')} s per run, q1 first in odd rounds, q2 first in even rounds; "
         f"wrk -t{meta.get('threads')} -c{meta.get('connections')} on CPUs 0-1; xgen -c{meta.get('connections')} on CPU 0, queue 0; "
         f"GET /, body {meta.get('body_bytes')} bytes")
L.append("")
L.append("## Medians")
L.append("")
L.append("| client | workload | config | requests/s (median) | min-max | p50 | p99 | errors | synack CPU | CPU 0 busy | CPU 1 busy | frames per worker (%) | max steal | runs |")
L.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
medians = {}
for (c, w) in keys:
    for cfg in ("q1", "q2"):
        rs = [r for r in runs if r["client"] == c and r["workload"] == w and r["config"] == cfg]
        if not rs:
            continue
        ok = [r for r in rs if r["ok"]]
        rps = [r["rps"] for r in ok]
        m = med(rps)
        medians[(c, w, cfg)] = (m, med([r["p99"] for r in ok]))
        errs = sum(r["errors"] or 0 for r in ok)
        splits = ", ".join(r["split"] for r in rs)
        steal = max([r["steal"] for r in rs if not math.isnan(r["steal"])], default=math.nan)
        L.append(f"| {c} | {w} | {cfg} | {f0(m)} | {f0(min(rps)) if rps else '-'}-{f0(max(rps)) if rps else '-'} | "
                 f"{f0(med([r['p50'] for r in ok]), ' us')} | {f0(med([r['p99'] for r in ok]), ' us')} | {errs} | "
                 f"{f0(med([r['proc_cpu'] for r in rs]), '%')} | {f0(med([r['cpu0'] for r in rs]), '%')} | "
                 f"{f0(med([r['cpu1'] for r in rs]), '%')} | {splits} | "
                 f"{'-' if math.isnan(steal) else f'{steal:.1f}%'} | {len(ok)}/{len(rs)} |")
L.append("")
L.append("## q2 / q1 (ratio of the medians)")
L.append("")
L.append("| client | workload | requests/s | p99 latency |")
L.append("|---|---|---:|---:|")
for (c, w) in keys:
    a, b = medians.get((c, w, "q1")), medians.get((c, w, "q2"))
    if not a or not b:
        continue
    ratio = lambda x, y: "-" if not (x and y) or math.isnan(x) or math.isnan(y) else f"{y / x:.2f}x"
    L.append(f"| {c} | {w} | {ratio(a[0], b[0])} | {ratio(a[1], b[1])} |")
L.append("")
L.append("## Read this first")
L.append("")
L.append("- **This machine has two cores and the load generator runs on the same two cores.** In q2, synack's "
         "two workers compete with wrk's two threads (and with the kernel's TCP work for wrk's sockets and the veth "
         "receive path, which runs on the sending core) for the same CPUs. q2 therefore does not show what a second "
         "core buys synack; it shows what happens when a server spreads over cores that its client also needs. On a "
         "machine with spare cores (or a real NIC with the client elsewhere) the comparison would differ.")
L.append("- **xgen binds one queue** (queue 0 of the client's veth end). Its frames all arrive on the server's queue 0, "
         "so in q2 worker 0 serves all of xgen's traffic and worker 1 idles (see the frames-per-worker column). q2 puts "
         "worker 0 on CPU 1, away from xgen's CPU 0, so xgen's q1 and q2 runs measure the same single worker; the "
         "difference between them is noise plus the cost of a second, idle worker (it wakes from poll() up "
         "to 1000 times a second, on CPU 0 where xgen spins).")
L.append("- **q1 uses one active veth queue, not two.** With two active queues and `--queues 1`, the flows that the "
         "client hashes to queue 1 are passed to the kernel by synack's XDP program, and the kernel (with no listener) "
         "answers RST: half the connections would fail. q1 therefore runs with `ethtool -L ... rx 1 tx 1` on both ends "
         "of the same veth pair, the veth equivalent of `ethtool -L eth1 combined 1` on a NIC.")
L.append("- The client namespace runs with `net.core.txrehash=0`, so that a flow keeps its queue after a "
         "retransmission timeout, as it would under a NIC's RSS hash.")
L.append("- Shared, noisy VM: other jobs ran at the same time (see the load average and the CPU columns). Compare q1 and "
         "q2 within this report only (they alternate in each round; medians over rounds).")
L.append("- Columns: synack CPU is user+system time of the synack process over the run, in % of one core (up to 200% "
         "with two workers); CPU 0/1 busy is each core as a whole (/proc/stat), including wrk and softirq work. Frames "
         "per worker: each worker's share of the received frames during that run (from synack_rx_frames_total), one "
         "entry per round. Steal: time the hypervisor gave to other guests.")
bad = [r for r in runs if not r["ok"] or (r["errors"] or 0) > 0]
L.append("")
L.append("## Checks")
L.append("")
if bad:
    for r in bad:
        L.append(f"- round {r['round']} {r['config']} {r['client']} {r['workload']}: "
                 f"{'no result (status ' + r['status'] + ')' if not r['ok'] else str(r['errors']) + ' errors'}")
else:
    L.append(f"- zero errors in all {len(runs)} runs.")
try:
    load1 = float(meta.get("loadavg_start", "0").split()[0])
except ValueError:
    load1 = 0.0
if load1 > 1.0:
    L.append(f"- **load average {load1:.2f} at the start**: other work (other jobs on this VM) shared the two cores, so "
             "absolute rates are low and noisy; the CPU columns show both cores busy. Read the q2/q1 ratios with the "
             "min-max ranges in mind.")
high = [r for r in runs if not math.isnan(r["steal"]) and r["steal"] > 5.0]
if high:
    L.append(f"- CPU steal above 5% in {len(high)} run(s).")
L.append("")
L.append("## All runs")
L.append("")
L.append("| round | config | client | workload | requests/s | p50 | p99 | errors | synack CPU | CPU 0 | CPU 1 | frames per worker (%) | steal |")
L.append("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
for r in runs:
    L.append(f"| {r['round']} | {r['config']} | {r['client']} | {r['workload']} | {f0(r['rps'])} | {f0(r['p50'], ' us')} | "
             f"{f0(r['p99'], ' us')} | {r['errors'] if r['errors'] is not None else '-'} | {f0(r['proc_cpu'], '%')} | "
             f"{f0(r['cpu0'], '%')} | {f0(r['cpu1'], '%')} | {r['split']} | "
             f"{'-' if math.isnan(r['steal']) else format(r['steal'], '.1f') + '%'} |")
L.append("")
L.append(f"Raw output: `{raw}` (not committed).")
with open(report + ".md", "w") as f:
    f.write("\n".join(L) + "\n")
print("\n".join(L))
print(f"\nreport: {report}.md")
sys.exit(3 if bad else 0)
PY
if ((failures)); then
	echo "queues: $failures failure(s)" >&2
	exit 1
fi
((sum_rc == 0 || sum_rc == 3)) || exit 1
exit "$sum_rc"
