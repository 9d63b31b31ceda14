#!/usr/bin/env python3
"""Read what the load generators (wrk, synack load, xgen) and /proc/stat printed; used by demo.sh
and bench/.

  loadgen.py wrk FILE            one line: rps p50_us p99_us errors (tab-separated)
  loadgen.py load FILE           the same for `synack load`'s output
  loadgen.py xgen FILE           the same for xgen's output
  loadgen.py cpu BEFORE AFTER    one line: cpu0_busy% cpu1_busy% steal% (all CPUs), from two
                                 copies of the cpu lines of /proc/stat
  add --json for every field as a JSON object.

A value that the output does not contain is printed as "nan"; a file that holds no result at all
(the tool failed) makes the command exit with status 1.
"""

import json
import math
import os
import re
import sys

_UNIT_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(text):
    """'530.00us' / '1.23ms' / '2.00s' / '812ns' -> microseconds (float)."""
    m = re.fullmatch(r"([0-9.]+)(ns|us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * _UNIT_US[m.group(2)]


class NoResult(Exception):
    pass


def parse_wrk(text):
    """wrk 4.x output (run with --latency)."""
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if not m:
        raise NoResult("no 'Requests/sec:' line")
    r = {"rps": float(m.group(1))}
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)\s*$", text, re.M)
        r[key] = to_us(m.group(1)) if m else math.nan
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(\w+)", text, re.M)
    r["requests"] = int(m.group(1)) if m else None
    sock = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        sock = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    non2xx = int(m.group(1)) if m else 0
    r["socket_errors"] = sock
    r["non2xx"] = non2xx
    r["errors"] = sum(sock.values()) + non2xx
    return r


def parse_load(text):
    """`synack load`: wrk's layout, then connections/s, p99.9 and the errors by kind."""
    r = parse_wrk(text)
    m = re.search(r"^Connections/sec: ([0-9.]+)", text, re.M)
    r["conns_per_s"] = float(m.group(1)) if m else math.nan
    m = re.search(r"^Latency: p50 (\S+)\s+p90 (\S+)\s+p99 (\S+)\s+p99\.9 (\S+)", text, re.M)
    r["p999_us"] = to_us(m.group(4)) if m else math.nan
    m = re.search(r"^Errors: (\d+)\s+\((.*?)\)", text, re.M)
    if m:
        detail = {}
        for item in m.group(2).split(","):
            mm = re.fullmatch(r"\s*(.+?) (\d+)\s*", item)
            if mm:
                detail[mm.group(1)] = int(mm.group(2))
        r["error_detail"] = detail
        r["errors"] = int(m.group(1))
    return r


def parse_xgen(text):
    """xgen's summary lines (see ../shared/tools/xgen/README.md)."""
    m = re.search(r"^requests/s: ([0-9.]+)", text, re.M)
    if not m:
        raise NoResult("no 'requests/s:' line")
    r = {"rps": float(m.group(1))}
    m = re.search(r"^connections/s: ([0-9.]+)", text, re.M)
    r["conns_per_s"] = float(m.group(1)) if m else math.nan
    m = re.search(r"^latency .*?: p50 (\S+)\s+p99 (\S+)\s+p99\.9 (\S+)", text, re.M)
    if m:
        r["p50_us"], r["p99_us"], r["p999_us"] = (to_us(g) for g in m.groups())
    else:
        r["p50_us"] = r["p99_us"] = r["p999_us"] = math.nan
    m = re.search(r"^errors: (\d+)\s+\((.*)\)", text, re.M)
    if m:
        r["errors"] = int(m.group(1))
        detail = {}
        for item in m.group(2).split(";")[0].split(","):
            mm = re.fullmatch(r"\s*(.+?) (\d+)\s*", item)
            if mm:
                detail[mm.group(1)] = int(mm.group(2))
        r["error_detail"] = detail
    else:
        r["errors"] = None
    m = re.search(r"^busy: ([0-9.]+)%", text, re.M)
    r["xgen_busy_pct"] = float(m.group(1)) if m else math.nan
    return r


_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def read_cpu(text):
    """cpu lines of /proc/stat -> {'cpu': [...], 'cpu0': [...], ...} (first 8 fields; guest time is
    already included in user/nice)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("cpu"):
            vals = [int(x) for x in parts[1:9]]
            vals += [0] * (8 - len(vals))
            out[parts[0]] = vals
    return out


def read_proc(text):
    """The 'wall SECONDS' and 'proc PID TICKS' lines that h_cpu_snap adds."""
    wall = ticks = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "wall":
            wall = float(parts[1])
        elif len(parts) == 3 and parts[0] == "proc":
            ticks = int(parts[2])
    return wall, ticks


def process_cpu_pct(before, after, hz=None):
    """CPU time the server process (and children) used over the interval, in % of one core."""
    hz = hz or os.sysconf("SC_CLK_TCK")
    w0, t0 = read_proc(before)
    w1, t1 = read_proc(after)
    if None in (w0, t0, w1, t1) or w1 <= w0:
        return math.nan
    return 100.0 * (t1 - t0) / hz / (w1 - w0)


def cpu_usage(before, after):
    """Busy and steal shares over the interval, in percent, per CPU line."""
    b, a = read_cpu(before), read_cpu(after)
    res = {}
    for name in a:
        if name not in b:
            continue
        d = [x - y for x, y in zip(a[name], b[name])]
        total = sum(d)
        if total <= 0:
            res[name] = {"busy_pct": math.nan, "steal_pct": math.nan, "irq_pct": math.nan}
            continue
        idle = d[3] + d[4]
        steal = d[7]
        # busy: time the CPU ran something for this guest (steal is neither busy nor idle here)
        res[name] = {
            "busy_pct": 100.0 * (total - idle - steal) / total,
            "steal_pct": 100.0 * steal / total,
            "irq_pct": 100.0 * (d[5] + d[6]) / total,  # irq + softirq (kernel network work)
        }
    return res


def _fmt(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def main(argv):
    args = [a for a in argv if a != "--json"]
    as_json = len(args) != len(argv)
    if len(args) < 2 or args[0] not in ("wrk", "load", "xgen", "cpu"):
        sys.stderr.write(__doc__)
        return 2
    try:
        if args[0] == "cpu":
            if len(args) != 3:
                sys.stderr.write(__doc__)
                return 2
            with open(args[1]) as f1, open(args[2]) as f2:
                u = cpu_usage(f1.read(), f2.read())
            if as_json:
                print(json.dumps(u))
            else:
                nan = {"busy_pct": math.nan, "steal_pct": math.nan}
                print("\t".join(_fmt(x) for x in (u.get("cpu0", nan)["busy_pct"], u.get("cpu1", nan)["busy_pct"],
                                                   u.get("cpu", nan)["steal_pct"])))
            return 0
        with open(args[1], errors="replace") as f:
            text = f.read()
        r = {"wrk": parse_wrk, "load": parse_load, "xgen": parse_xgen}[args[0]](text)
    except (OSError, NoResult, ValueError) as e:
        sys.stderr.write(f"loadgen.py: {args[1]}: {e}\n")
        return 1
    if as_json:
        print(json.dumps(r))
    else:
        print("\t".join(_fmt(r.get(k)) for k in ("rps", "p50_us", "p99_us", "errors")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
