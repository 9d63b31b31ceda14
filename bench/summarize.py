#!/usr/bin/env python3
"""Turn the raw output of bench/vs-nginx.sh into a report.

  summarize.py RAWDIR REPORT      reads RAWDIR/{meta,runs,events}.tsv and the outputs they name;
                                  writes REPORT.md and REPORT.json and prints the tables

Exit status: 0, or 3 if some run counted errors, produced no result, or its load generator
exited with a non-zero status (the status column of runs.tsv): such a run is refused, none of its
numbers enter the medians, and it is named on stderr.
"""

import json
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import loadgen  # noqa: E402

STEAL_WARN_PCT = 5.0
OTHER_WARN_PCT = 10.0


def read_tsv(path):
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    head, rows = lines[0], lines[1:]
    return [dict(zip(head, r)) for r in rows]


def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    return meta


def median(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else math.nan


def fnum(v, fmt="{:.0f}"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return fmt.format(v)


def response_size(raw, server):
    """Bytes of the check response's head and body, as curl saved them."""
    try:
        head = os.path.getsize(os.path.join(raw, f"response-{server}.head"))
        body = os.path.getsize(os.path.join(raw, f"response-{server}.body"))
        with open(os.path.join(raw, f"response-{server}.head"), errors="replace") as f:
            lines = [l.rstrip("\r\n") for l in f if l.strip()]
        return {"head_bytes": head, "body_bytes": body, "head": lines}
    except OSError:
        return None


def run_result(run):
    """(parsed result, None), or (None, why there is none) for one row of runs.tsv."""
    status = run.get("status", "")
    if status != "0":
        # wrk or xgen failed, was stopped at its time limit (124) or did not run: what it printed
        # is not a measurement, even if it parses.
        return None, f"the load generator exited with status {status or '(none recorded)'}"
    try:
        with open(run["output"], errors="replace") as f:
            text = f.read()
        parse = {"wrk": loadgen.parse_wrk, "load": loadgen.parse_load, "xgen": loadgen.parse_xgen}[run["client"]]
        return parse(text), None
    except (OSError, loadgen.NoResult, ValueError) as e:
        return None, str(e)


def ok_rps(run):
    res = run.get("result")
    return res["rps"] if res and res.get("errors") == 0 and res.get("rps") else None


def cpu_us_per_request(m):
    if not m["rps"] or math.isnan(m["rps"]) or math.isnan(m["server_proc_cpu_pct"]):
        return math.nan
    return m["server_proc_cpu_pct"] / 100 * 1e6 / m["rps"]


def log_cost_table(runs, by_key):
    """--log-cost: per (client, workload), what the access log costs each server (its requests/s
    with the log over without, medians) and the ratio synack/nginx with logs over the ratio
    without: from the medians, and per round (the four runs of a round are minutes apart, so
    their quotient cancels most of the machine's drift)."""
    rows = []
    pairs = sorted({(r["client"], r["workload"]) for r in runs if r["server"] == "synack-log"})
    for client, workload in pairs:
        m = {s: by_key.get((client, workload, s)) for s in ("nginx", "synack", "nginx-log", "synack-log")}
        if not all(m.values()):
            continue
        per_round = []
        for rnd in sorted({r["round"] for r in runs}, key=int):
            got = {r["server"]: ok_rps(r) for r in runs
                   if r["round"] == rnd and r["client"] == client and r["workload"] == workload}
            if all(got.get(s) for s in ("nginx", "synack", "nginx-log", "synack-log")):
                per_round.append((got["synack-log"] / got["nginx-log"]) / (got["synack"] / got["nginx"]))
        rows.append({
            "client": client, "workload": workload,
            "nginx_with_over_without": m["nginx-log"]["rps"] / m["nginx"]["rps"],
            "synack_with_over_without": m["synack-log"]["rps"] / m["synack"]["rps"],
            "ratio_without": m["synack"]["rps"] / m["nginx"]["rps"],
            "ratio_with": m["synack-log"]["rps"] / m["nginx-log"]["rps"],
            "ratio_with_over_without": (m["synack-log"]["rps"] / m["nginx-log"]["rps"])
                                       / (m["synack"]["rps"] / m["nginx"]["rps"]),
            "per_round": per_round,
            "per_round_median": median(per_round),
            # server CPU time per request (process CPU over requests/s), with the log minus
            # without: what a logged line costs the server. synack's workers poll, so its
            # share of the core stays near 100% and its figure is an upper bound.
            "nginx_log_us_per_request": cpu_us_per_request(m["nginx-log"]) - cpu_us_per_request(m["nginx"]),
            "synack_log_us_per_request": cpu_us_per_request(m["synack-log"]) - cpu_us_per_request(m["synack"]),
        })
    return rows


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    raw, report = argv
    meta = read_meta(os.path.join(raw, "meta.tsv"))
    runs = read_tsv(os.path.join(raw, "runs.tsv"))
    events = read_tsv(os.path.join(raw, "events.tsv"))

    for run in runs:
        run["result"], problem = run_result(run)
        if problem is not None:
            run["problem"] = problem
        try:
            with open(run["cpu_before"]) as f1, open(run["cpu_after"]) as f2:
                u = loadgen.cpu_usage(f1.read(), f2.read())
            with open(run["cpu_before"]) as f1, open(run["cpu_after"]) as f2:
                run["server_proc_cpu_pct"] = loadgen.process_cpu_pct(f1.read(), f2.read())
        except OSError:
            u = {}
            run["server_proc_cpu_pct"] = math.nan
        nan = {"busy_pct": math.nan, "steal_pct": math.nan, "irq_pct": math.nan}
        srv = u.get("cpu" + meta.get("server_cpu", "1"), nan)
        run["server_cpu_busy_pct"] = srv["busy_pct"]
        run["client_cpu_busy_pct"] = u.get("cpu" + meta.get("client_cpu", "0"), nan)["busy_pct"]
        run["steal_pct"] = u.get("cpu", nan)["steal_pct"]
        # Work on the server's core that is neither the server process nor irq/softirq work: other
        # jobs on the machine (a compile...). Near 0 on a quiet machine. NaN stays NaN.
        other = srv["busy_pct"] - srv["irq_pct"] - run["server_proc_cpu_pct"]
        run["other_on_server_core_pct"] = other if math.isnan(other) else max(0.0, other)

    # medians per (client, workload, server)
    groups = {}
    for run in runs:
        groups.setdefault((run["client"], run["workload"], run["server"]), []).append(run)
    medians = []
    for (client, workload, server), rs in sorted(groups.items()):
        ok = [r["result"] for r in rs if r["result"]]
        errs = [r["result"].get("errors") for r in rs if r["result"]]
        medians.append({
            "client": client, "workload": workload, "server": server,
            "runs": len(rs), "runs_with_result": len(ok),
            "rps": median([x["rps"] for x in ok]),
            "rps_min": min((x["rps"] for x in ok), default=math.nan),
            "rps_max": max((x["rps"] for x in ok), default=math.nan),
            "p50_us": median([x["p50_us"] for x in ok]),
            "p99_us": median([x["p99_us"] for x in ok]),
            "errors": sum(e for e in errs if e is not None) if errs else None,
            "server_cpu_busy_pct": median([r["server_cpu_busy_pct"] for r in rs]),
            "server_proc_cpu_pct": median([r["server_proc_cpu_pct"] for r in rs]),
            "other_on_server_core_pct": median([r["other_on_server_core_pct"] for r in rs]),
            "steal_pct_max": max((r["steal_pct"] for r in rs if not math.isnan(r["steal_pct"])), default=math.nan),
        })
    by_key = {(m["client"], m["workload"], m["server"]): m for m in medians}
    ratios = []
    for suffix in ("", "-log"):
        for client, workload in sorted({(m["client"], m["workload"]) for m in medians}):
            s = by_key.get((client, workload, "synack" + suffix))
            n = by_key.get((client, workload, "nginx" + suffix))
            if s and n and n["rps"] and not math.isnan(n["rps"]) and not math.isnan(s["rps"]):
                ratios.append({
                    "client": client, "workload": workload + (" (access logs)" if suffix else ""),
                    "rps_ratio": s["rps"] / n["rps"],
                    "p99_ratio": (s["p99_us"] / n["p99_us"]) if n["p99_us"] and not math.isnan(n["p99_us"]) else math.nan,
                })
    log_cost = log_cost_table(runs, by_key)

    bad_runs = [r for r in runs if not r["result"] or r["result"].get("errors") not in (0,)]
    busy_runs = [r for r in runs if not math.isnan(r["other_on_server_core_pct"])
                 and r["other_on_server_core_pct"] > OTHER_WARN_PCT]
    steal_runs = [r for r in runs if not math.isnan(r["steal_pct"]) and r["steal_pct"] > STEAL_WARN_PCT]
    servers = sorted({r["server"] for r in runs})
    sizes = {s: response_size(raw, s) for s in servers}

    # --- markdown
    L = []
    L.append("# synack vs nginx")
    L.append("")
    L.append(f"- date: {meta.get('date')}")
    L.append(f"- command: `{meta.get('command')}`")
    L.append(f"- commit: {meta.get('commit')}" + (" (working tree dirty)" if meta.get("dirty") == "yes" else " (clean tree)"))
    L.append(f"- kernel: {meta.get('kernel')}; CPU: {meta.get('cpu_model')} x {meta.get('cpus')};"
             f" load average at start {meta.get('loadavg_start')}, at end {meta.get('loadavg_end')}")
    L.append(f"- nginx {meta.get('nginx')}, {meta.get('wrk')}, synack load: {meta.get('load', 'not run')}, xgen: {meta.get('xgen', 'not run')}")
    L.append(f"- synack: {meta.get('synack')}" + (f" (built {meta['synack_built']})" if meta.get("synack_built") else ""))
    L.append(f"- synack arguments: `{meta.get('synack_args')}`" if meta.get("synack") != "not run" else "- synack arguments: (not run)")
    L.append(f"- nginx: 1 worker, config {meta.get('nginx_conf')}")
    L.append(f"- {meta.get('rounds')} rounds x {meta.get('duration_s')} s per run, {meta.get('connections')} connections,"
             f" server on CPU {meta.get('server_cpu')}, load generator on CPU {meta.get('client_cpu')},"
             f" {meta.get('queues')} veth queue(s), GET {meta.get('path')}, body {meta.get('body_bytes')} bytes")
    if meta.get("rx_on_server_cpu") == "yes":
        L.append("- receive path on the server's CPU (--rx-on-server-cpu): RPS for nginx's kernel stack; synack's"
                 " veth NAPI as a kernel thread pinned there, whose CPU time is counted in synack's server process CPU")
    for s in servers:
        sz = sizes.get(s)
        if sz:
            L.append(f"- {s} response: {sz['head_bytes']} bytes of head + {sz['body_bytes']} bytes of body"
                     f" (`{' | '.join(sz['head'])}`)")
    L.append("")
    L.append("## Medians")
    L.append("")
    L.append("| client | workload | server | requests/s (median) | min-max | p50 | p99 | errors | server process CPU | server core busy | other work on server core | max steal | runs |")
    L.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in medians:
        L.append(f"| {m['client']} | {m['workload']} | {m['server']} | {fnum(m['rps'])} |"
                 f" {fnum(m['rps_min'])}-{fnum(m['rps_max'])} | {fnum(m['p50_us'])} us | {fnum(m['p99_us'])} us |"
                 f" {fnum(m['errors'], '{}')} | {fnum(m['server_proc_cpu_pct'], '{:.0f}%')} |"
                 f" {fnum(m['server_cpu_busy_pct'], '{:.0f}%')} | {fnum(m['other_on_server_core_pct'], '{:.0f}%')} |"
                 f" {fnum(m['steal_pct_max'], '{:.1f}%')} | {m['runs_with_result']}/{m['runs']} |")
    L.append("")
    if ratios:
        L.append("## synack / nginx (ratio of the medians)")
        L.append("")
        L.append("| client | workload | requests/s | p99 latency |")
        L.append("|---|---|---:|---:|")
        for q in ratios:
            L.append(f"| {q['client']} | {q['workload']} | {q['rps_ratio']:.2f}x | {fnum(q['p99_ratio'], '{:.2f}x')} |")
        L.append("")
    if log_cost:
        L.append("## What the access log costs (--log-cost)")
        L.append("")
        L.append("requests/s with the log over without (medians), the ratio synack/nginx without and with"
                 " logs, and the second over the first: from the medians, and the median of the per-round"
                 " quotients (each round runs all four servers). Above 1.00: synack's lead grows with logs on."
                 " CPU per line: the server process's CPU time per request with the log minus without"
                 " (synack's workers poll, so its figure is an upper bound).")
        L.append("")
        L.append("| client | workload | nginx with/without | synack with/without | ratio without | ratio with |"
                 " with/without (medians) | with/without (per round) | rounds | CPU per line: nginx | CPU per line: synack |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        for q in log_cost:
            L.append(f"| {q['client']} | {q['workload']} | {q['nginx_with_over_without']:.3f} |"
                     f" {q['synack_with_over_without']:.3f} | {q['ratio_without']:.2f}x | {q['ratio_with']:.2f}x |"
                     f" {q['ratio_with_over_without']:.3f} | {fnum(q['per_round_median'], '{:.3f}')} |"
                     f" {', '.join(f'{x:.3f}' for x in q['per_round'])} |"
                     f" {fnum(q['nginx_log_us_per_request'], '{:+.2f} us')} | {fnum(q['synack_log_us_per_request'], '{:+.2f} us')} |")
        L.append("")
    L.append("## Checks")
    L.append("")
    if bad_runs:
        L.append(f"- **errors**: {len(bad_runs)} run(s) counted errors or gave no result:")
        for r in bad_runs:
            what = f"{r['result']['errors']} errors" if r["result"] else f"no result: {r.get('problem')}"
            L.append(f"  - round {r['round']} {r['server']} {r['client']} {r['workload']}: {what} ({os.path.basename(r['output'])})")
    else:
        L.append(f"- zero errors in all {len(runs)} runs.")
    for e in events:
        if e["event"] not in ("started", "stopped") or (e["event"] == "stopped" and e["detail"] != "exit status 0"):
            L.append(f"- round {e['round']} {e['server']}: {e['event']} {e['detail']}")
    if steal_runs:
        L.append(f"- CPU steal above {STEAL_WARN_PCT:.0f}% in {len(steal_runs)} run(s):"
                 + ", ".join(f" r{r['round']} {r['server']} {r['client']} {r['workload']} {r['steal_pct']:.1f}%" for r in steal_runs)
                 + ". Those runs are slower for a reason outside the servers.")
    else:
        L.append(f"- CPU steal stayed at or below {STEAL_WARN_PCT:.0f}% in every run.")
    if busy_runs:
        L.append(f"- **other work on the server's core** above {OTHER_WARN_PCT:.0f}% in {len(busy_runs)} of {len(runs)}"
                 f" run(s) (median {median([r['other_on_server_core_pct'] for r in busy_runs]):.0f}%): something"
                 " else ran on the machine (a compile?), so absolute rates are low and the ratio is less"
                 " reliable. Rerun on a quiet machine.")
    else:
        L.append(f"- other work on the server's core stayed at or below {OTHER_WARN_PCT:.0f}% in every run.")
    L.append("- server process CPU: user+system time of the server process (nginx: master and worker) over the"
             " run, in % of one core. server core busy: the server's core as a whole (/proc/stat), which also"
             " counts softirq work and any other process on that core. other work on server core: server core busy"
             " minus irq/softirq minus the server process. steal: time the hypervisor gave to other guests,"
             " over all CPUs.")
    L.append("- This is a shared, noisy VM: compare the ratio within one report (servers alternate within each"
             " round, medians over rounds), not absolute numbers across reports. synack load and xgen spin their core at 100%,"
             " so the client CPU share says nothing with them."
             + (" The server's receive path ran on the server's CPU (--rx-on-server-cpu); what the server sends is"
                " received by the client's kernel or XDP on the server's CPU, for both servers alike."
                if meta.get("rx_on_server_cpu") == "yes" else
                " With veth, the server's kernel receive path runs on the client's core (--rx-on-server-cpu"
                " moves it to the server's)."))
    L.append("")
    L.append("## All runs")
    L.append("")
    L.append("| round | server | client | workload | requests/s | p50 | p99 | errors | server process CPU | server core | other on server core | client core | steal |")
    L.append("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        res = r["result"] or {}
        L.append(f"| {r['round']} | {r['server']} | {r['client']} | {r['workload']} | {fnum(res.get('rps'))} |"
                 f" {fnum(res.get('p50_us'))} us | {fnum(res.get('p99_us'))} us | {fnum(res.get('errors'), '{}')} |"
                 f" {fnum(r['server_proc_cpu_pct'], '{:.0f}%')} |"
                 f" {fnum(r['server_cpu_busy_pct'], '{:.0f}%')} | {fnum(r['other_on_server_core_pct'], '{:.0f}%')} |"
                 f" {fnum(r['client_cpu_busy_pct'], '{:.0f}%')} |"
                 f" {fnum(r['steal_pct'], '{:.1f}%')} |")
    L.append("")
    L.append(f"Raw output: `{meta.get('raw')}` (not committed).")
    md = "\n".join(L) + "\n"

    def clean(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    doc = clean({"meta": meta, "medians": medians, "ratios": ratios, "log_cost": log_cost, "runs": runs, "events": events,
                 "responses": sizes})
    with open(report + ".md", "w") as f:
        f.write(md)
    with open(report + ".json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    # print the two summary tables
    start = md.index("## Medians")
    end = md.index("## All runs")
    print()
    print(md[start:end].rstrip())
    print()
    print(f"report: {report}.md and {report}.json")
    for r in bad_runs:
        what = f"{r['result']['errors']} errors" if r["result"] else f"no result: {r.get('problem')}"
        sys.stderr.write(f"summarize: FAILED run: round {r['round']} {r['server']} {r['client']}"
                         f" {r['workload']}: {what} ({r['output']})\n")
    return 3 if bad_runs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
