"""The missed-call path with each store: SQLite (the default) and PostgreSQL + Redis."""

import os
import unittest

from harness import (E2ETestCase, metric_families, new_call_sid, new_caller, parse_metrics,
                     redis_url_for, scaled, wait_until)


class Stores(E2ETestCase):
    def check_missed_call(self, rb):
        _, caller = self.missed_call(rb, "no-answer")
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)

    def check_store_metrics(self, rb, connections):
        """/metrics shows each store connection's jobs, transactions and
        (drained by now) backlog."""
        for connection in connections:
            self.assertGreaterEqual(
                rb.metric("ringback_store_jobs_total", connection=connection), 1, connection)
            self.assertGreaterEqual(
                rb.metric("ringback_store_transactions_total", connection=connection), 1,
                connection)
        # The backlog is a gauge per connection and lane, drained once idle
        # (a periodic scan may be waiting at the moment of a scrape).
        text = rb.get("/metrics").text
        self.assertEqual(metric_families(text).get("ringback_store_jobs_waiting"), "gauge")
        lanes = [(n, ls["connection"], ls["lane"]) for n, ls, _ in parse_metrics(text)
                 if n == "ringback_store_jobs_waiting"]
        self.assertEqual(sorted((c, l) for _, c, l in lanes),
                         sorted((c, l) for c in connections
                                for l in ("ahead", "queued", "urgent")))
        wait_until(lambda: rb.metric("ringback_store_jobs_waiting") == 0, scaled(10),
                   message="the store's backlog drained")

    def check_crash_recovery(self, rb):
        sid, caller, child = new_call_sid(), new_caller(), new_call_sid()
        self.mock.set_call(sid, "completed", 25, [(child, "no-answer", 0)], from_=caller)
        self.assertEqual(rb.webhooks.incoming(sid, caller).status, 200)
        rb.kill9()
        rb.restart()
        msgs = self.mock.expect_messages(2, timeout=scaled(20), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)

    def test_sqlite_is_the_default(self):
        rb = self.start_ringback()  # store: sqlite:ringback.db, kv: memory
        self.check_missed_call(rb)
        self.check_store_metrics(rb, ["main"])  # one connection, its urgent lane
        self.assertTrue(os.path.exists(os.path.join(rb.workdir, "ringback.db")),
                        os.listdir(rb.workdir))

    def test_postgres_and_redis(self):
        self.require_services()
        rb = self.start_ringback(store=self.pg_store(), kv=redis_url_for("test_stores"))
        self.check_missed_call(rb)
        self.check_store_metrics(rb, ["main", "urgent"])

    def test_postgres_and_redis_survive_kill9(self):
        self.require_services()
        rb = self.start_ringback(store=self.pg_store(), kv=redis_url_for("test_stores"),
                                 ring_timeout="1s", fallback_grace="1s")
        self.check_crash_recovery(rb)


if __name__ == "__main__":
    unittest.main()
