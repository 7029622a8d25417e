"""300 missed calls at once: 600 texts, every caller exactly once."""

import collections
import unittest

from harness import (BUSINESS_NUMBER, E2ETestCase, OWNER_PHONE, new_call_sid, new_caller,
                     run_concurrently, scaled, tenant_config)

CALLS = 300


class Concurrency(E2ETestCase):
    def test_300_concurrent_missed_calls(self):
        # 600 texts from one number: paced as a long code (1/s) they would take
        # ten minutes; this test is about exactly-once, not pacing.
        rb = self.start_ringback(tenants=[tenant_config(
            numbers=[{"number": BUSINESS_NUMBER, "mps": 1000}])])
        calls = []
        for _ in range(CALLS):
            sid, caller, child = new_call_sid(), new_caller(), new_call_sid()
            self.mock.set_call(sid, "completed", 25, [(child, "no-answer", 0)], from_=caller)
            calls.append((sid, caller, child))

        def one(call):
            sid, caller, child = call
            r = rb.webhooks.incoming(sid, caller)
            if r.status != 200:
                return "incoming %s: %d %s" % (sid, r.status, r.text[:200])
            r = rb.webhooks.dial_result(sid, "no-answer", 0, dial_call_sid=child)
            if r.status != 200:
                return "dial-result %s: %d %s" % (sid, r.status, r.text[:200])
            return None

        errors = [e for e in run_concurrently([lambda c=c: one(c) for c in calls], workers=32) if e]
        self.assertEqual(errors, [])
        msgs = self.mock.expect_messages(2 * CALLS, timeout=scaled(120), quiet=2.0)
        by_to = collections.Counter(m["To"] for m in msgs)
        self.assertEqual(by_to[OWNER_PHONE], CALLS)
        self.assertEqual(sorted(c for c in by_to if c != OWNER_PHONE),
                         sorted(caller for _, caller, _ in calls))
        self.assertEqual({n for n in by_to.values()} - {CALLS}, {1})
        self.assertEqual({m["From"] for m in msgs}, {BUSINESS_NUMBER})
        self.assert_all_authorized()


if __name__ == "__main__":
    unittest.main()
