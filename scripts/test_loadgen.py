#!/usr/bin/env python3
"""Tests of loadgen.py against real wrk, xgen and /proc/stat output kept in scripts/testdata/,
of bench/summarize.py's verdict on a run, and of scripts/demo.sh's verdict.

  python3 scripts/test_loadgen.py
"""

import contextlib
import io
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import loadgen  # noqa: E402
import summarize  # noqa: E402


def data(name):
    with open(os.path.join(HERE, "testdata", name)) as f:
        return f.read()


class Wrk(unittest.TestCase):
    def test_clean_run(self):
        r = loadgen.parse_wrk(data("wrk-close.txt"))
        self.assertEqual(r["rps"], 8948.47)
        self.assertAlmostEqual(r["p50_us"], 3850.0)
        self.assertAlmostEqual(r["p99_us"], 11900.0)
        self.assertEqual(r["requests"], 18166)
        self.assertEqual(r["errors"], 0)

    def test_socket_errors_and_non_2xx_count(self):
        r = loadgen.parse_wrk(data("wrk-errors.txt"))
        self.assertEqual(r["socket_errors"], {"connect": 0, "read": 4, "write": 61982, "timeout": 0})
        self.assertEqual(r["non2xx"], 26763)
        self.assertEqual(r["errors"], 4 + 61982 + 26763)
        self.assertAlmostEqual(r["p50_us"], 177.0)
        self.assertAlmostEqual(r["p99_us"], 3590.0)

    def test_no_result(self):
        with self.assertRaises(loadgen.NoResult):
            loadgen.parse_wrk("unable to connect to 198.18.0.1:8080 Connection refused\n")

    def test_missing_percentiles_are_nan(self):
        r = loadgen.parse_wrk("Requests/sec:   100.00\n")
        self.assertEqual(r["rps"], 100.0)
        self.assertTrue(math.isnan(r["p99_us"]))


class Xgen(unittest.TestCase):
    def test_close(self):
        r = loadgen.parse_xgen(data("xgen-close.txt"))
        self.assertEqual(r["rps"], 28245.9)
        self.assertEqual(r["conns_per_s"], 28234.9)
        self.assertAlmostEqual(r["p50_us"], 1570.0)
        self.assertAlmostEqual(r["p99_us"], 2360.0)
        self.assertAlmostEqual(r["p999_us"], 4980.0)
        self.assertEqual(r["errors"], 0)
        self.assertEqual(r["error_detail"]["closed with requests pending"], 0)
        self.assertEqual(r["xgen_busy_pct"], 99.9)

    def test_keepalive_latency_in_microseconds(self):
        r = loadgen.parse_xgen(data("xgen-keepalive.txt"))
        self.assertEqual(r["rps"], 35990.5)
        self.assertAlmostEqual(r["p50_us"], 589.8)
        self.assertAlmostEqual(r["p99_us"], 13110.0)

    def test_errors_counted(self):
        text = data("xgen-close.txt").replace("errors: 0  (rst 0, timeouts 0", "errors: 7  (rst 5, timeouts 2")
        r = loadgen.parse_xgen(text)
        self.assertEqual(r["errors"], 7)
        self.assertEqual(r["error_detail"]["rst"], 5)
        self.assertEqual(r["error_detail"]["timeouts"], 2)

    def test_no_result(self):
        with self.assertRaises(loadgen.NoResult):
            loadgen.parse_xgen("xgen: attach XDP to c0: Device or resource busy\n")


class Load(unittest.TestCase):
    """`synack load` prints wrk's layout and more; both parsers read it."""

    def test_close(self):
        text = data("load-close.txt")
        r = loadgen.parse_load(text)
        self.assertAlmostEqual(r["rps"], 30089.5)
        self.assertAlmostEqual(r["conns_per_s"], 30088.5)
        self.assertAlmostEqual(r["p50_us"], 175.0)
        self.assertAlmostEqual(r["p99_us"], 542.0)
        self.assertAlmostEqual(r["p999_us"], 2370.0)
        self.assertEqual(r["errors"], 0)
        self.assertEqual(r["requests"], 60179)
        # Scripts written for wrk read it too.
        w = loadgen.parse_wrk(text)
        self.assertEqual((w["rps"], w["errors"]), (r["rps"], 0))

    def test_errors_by_kind(self):
        text = data("load-keepalive.txt").replace(
            "Errors: 0  (connect refused 0, connect timeouts 0, resets 0",
            "Errors: 7  (connect refused 2, connect timeouts 0, resets 5")
        text = text.replace("Requests/sec:", "  Socket errors: connect 2, read 5, write 0, timeout 0\nRequests/sec:")
        r = loadgen.parse_load(text)
        self.assertEqual(r["errors"], 7)
        self.assertEqual(r["error_detail"]["connect refused"], 2)
        self.assertEqual(r["error_detail"]["resets"], 5)
        self.assertEqual(r["socket_errors"]["read"], 5)


