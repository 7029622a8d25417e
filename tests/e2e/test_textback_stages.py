"""benchmarks/textback-stages on a log written here; needs no ringback binary."""

import os
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("RINGBACK_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.join(SOURCE, "benchmarks", "textback-stages")

# Two missed calls from the same caller (the second text must be matched with
# the second call), one answered call, and lines the script must skip.
LOG = """\
2026-11-22T02:00:00.000Z INFO service: listening on 127.0.0.1:8080
2026-11-22T02:00:00.100Z INFO tenant t1: CA1: incoming call from +15550001 to +15551000
2026-11-22T02:00:00.200Z INFO tenant t2: CA2: incoming call from +15550002 to +15551000
2026-11-22T02:00:01.000Z INFO call: CA1: dial result no-answer
2026-11-22T02:00:01.000Z INFO call: CA2: dial result completed
2026-11-22T02:00:01.007Z INFO call: CA1: outcome missed decided by dial_result
2026-11-22T02:00:01.008Z INFO call: CA2: outcome answered decided by dial_result
2026-11-22T02:00:01.017Z INFO outbox: message 1 to +15550001 sent as SM1
2026-11-22T02:00:01.018Z INFO outbox: message 2 to +15551999 sent as SM2
2026-11-22T02:00:05.000Z INFO tenant t1: CA3: incoming call from +15550001 to +15551000
2026-11-22T02:00:06.000Z INFO call: CA3: dial result no-answer
2026-11-22T02:00:06.000Z WARN call: CA3: dial result no-answer
2026-11-22T02:00:06.100Z INFO call: CA3: outcome missed decided by dial_result
2026-11-22T02:00:06.400Z INFO outbox: message 3 to +15550001 sent as SM3
"""


class TextbackStages(unittest.TestCase):
    def run_script(self, *args):
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True,
                              text=True, timeout=60)

    def test_stages_of_each_missed_call(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write(LOG)
        try:
            out = self.run_script(f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        # CA1: 7 ms, then 10 ms; CA3: 100 ms, then 300 ms (not CA1's text).
        self.assertEqual(lines[0].split(), ["dial->decided", "n=2", "p50", "100", "p90",
                                            "100", "p99", "100", "max", "100"])
        self.assertEqual(lines[1].split(), ["decided->sent", "n=2", "p50", "300", "p90",
                                            "300", "p99", "300", "max", "300"])
        self.assertEqual(lines[2].split(), ["dial->sent", "n=2", "p50", "400", "p90",
                                            "400", "p99", "400", "max", "400"])

    def test_usage_without_a_log(self):
        out = self.run_script()
        self.assertEqual(out.returncode, 2)
        self.assertIn("textback-stages RINGBACK.LOG", out.stdout)


if __name__ == "__main__":
    unittest.main()
