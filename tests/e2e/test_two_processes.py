"""Two ringback processes share one PostgreSQL database and one Redis: a call's
callbacks may land on either, and the texts still go out exactly once."""

import collections
import itertools
import unittest

from harness import (BUSINESS_NUMBER, E2ETestCase, OWNER_PHONE, new_call_sid, new_caller,
                     redis_url_for, run_concurrently, scaled, tenant_config)


class TwoProcesses(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.require_services()
        store = self.pg_store()
        kv = redis_url_for("test_two_processes")
        # 40 texts from one number would take 40 s at a long code's pace (1/s):
        # these tests are about exactly-once (test_messaging checks the pace).
        tenants = [tenant_config(numbers=[{"number": BUSINESS_NUMBER, "mps": 100}])]
        self.a = self.start_ringback("node-a", store=store, kv=kv, tenants=tenants)
        self.b = self.start_ringback("node-b", store=store, kv=kv, tenants=tenants)

    def test_callbacks_split_across_nodes(self):
        sid, caller, child = new_call_sid(), new_caller(), new_call_sid()
        self.mock.set_call(sid, "completed", 25, [(child, "no-answer", 0)], from_=caller)
        self.assertEqual(self.a.webhooks.incoming(sid, caller).status, 200)
        results = run_concurrently([
            lambda: self.b.webhooks.dial_result(sid, "no-answer", 0, dial_call_sid=child),
            lambda: self.a.webhooks.dial_result(sid, "no-answer", 0, dial_call_sid=child),
        ], workers=2)
        self.assertEqual([r.status for r in results], [200, 200], [r.text for r in results])
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)
        self.assert_all_authorized()

    def test_twenty_calls_mixed(self):
        nodes = itertools.cycle([(self.a, self.b), (self.b, self.a), (self.a, self.a),
                                 (self.b, self.b)])
        calls = []
        for first, second in itertools.islice(nodes, 20):
            sid, caller, child = new_call_sid(), new_caller(), new_call_sid()
            self.mock.set_call(sid, "completed", 25, [(child, "no-answer", 0)], from_=caller)
            calls.append((first, second, sid, caller, child))

        def one(call):
            first, second, sid, caller, child = call
            other = self.b if second is self.a else self.a
            for name, r in (
                    ("incoming@" + first.node_id, first.webhooks.incoming(sid, caller)),
                    ("dial-result@" + second.node_id,
                     second.webhooks.dial_result(sid, "no-answer", 0, dial_call_sid=child)),
                    # and a duplicate on the other node
                    ("duplicate@" + other.node_id,
                     other.webhooks.dial_result(sid, "no-answer", 0, dial_call_sid=child))):
                if r.status != 200:
                    return "%s %s: %d %s" % (name, sid, r.status, r.text[:200])
            return None

        errors = [e for e in run_concurrently([lambda c=c: one(c) for c in calls], workers=8) if e]
        self.assertEqual(errors, [])
        msgs = self.mock.expect_messages(40, timeout=scaled(30), quiet=2.0)
        by_to = collections.Counter(m["To"] for m in msgs)
        self.assertEqual(by_to[OWNER_PHONE], 20, by_to)
        for _, _, _, caller, _ in calls:
            self.assertEqual(by_to[caller], 1, caller)


if __name__ == "__main__":
    unittest.main()