class Units(unittest.TestCase):
    def test_units(self):
        self.assertEqual(loadgen.to_us("812ns"), 0.812)
        self.assertEqual(loadgen.to_us("530.00us"), 530.0)
        self.assertEqual(loadgen.to_us("1.23ms"), 1230.0)
        self.assertEqual(loadgen.to_us("2.00s"), 2e6)
        with self.assertRaises(ValueError):
            loadgen.to_us("12 ms")


class Cpu(unittest.TestCase):
    def test_busy_and_steal(self):
        u = loadgen.cpu_usage(data("cpu-before.txt"), data("cpu-after.txt"))
        # cpu1 deltas: user 30, system 119, idle 35, softirq 23, steal 1: total 208
        self.assertAlmostEqual(u["cpu1"]["busy_pct"], 100.0 * (208 - 35 - 1) / 208)
        self.assertAlmostEqual(u["cpu1"]["steal_pct"], 100.0 * 1 / 208)
        # all CPUs: total 416, steal 1
        self.assertAlmostEqual(u["cpu"]["steal_pct"], 100.0 / 416)

    def test_process_share(self):
        # 166 ticks at 100 Hz over 2.098808 s of wall time
        pct = loadgen.process_cpu_pct(data("cpu-before.txt"), data("cpu-after.txt"), hz=100)
        self.assertAlmostEqual(pct, 100.0 * 1.66 / (1795469107.220618092 - 1795469105.121810133), places=3)

    def test_process_share_missing(self):
        self.assertTrue(math.isnan(loadgen.process_cpu_pct("cpu 1 2 3 4\n", "cpu 2 3 4 5\n")))



class Summarize(unittest.TestCase):
    """bench/summarize.py over a raw directory of one wrk run, as bench/vs-nginx.sh writes it."""

    def summarize(self, status):
        raw = tempfile.mkdtemp(prefix="synack-summarize-")
        self.addCleanup(shutil.rmtree, raw)
        out = os.path.join(raw, "r1-synack-wrk-close.out")
        shutil.copy(os.path.join(HERE, "testdata", "wrk-close.txt"), out)
        with open(os.path.join(raw, "meta.tsv"), "w") as f:
            f.write("server_cpu\t1\nclient_cpu\t0\n")
        with open(os.path.join(raw, "runs.tsv"), "w") as f:
            f.write("round\tserver\tclient\tworkload\tstatus\toutput\tcpu_before\tcpu_after\n")
            f.write(f"1\tsynack\twrk\tclose\t{status}\t{out}\t{out}.cpu0\t{out}.cpu1\n")
        with open(os.path.join(raw, "events.tsv"), "w") as f:
            f.write("round\tserver\tevent\tdetail\n")
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            rc = summarize.main([raw, os.path.join(raw, "report")])
        with open(os.path.join(raw, "report.md")) as f:
            return rc, f.read(), stderr.getvalue()

    def test_clean_run_passes(self):
        rc, md, err = self.summarize(0)
        self.assertEqual(rc, 0, err)
        self.assertIn("zero errors in all 1 runs", md)

    def test_generator_that_exited_non_zero_fails_the_run(self):
        # wrk's output parses and counts no error, but wrk exited with status 1: not a result.
        rc, md, err = self.summarize(1)
        self.assertEqual(rc, 3)
        self.assertIn("load generator exited with status 1", md)
        self.assertIn("FAILED run: round 1 synack wrk close: no result: the load generator exited"
                      " with status 1", err)
        self.assertNotIn("8949", md.split("## synack / nginx")[0].split("## Medians")[1])


class DemoVerdict(unittest.TestCase):
    """scripts/demo.sh's demo_verdict: every check it prints counts in the verdict."""

    GOOD = {"get": "ok", "get-ipv6": "ok", "head": "ok", "404": "ok", "wrk-keepalive": "9000 requests/s, 0 errors",
            "wrk-close": "8000 requests/s, 0 errors", "load-keepalive": "90000 requests/s, 0 errors",
            "load-close": "30000 requests/s, 0 errors", "exit": "ok"}

    def verdict(self, results):
        assign = " ".join(f"[{k}]={shlex.quote(v)}" for k, v in results.items())
        script = (f"source <(sed -n '/^demo_verdict() {{/,/^}}/p' '{HERE}/demo.sh')\n"
                  f"declare -A RESULT=({assign})\ndemo_verdict")
        p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=10)
        return p.returncode, p.stdout + p.stderr

    def test_all_ok(self):
        rc, out = self.verdict(self.GOOD)
        self.assertEqual(rc, 0, out)
        self.assertIn("404            ok", out)

    def test_each_failed_check_fails_the_verdict(self):
        bad = {"get": "FAILED (body 'x')", "get-ipv6": "FAILED (body '')", "head": "FAILED", "404": "got '200', expected 404",
               "wrk-keepalive": "9000 requests/s, 3 errors", "wrk-close": "FAILED (wrk)",
               "load-keepalive": "90000 requests/s, 2 errors", "load-close": "FAILED (synack load)",
               "exit": "exit status 1 (expected 0)"}
        for k, v in bad.items():
            with self.subTest(check=k):
                rc, out = self.verdict({**self.GOOD, k: v})
                self.assertEqual(rc, 1, out)
                self.assertIn(v, out)


if __name__ == "__main__":
    unittest.main()
