"""The carrier simulator's smoke run: a few hundred calls, correctness only.

benchmarks/run-scenario smoke drives the real binary with ringback_sim (C++):
signed webhooks at a constant arrival rate, answered and missed calls, lost and
duplicated Dial / status callbacks (so the fallback path that asks the Twilio
REST API runs), SMS replies. It asserts what the simulator asserts: every missed
call got exactly one text to the caller and one to the owner, no answered call
got one, nothing duplicated, each caller's reply relayed to the owner once.
Never timings: CI machines are shared.

ringback_sim is looked up in RINGBACK_SIM_BIN, else next to RINGBACK_BIN (both
executables are built into the build directory's top level).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from harness import SOURCE_DIR, E2ETestCase, require_services_flag, scaled, services_available

RUN_SCENARIO = os.path.join(SOURCE_DIR, "benchmarks", "run-scenario")
REDIS_DB = 13  # run-scenario --pg flushes and uses this index (harness.py owns 11, 12)


def sim_binary(ringback):
    sim = os.environ.get("RINGBACK_SIM_BIN") or os.path.join(
        os.path.dirname(os.path.abspath(ringback)), "ringback_sim")
    if os.path.isfile(sim) and os.access(sim, os.X_OK):
        return sim
    why = "ringback_sim not found at %s (build the ringback_sim target)" % sim
    if require_services_flag():
        raise AssertionError(why + " (RINGBACK_REQUIRE_SERVICES=1)")
    raise unittest.SkipTest(why)


class SimulatorSmoke(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sim = sim_binary(cls.binary)

    def run_smoke(self, *extra):
        json_path = os.path.join(self.tmpdir, "result.jsonl")
        cmd = [sys.executable, RUN_SCENARIO, "smoke", "--ringback", self.binary,
               "--sim", self.sim, "--json", json_path] + list(extra)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=scaled(400))
        output = proc.stdout
        results = []
        if os.path.exists(json_path):
            with open(json_path) as f:
                results = [json.loads(line) for line in f if line.strip()]
        self.assertEqual(proc.returncode, 0, "run-scenario smoke failed:\n" + output)
        self.assertEqual(len(results), 1, output)
        r = results[0]
        self.assertTrue(r["verified"], output)
        self.assertEqual(r["violations"], 0, json.dumps(r["violation_detail"]) + "\n" + output)
        self.assertFalse(r["aborted"], output)
        self.assertGreaterEqual(r["calls"], 200, output)
        # the run exercised what it claims to: missed and answered calls, texts,
        # and the fallback path (lost Dial callbacks, REST look-ups)
        self.assertGreater(r["missed"], 0, output)
        self.assertGreater(r["answered"], 0, output)
        self.assertGreater(r["messages"], 0, output)
        self.assertGreater(r["call_fetches"], 0, output)
        self.assertEqual(r["rest_unauthorized"], 0, output)
        # callers replied, and each reply reached the owner exactly once (a
        # lost or doubled relay is a violation above; this shows it was checked)
        conv = r["conversations"]
        self.assertGreater(conv["replies_ok"], 0, output)
        self.assertEqual(conv["relayed"], conv["replies_ok"], output)
        return r

    def test_smoke_embedded_defaults(self):
        self.run_smoke()

    def test_smoke_postgresql_and_redis(self):
        self.require_services()
        self.run_smoke("--pg", "--redis-db", str(REDIS_DB))


if __name__ == "__main__":
    unittest.main()
