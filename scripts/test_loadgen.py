#!/usr/bin/env python3
"""Tests of loadgen.py against real wrk, xgen and /proc/stat output kept in scripts/testdata/.

  python3 scripts/test_loadgen.py
"""

import math
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import loadgen  # noqa: E402


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


if __name__ == "__main__":
    unittest.main()
