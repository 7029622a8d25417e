"""Messaging that carriers and customers accept (issue 4), end to end: the real
binary against the recording Twilio mock.

- carrier faults: 429 with Retry-After, 500s and timeouts are retried (and a
  send whose answer was lost is looked up, not repeated); 21610, 21211 and
  21614 are not retried, and 21610 opts the recipient out;
- pacing: one number at its rate and in the calls' order, measured at the
  mock; two processes sharing Redis never exceed one number's rate;
- kill -9 with a queued backlog: every message is sent exactly once;
- STOP / START / HELP keywords, carrier retries of them, the opt-out ledger
  across a tenant's numbers; repeat-caller and caller-rate guards;
- status callbacks in and out of order (never backwards), their signature;
- GET /metrics.

Timing checks allow for a loaded machine (RINGBACK_E2E_TIME_SCALE stretches
every wait; rates are checked with slack, never to the millisecond).
"""

import base64
import collections
import http.server
import os
import shutil
import sqlite3
import threading
import time
import unittest
import urllib.parse

import harness
from harness import (BUSINESS_NUMBER, E2ETestCase, OWNER_PHONE, PUBLIC_URL, SMS_STATUS_PATH,
                     TwilioMock, display_phone, http_request, metric_families, metric_value, new_call_sid,
                     new_caller, new_message_sid, parse_metrics, redis_url_for, render_config,
                     run_concurrently, scaled, tenant_config, twilio_signature, wait_until)

STATUS_URL = PUBLIC_URL + SMS_STATUS_PATH
SECOND_NUMBER = "+15005550003"
# A number fast enough that pacing never matters in tests about something else.
FAST = {"number": BUSINESS_NUMBER, "mps": 50}
FAST_SECOND = {"number": SECOND_NUMBER, "mps": 50}

ECHO_WORKFLOW = """\
name: echo
trigger: sms.received
steps:
  - send_sms:
      to: "{{ sms.from }}"
      body: "Got it: {{ sms.body }}"
"""


def windows_over(times, width=1.0):
    """The largest number of `times` in any half-open window [t, t + width)."""
    best = 0
    for i, t in enumerate(times):
        n = sum(1 for u in times[i:] if u < t + width)
        best = max(best, n)
    return best


class MessagingCase(E2ETestCase):
    """Helpers shared by the messaging tests."""

    def missed(self, rb, caller=None, to=BUSINESS_NUMBER, status="no-answer"):
        """A missed call from `caller` to the business number `to`."""
        caller = caller or new_caller()
        sid, child = new_call_sid(), new_call_sid()
        self.mock.set_call(sid, "completed", 25, [(child, status, 0)], from_=caller, to=to)
        r = rb.webhooks.incoming(sid, caller, to=to)
        self.assertEqual(r.status, 200, r.text)
        r = rb.webhooks.dial_result(sid, status, 0, dial_call_sid=child)
        self.assertEqual(r.status, 200, r.text)
        return caller

    def inbound(self, rb, from_, body, to=BUSINESS_NUMBER, sid=None):
        """An inbound SMS; ringback answers it at once with (empty) TwiML."""
        sid = sid or new_message_sid()
        r = rb.webhooks.sms(sid, from_, to, body)
        self.assertEqual(r.status, 200, r.text)
        return sid

    def to(self, who, msgs=None):
        msgs = self.mock.messages() if msgs is None else msgs
        return [m for m in msgs if m.get("To") == who]

    def posts_to(self, who):
        return [r for r in self.mock.message_posts() if r.form.get("To") == who]

    def db_messages(self, rb, to=None):
        """Rows of the outbox in the SQLite store: dicts of to_number, state,
        error_code, message_sid, attempts, body, in id order."""
        path = os.path.join(rb.workdir, "ringback.db")
        conn = sqlite3.connect(path, timeout=30)
        try:
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM messages ORDER BY id").fetchall()
        finally:
            conn.close()
        out = [dict(r) for r in rows]
        return [r for r in out if to is None or r["to_number"] == to]

    def wait_metric(self, rb, name, value, timeout=None, **labels):
        """Waits until GET /metrics has `name{labels}` == value."""
        seen = []

        def check():
            v = rb.metric(name, **labels)
            seen[:] = [v]
            return v == value
        try:
            wait_until(check, scaled(10) if timeout is None else timeout, interval=0.1,
                       message="%s%r == %r" % (name, labels, value))
        except AssertionError:
            self.fail("%s%r: expected %r, got %r" % (name, labels, value, seen[:1]))

    def workflows_with(self, files):
        """The shipped workflows plus `files` (name -> text), in a temp dir."""
        d = os.path.join(self.tmpdir, "workflows")
        shutil.copytree(os.path.join(harness.SOURCE_DIR, "workflows"), d,
                        ignore=shutil.ignore_patterns("*.cpp", "*.txt", "include", "src",
                                                      "*.test.yaml"))
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        return d


# -- carrier faults ------------------------------------------------------------------------------

class CarrierFaults(MessagingCase):
    def test_429_is_retried_after_retry_after(self):
        rb = self.start_ringback(tenants=[tenant_config(numbers=[FAST])])
        caller = new_caller()
        self.mock.fail_messages_to(caller, status=429, retry_after=2, times=1)
        self.missed(rb, caller)
        msgs = self.mock.expect_messages(2, timeout=scaled(20), quiet=1.0)
        self.assert_missed_call_texts(msgs, caller)
        posts = self.posts_to(caller)
        self.assertEqual([p.status for p in posts], [429, 201])
        # Retry-After: 2 is a minimum (measured at the mock; a little slack for
        # the two clocks' readings of one machine).
        self.assertGreaterEqual(posts[1].time - posts[0].time, 1.9)
        self.wait_metric(rb, "ringback_message_retries_total", 1, reason="429", tenant="acme",
                         number=BUSINESS_NUMBER)
        self.wait_metric(rb, "ringback_messages_sent_total", 2, tenant="acme",
                         number=BUSINESS_NUMBER)
        self.assertEqual(rb.metric("ringback_messages_failed_total"), 0)

    def test_500s_and_timeouts_are_retried_and_each_message_arrives_once(self):
        rb = self.start_ringback(tenants=[tenant_config(numbers=[FAST])])
        five, lost, late = new_caller(), new_caller(), new_caller()
        # Two 500s, then accepted.
        self.mock.fail_messages_to(five, status=500, times=2)
        # No answer for longer than ringback's request timeout (10 s), then a
        # closed connection: the carrier never took it, it must be sent again.
        self.mock.fail_messages_to(lost, hold=11, then="drop", times=1)
        # Taken at once, but the answer comes after ringback gave up: it must
        # find it at the carrier and not send it again.
        self.mock.fail_messages_to(late, hold=11, then="accept", times=1)
        for caller in (five, lost, late):
            self.missed(rb, caller)
        msgs = self.mock.expect_messages(6, timeout=scaled(45), quiet=2.0)
        for caller in (five, lost, late):
            self.assertEqual(len(self.to(caller, msgs)), 1, (caller, msgs))
        self.assertEqual(len(self.to(OWNER_PHONE, msgs)), 3, msgs)
        self.assertEqual([p.status for p in self.posts_to(five)], [500, 500, 201])
        self.assertEqual([p.status for p in self.posts_to(lost)], [0, 201])
        self.assertEqual([p.status for p in self.posts_to(late)], [201])
        self.assertGreaterEqual(len(self.mock.message_lookups()), 1)
        self.assertIn("not sent again", rb.log_text())
        # A 500 or a timeout leaves the outcome unknown: ringback looks the
        # message up, and resends only what never arrived (two for the 500s,
        # one for the dropped request; the late one was found).
        self.wait_metric(rb, "ringback_message_retries_total", 3, tenant="acme",
                         number=BUSINESS_NUMBER)
        self.assertEqual(rb.metric("ringback_messages_failed_total"), 0)
        # (The late one may count as sent when the lookup finds it.)
        self.assertGreaterEqual(rb.metric("ringback_messages_sent_total", tenant="acme"), 5)
        self.assert_all_authorized()

    def test_permanent_errors_are_not_retried_and_21610_opts_out(self):
        rb = self.start_ringback(tenants=[tenant_config(numbers=[FAST])])
        unsubscribed, invalid, landline = new_caller(), new_caller(), new_caller()
        self.mock.fail_messages_to(unsubscribed, status=400, code=21610)
        self.mock.fail_messages_to(invalid, status=400, code=21211)
        self.mock.fail_messages_to(landline, status=400, code=21614)
        for caller in (unsubscribed, invalid, landline):
            self.missed(rb, caller)
        # The owner hears of all three calls; each caller's text was tried once.
        wait_until(lambda: len(self.to(OWNER_PHONE)) == 3 and all(
            self.posts_to(c) for c in (unsubscribed, invalid, landline)), scaled(15),
            message="three owner notes and three attempts")
        time.sleep(scaled(2.5))  # a retry would come within the first backoff (<= 1 s)
        for caller, code in ((unsubscribed, 21610), (invalid, 21211), (landline, 21614)):
            posts = self.posts_to(caller)
            self.assertEqual([p.status for p in posts], [400], caller)
            self.wait_metric(rb, "ringback_messages_failed_total", 1, error_code=str(code),
                             tenant="acme", number=BUSINESS_NUMBER)
            row = self.db_messages(rb, to=caller)
            self.assertEqual([(r["state"], r["error_code"]) for r in row], [("failed", code)])
        self.assertEqual(rb.metric("ringback_message_retries_total"), 0)
        self.wait_metric(rb, "ringback_opt_outs_total", 1, source="carrier", tenant="acme")
        # 21610 was recorded as an opt-out: the next missed call from that caller
        # only notifies the owner (the refusal says why).
        self.mock.clear_faults()
        self.missed(rb, unsubscribed)
        wait_until(lambda: len(self.to(OWNER_PHONE)) == 4, scaled(10), message="4th owner note")
        self.mock.assert_message_count_stays(4, scaled(1.5))
        self.assertEqual(len(self.posts_to(unsubscribed)), 1)
        self.wait_metric(rb, "ringback_messages_refused_total", 1, reason="opted_out",
                         tenant="acme")

    @unittest.skipUnless(os.environ.get("RINGBACK_E2E_SLOW") == "1",
                         "RINGBACK_E2E_SLOW=1: eight attempts with backoff take 1-2 minutes")
    def test_retries_are_bounded(self):
        rb = self.start_ringback(tenants=[tenant_config(numbers=[FAST])])
        caller = new_caller()
        self.mock.fail_messages_to(caller, status=503)
        self.missed(rb, caller)
        self.wait_metric(rb, "ringback_messages_failed_total", 1, timeout=scaled(240),
                         error_code="20500", tenant="acme")
        self.assertEqual(len(self.posts_to(caller)), 8)
        # The failure is counted before it is saved: wait for the store too.
        row = wait_until(lambda: (lambda rows: rows if [r["state"] for r in rows] != ["sending"]
                                  else None)(self.db_messages(rb, to=caller)), scaled(10),
                         interval=0.1, message="the failure saved")
        self.assertEqual([(r["state"], r["error_code"], r["attempts"]) for r in row],
                         [("failed", 20500, 8)])
        self.assertIn("Internal Server Error", row[0]["error_message"])


# -- pacing -------------------------------------------------------------------------------------

class Pacing(MessagingCase):
    RATE = 5.0
    CALLS = 20

    def check_pace(self, times, rate):
        n = len(times)
        span = times[-1] - times[0]
        self.assertGreaterEqual(span, 0.8 * (n - 1) / rate,
                                "%d sends in %.2fs at %.1f/s" % (n, span, rate))
        worst = windows_over(times)
        self.assertLessEqual(worst, rate + 1, "%d sends within one second (rate %.1f/s): %s"
                             % (worst, rate, ["%.3f" % (t - times[0]) for t in times]))

    def test_one_number_drains_a_burst_at_its_rate_in_order(self):
        rb = self.start_ringback(tenants=[tenant_config(
            numbers=[{"number": BUSINESS_NUMBER, "mps": self.RATE}])])
        callers = [self.missed(rb) for _ in range(self.CALLS)]
        # The backlog is visible while it drains.
        depth = rb.metric("ringback_outbox_queue_depth", tenant="acme", number=BUSINESS_NUMBER)
        self.assertGreaterEqual(depth, 5)
        n = 2 * self.CALLS
        timeout = scaled(n / self.RATE * 2 + 10)
        msgs = self.mock.expect_messages(n, timeout=timeout, quiet=1.0)
        for caller in callers:
            self.assertEqual(len(self.to(caller, msgs)), 1, caller)
        sends = self.mock.send_times(from_=BUSINESS_NUMBER)
        self.assertEqual(len(sends), n)
        # In the calls' order.
        self.assertEqual([f["To"] for _, f in sends if f["To"] != OWNER_PHONE], callers)
        self.check_pace([t for t, _ in sends], self.RATE)
        # Metrics: every message counted, waited and drained.
        samples = rb.metrics()
        self.assertEqual(metric_value(samples, "ringback_messages_sent_total", tenant="acme",
                                      number=BUSINESS_NUMBER), n)
        self.assertEqual(metric_value(samples, "ringback_outbox_queue_wait_seconds_count",
                                      tenant="acme", number=BUSINESS_NUMBER), n)
        # 40 messages at 5/s wait about 0.2 s x (0 + 1 + ... + 39) = 156 s in all.
        self.assertGreater(metric_value(samples, "ringback_outbox_queue_wait_seconds_sum",
                                        tenant="acme"), 40)
        self.assertEqual(metric_value(samples, "ringback_outbox_queue_depth", tenant="acme",
                                      number=BUSINESS_NUMBER), 0)

    def test_two_processes_sharing_redis_keep_one_numbers_pace(self):
        self.require_services()
        store = self.pg_store()
        kv = redis_url_for("test_messaging")
        rate = 4.0
        tenants = [tenant_config(numbers=[{"number": BUSINESS_NUMBER, "mps": rate}])]
        a = self.start_ringback("node-a", store=store, kv=kv, tenants=tenants)
        b = self.start_ringback("node-b", store=store, kv=kv, tenants=tenants)
        calls = 12
        callers = [new_caller() for _ in range(calls)]
        run_concurrently([lambda c=c, rb=rb: self.missed(rb, c)
                          for c, rb in zip(callers, [a, b] * calls)], workers=4)
        n = 2 * calls
        msgs = self.mock.expect_messages(n, timeout=scaled(n / rate * 2 + 10), quiet=1.5)
        by_to = collections.Counter(m["To"] for m in msgs)
        self.assertEqual(by_to[OWNER_PHONE], calls, by_to)
        for c in callers:
            self.assertEqual(by_to[c], 1, c)
        # Both processes sent (or the test proves nothing about sharing).
        sent = [rb.metric("ringback_messages_sent_total", number=BUSINESS_NUMBER) for rb in (a, b)]
        self.assertEqual(sum(sent), n, sent)
        self.assertTrue(all(x > 0 for x in sent), sent)
        self.check_pace([t for t, _ in self.mock.send_times(from_=BUSINESS_NUMBER)], rate)


# -- kill -9 with a backlog --------------------------------------------------------------------------

class Backlog(MessagingCase):
    def test_kill9_with_a_queued_backlog_sends_every_message_once(self):
        rate = 2.0
        rb = self.start_ringback(tenants=[tenant_config(
            numbers=[{"number": BUSINESS_NUMBER, "mps": rate}])])
        calls = 8
        callers = [self.missed(rb) for _ in range(calls)]
        self.mock.wait_for_messages(4, timeout=scaled(15))
        rb.kill9()
        sent_before = self.mock.message_count()
        self.assertLess(sent_before, 2 * calls)  # there is a backlog to recover
        rb.start()
        msgs = self.mock.expect_messages(2 * calls, timeout=scaled(2 * calls / rate * 2 + 15),
                                         quiet=2.0)
        by_to = collections.Counter(m["To"] for m in msgs)
        self.assertEqual(by_to[OWNER_PHONE], calls, by_to)
        for c in callers:
            self.assertEqual(by_to[c], 1, c)
        # The store agrees: every message sent, each with its own carrier sid.
        rows = self.db_messages(rb)
        self.assertEqual(len(rows), 2 * calls)
        self.assertEqual({r["state"] for r in rows} - {"sent", "delivered"}, set(), rows)
        self.assertEqual(len({r["message_sid"] for r in rows}), 2 * calls)


# -- keywords and the opt-out ledger --------------------------------------------------------------------

class Keywords(MessagingCase):
    HELP = "Acme Plumbing: call +1 500 555 0001. Reply STOP to opt out."
    STOP_REPLY = "You will get no more texts from Acme Plumbing. Reply START to opt back in."
    START_REPLY = "Welcome back: Acme Plumbing texts are on again."

    def test_stop_start_help_across_the_tenants_numbers(self):
        d = self.workflows_with({"echo.yaml": ECHO_WORKFLOW})
        rb = self.start_ringback(workflows=d, tenants=[tenant_config(
            numbers=[FAST, FAST_SECOND],
            messaging={"help_text": self.HELP, "stop_reply": self.STOP_REPLY,
                       "start_reply": self.START_REPLY})])
        x = new_caller()
        # An ordinary text starts the sms.received workflows, and is relayed
        # to the owner (the customer's conversation, issue 5; keywords are not).
        self.inbound(rb, x, "hello")
        msgs = self.mock.expect_messages(2, quiet=1.0)
        self.assertEqual(sorted((m["To"], m["Body"]) for m in msgs), sorted([
            (x, "Got it: hello"), (OWNER_PHONE, "[#1 %s] hello" % display_phone(x))]))
        # STOP to the second number (and the carrier's retry of it): one
        # confirmation from that number, no workflow.
        sid = self.inbound(rb, x, " Stop. ", to=SECOND_NUMBER)
        self.inbound(rb, x, " Stop. ", to=SECOND_NUMBER, sid=sid)
        msgs = self.mock.expect_messages(3, quiet=1.5)
        self.assertEqual((msgs[2]["From"], msgs[2]["To"], msgs[2]["Body"]),
                         (SECOND_NUMBER, x, self.STOP_REPLY))
        # The opt-out covers all the tenant's numbers: a missed call on the
        # first one only notifies the owner.
        self.missed(rb, x)
        msgs = self.mock.expect_messages(4, quiet=1.5)
        self.assertEqual(msgs[3]["To"], OWNER_PHONE)
        self.wait_metric(rb, "ringback_messages_refused_total", 1, reason="opted_out",
                         tenant="acme")
        # START opts back in (confirmation from the number texted).
        self.inbound(rb, x, "start")
        msgs = self.mock.expect_messages(5, quiet=1.0)
        self.assertEqual((msgs[4]["From"], msgs[4]["To"], msgs[4]["Body"]),
                         (BUSINESS_NUMBER, x, self.START_REPLY))
        # HELP, twice with one MessageSid (a carrier retry): one answer, from
        # the number texted.
        sid = self.inbound(rb, x, "HELP", to=SECOND_NUMBER)
        self.inbound(rb, x, "HELP", to=SECOND_NUMBER, sid=sid)
        msgs = self.mock.expect_messages(6, quiet=1.5)
        self.assertEqual((msgs[5]["From"], msgs[5]["To"], msgs[5]["Body"]),
                         (SECOND_NUMBER, x, self.HELP))
        # Opted in again: the next missed call texts back (the refused one did
        # not count as a text-back).
        self.missed(rb, x)
        msgs = self.mock.expect_messages(8, quiet=1.0)
        self.assertEqual(sorted(m["To"] for m in msgs[6:]), sorted([x, OWNER_PHONE]))
        self.assertFalse([m for m in msgs if m["Body"].startswith("Got it: ")
                          and m["Body"] != "Got it: hello"], msgs)
        samples = rb.metrics()
        for keyword, n in (("none", 1), ("opt_out", 1), ("opt_in", 1), ("help", 1)):
            self.assertEqual(metric_value(samples, "ringback_inbound_messages_total",
                                          keyword=keyword, tenant="acme"), n, keyword)
        self.assertEqual(metric_value(samples, "ringback_opt_outs_total", source="keyword",
                                      tenant="acme"), 1)
        self.assertEqual(metric_value(samples, "ringback_opt_ins_total", tenant="acme"), 1)

    def test_every_opt_out_keyword_and_the_default_help(self):
        rb = self.start_ringback(tenants=[tenant_config(numbers=[FAST])])
        spellings = ["STOP", " stop ", "Stop.", "STOPALL", "unsubscribe", "Cancel", "END",
                     "quit", "REVOKE", "optout"]
        senders = [new_caller() for _ in spellings]
        for sender, body in zip(senders, spellings):
            self.inbound(rb, sender, body)
        not_keyword = new_caller()
        self.inbound(rb, not_keyword, "stop by tomorrow please")
        # No stop_reply configured: nothing is sent (the carrier confirms);
        # the one text that is no keyword is relayed to the owner (issue 5).
        self.wait_metric(rb, "ringback_opt_outs_total", len(spellings), source="keyword",
                         tenant="acme")
        msgs = self.mock.expect_messages(1, quiet=1.0)
        self.assertEqual((msgs[0]["To"], msgs[0]["Body"]), (
            OWNER_PHONE, "[#1 %s] stop by tomorrow please" % display_phone(not_keyword)))
        self.assertEqual(rb.metric("ringback_inbound_messages_total", keyword="opt_out"),
                         len(spellings))
        self.assertEqual(rb.metric("ringback_inbound_messages_total", keyword="none"), 1)
        # UNSTOP and YES opt back in.
        self.inbound(rb, senders[0], "UNSTOP")
        self.inbound(rb, senders[1], "yes")
        self.wait_metric(rb, "ringback_opt_ins_total", 2, tenant="acme")
        # The default HELP answer names how to opt out.
        asker = new_caller()
        self.inbound(rb, asker, "info")
        msgs = self.mock.expect_messages(2, quiet=1.0)
        self.assertEqual((msgs[1]["From"], msgs[1]["To"]), (BUSINESS_NUMBER, asker))
        self.assertIn("STOP", msgs[1]["Body"])
        # Opted out: only the owner hears of their calls; opted back in and
        # never opted out: the caller is texted back.
        for caller in (senders[2], senders[9], senders[0], not_keyword):
            self.missed(rb, caller)
        msgs = self.mock.expect_messages(1 + 1 + 4 + 2, quiet=1.5)
        texted = {m["To"] for m in msgs if m["To"] != OWNER_PHONE} - {asker}
        self.assertEqual(texted, {senders[0], not_keyword})
        self.wait_metric(rb, "ringback_messages_refused_total", 2, reason="opted_out",
                         tenant="acme")


# -- guards -------------------------------------------------------------------------------------

class Guards(MessagingCase):
    def test_repeat_caller_and_caller_rate(self):
        bob_number, bob_owner = "+15005550011", "+15005550012"
        rb = self.start_ringback(tenants=[
            tenant_config(numbers=[FAST]),
            {"id": "bob", "name": "Bob's Bikes", "numbers": [{"number": bob_number, "mps": 50}],
             "owner_phone": bob_owner, "timezone": "UTC",
             "messaging": {"repeat_caller_window": "off", "caller_rate_limit": 2,
                           "caller_rate_window": "1m"}},
        ])
        # acme (defaults): a caller missed twice gets one text-back.
        x = new_caller()
        self.missed(rb, x)
        self.missed(rb, x)
        # bob: no repeat-caller guard, but at most 2 calls a minute texted.
        y = new_caller()
        for _ in range(4):
            self.missed(rb, y, to=bob_number)
        msgs = self.mock.expect_messages(2 + 1 + 4 + 2, timeout=scaled(20), quiet=1.5)
        self.assertEqual(len(self.to(x, msgs)), 1)
        self.assertEqual(len(self.to(OWNER_PHONE, msgs)), 2)
        self.assertEqual(len(self.to(y, msgs)), 2)
        self.assertEqual(len(self.to(bob_owner, msgs)), 4)
        self.assertEqual({m["From"] for m in self.to(y, msgs) + self.to(bob_owner, msgs)},
                         {bob_number})
        self.wait_metric(rb, "ringback_messages_refused_total", 1, reason="repeat_caller",
                         tenant="acme")
        self.wait_metric(rb, "ringback_messages_refused_total", 2, reason="caller_rate",
                         tenant="bob")
        self.assertEqual(rb.metric("ringback_messages_refused_total", tenant="bob",
                                   reason="repeat_caller"), 0)
        refused = [r for r in self.db_messages(rb) if r["state"] == "refused"]
        self.assertEqual(sorted((r["to_number"], r["reason"]) for r in refused),
                         sorted([(x, "repeat_caller"), (y, "caller_rate"), (y, "caller_rate")]))


# -- status callbacks ------------------------------------------------------------------------------

class StatusCallbacks(MessagingCase):
    def final_states(self, rb, expected):
        """Waits until the outbox rows to each recipient are in the expected
        (state, error_code); returns the rows."""
        def check():
            rows = self.db_messages(rb)
            got = {r["to_number"]: (r["state"], r["error_code"]) for r in rows}
            return rows if all(got.get(k) == v for k, v in expected.items()) else None
        try:
            return wait_until(check, scaled(10), interval=0.1, message="delivery states")
        except AssertionError:
            self.fail("states: %r, expected %r" % (
                [(r["to_number"], r["state"], r["error_code"]) for r in self.db_messages(rb)],
                expected))

    def test_reports_are_applied_and_metrics_show_them(self):
        rb = self.start_ringback(tenants=[tenant_config(numbers=[FAST])])
        unreachable = new_caller()
        # The reports come once ringback has saved each send's MessageSid
        # (a report before it counts as "unknown": a loaded machine can take
        # a few hundred milliseconds; the race itself is tested elsewhere).
        self.mock.enable_status_callbacks(rb.url, undelivered={unreachable},
                                          delay=scaled(1.0))
        reached = self.missed(rb)
        self.missed(rb, unreachable)
        msgs = self.mock.expect_messages(4, quiet=0.5)
        # Every send asks for delivery reports at the public URL.
        self.assertEqual({m.get("StatusCallback") for m in msgs}, {STATUS_URL})
        callbacks = self.mock.wait_for_status_callbacks(8)
        self.assertEqual({c["http_status"] for c in callbacks}, {204},
                         [(c["status"], c["http_status"]) for c in callbacks])
        self.assertLess(max(c["seconds"] for c in callbacks), scaled(2.0))
        self.final_states(rb, {reached: ("delivered", 0), OWNER_PHONE: ("delivered", 0),
                               unreachable: ("undelivered", 30003)})
        self.wait_metric(rb, "ringback_messages_delivered_total", 3, tenant="acme",
                         number=BUSINESS_NUMBER)
        self.wait_metric(rb, "ringback_messages_undelivered_total", 1, tenant="acme",
                         error_code="30003")
        text = rb.get("/metrics")
        self.assertEqual(text.status, 200)
        self.assertTrue(text.headers.get("content-type", "").startswith("text/plain"),
                        text.headers)
        samples = parse_metrics(text.text)
        self.assertEqual(metric_value(samples, "ringback_status_reports_total"), 8)
        self.assertEqual(metric_value(samples, "ringback_status_reports_total",
                                      result="unknown"), 0)
        self.assertEqual(metric_value(samples, "ringback_messages_sent_total", tenant="acme",
                                      number=BUSINESS_NUMBER), 4)
        families = metric_families(text.text)
        for name, kind in (("ringback_messages_sent_total", "counter"),
                           ("ringback_messages_delivered_total", "counter"),
                           ("ringback_messages_undelivered_total", "counter"),
                           ("ringback_status_reports_total", "counter"),
                           ("ringback_messages_queued_total", "counter"),
                           ("ringback_outbox_queue_depth", "gauge"),
                           ("ringback_outbox_queue_wait_seconds", "histogram")):
            self.assertEqual(families.get(name), kind, name)
        # The histogram is whole: cumulative buckets ending in +Inf = count.
        buckets = [(float(ls["le"]), v) for n, ls, v in samples
                   if n == "ringback_outbox_queue_wait_seconds_bucket"
                   and ls.get("number") == BUSINESS_NUMBER]
        buckets.sort()
        self.assertEqual(buckets[-1], (float("inf"), 4.0))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))

    def test_late_repeated_and_stray_reports_never_move_a_message_back(self):
        rb = self.start_ringback(tenants=[tenant_config(numbers=[FAST])])
        # delivered first, then a late "sent"; each callback twice.
        # After the sends are saved, as above.
        self.mock.enable_status_callbacks(rb.url, order="reverse", repeat=2,
                                          delay=scaled(1.0))
        caller = self.missed(rb)
        self.mock.expect_messages(2, quiet=0.5)
        callbacks = self.mock.wait_for_status_callbacks(8)
        self.assertEqual({c["http_status"] for c in callbacks}, {204})
        rows = self.final_states(rb, {caller: ("delivered", 0), OWNER_PHONE: ("delivered", 0)})
        time.sleep(scaled(0.5))
        self.final_states(rb, {caller: ("delivered", 0), OWNER_PHONE: ("delivered", 0)})
        self.wait_metric(rb, "ringback_messages_delivered_total", 2, tenant="acme")
        self.assertGreaterEqual(rb.metric("ringback_status_reports_total", result="stale"), 4)
        # By hand: "failed" and "sent" after delivered change nothing either.
        sid = next(r["message_sid"] for r in rows if r["to_number"] == caller)
        for status in ("failed", "sent", "queued"):
            r = rb.webhooks.sms_status(sid, status, to=caller, error_code=30008
                                       if status == "failed" else None)
            self.assertEqual(r.status, 204, r.text)
        self.final_states(rb, {caller: ("delivered", 0)})
        self.assertEqual(rb.metric("ringback_messages_delivered_total"), 2)
        self.assertEqual(rb.metric("ringback_messages_undelivered_total"), 0)
        # Unknown MessageSid: logged, still 2xx.
        stray = new_message_sid()
        r = rb.webhooks.sms_status(stray, "delivered", to=new_caller())
        self.assertEqual(r.status // 100, 2, r.text)
        self.wait_metric(rb, "ringback_status_reports_total", 1, result="unknown")
        wait_until(lambda: stray in rb.log_text(), scaled(5), message="the stray sid logged")
        # Unsigned or wrongly signed: 403, and nothing counted.
        before = rb.metric("ringback_status_reports_total")
        self.assertEqual(rb.webhooks.sms_status(sid, "undelivered", signature=None).status, 403)
        self.assertEqual(rb.webhooks.sms_status(sid, "undelivered", signature="bm9wZQ==")
                         .status, 403)
        self.assertEqual(rb.metric("ringback_status_reports_total"), before)
        self.final_states(rb, {caller: ("delivered", 0)})


# -- the harness's new mock features (no binary needed) -----------------------------------------

class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.path, dict(self.headers.items()), body))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


class MockFeatures(unittest.TestCase):
    def setUp(self):
        self.mock = TwilioMock().start()
        self.addCleanup(self.mock.stop)
        self.base = "%s/2010-04-01/Accounts/%s" % (self.mock.url, self.mock.account_sid)
        token = base64.b64encode(("%s:%s" % (self.mock.account_sid, self.mock.auth_token))
                                 .encode()).decode()
        self.headers = {"Authorization": "Basic " + token,
                        "Content-Type": "application/x-www-form-urlencoded"}

    def send(self, to="+15551230001", timeout=None, **extra):
        form = dict({"To": to, "From": BUSINESS_NUMBER, "Body": "hi"}, **extra)
        return http_request(self.base + "/Messages.json", "POST",
                            urllib.parse.urlencode(form).encode(), self.headers, timeout)

    def test_per_recipient_faults_and_error_codes(self):
        a, b = "+15551230001", "+15551230002"
        self.mock.fail_messages_to(a, status=400, code=21610)
        self.mock.fail_messages_to(b, status=429, retry_after=3, times=1)
        r = self.send(a)
        self.assertEqual((r.status, r.json()["code"], r.json()["message"]),
                         (400, 21610, "Attempt to send to unsubscribed recipient"))
        self.assertEqual(self.send(a).json()["code"], 21610)  # every time
        r = self.send(b)
        self.assertEqual((r.status, r.headers.get("retry-after")), (429, "3"))
        self.assertEqual(self.send(b).status, 201)  # only once
        # Global faults hit whoever is next without faults of their own.
        self.mock.fail_messages_to(b, status=500, times=1)
        self.mock.fail_next_messages(1, status=400, code=21614)
        self.assertEqual(self.send(b).status, 500)
        r = self.send("+15551230003")
        self.assertEqual((r.status, r.json()["code"]), (400, 21614))
        r = self.send("+15551230004")
        self.assertEqual(r.status, 201)
        self.mock.fail_next_messages(1, status=400, code=21211)
        self.assertEqual(self.send("+15551230005").json()["message"],
                         "The 'To' number +15551230005 is not a valid phone number.")
        self.assertEqual(self.mock.message_count(), 2)
        self.mock.clear_faults()
        self.assertEqual(self.send(a).status, 201)

    def test_holds_then_drop_or_accept(self):
        a, b = "+15551230001", "+15551230002"
        self.mock.fail_messages_to(a, hold=0.6, then="drop", times=1)
        self.mock.hold_next_messages(1, 0.6, then="accept")
        started = time.monotonic()
        with self.assertRaises(OSError):
            self.send(a, timeout=0.3)  # the client gives up first
        self.assertEqual(self.mock.message_count(), 0)
        got = []
        t = threading.Thread(target=lambda: got.append(self.send(b, timeout=5)))
        t.start()
        # Taken at once (a lookup finds it) though the answer is late.
        self.mock.wait_for_messages(1, timeout=0.4)
        t.join()
        self.assertEqual(got[0].status, 201)
        self.assertGreaterEqual(time.monotonic() - started, 0.55)
        time.sleep(0.5)  # the dropped one never appears
        self.assertEqual([m["To"] for m in self.mock.messages()], [b])
        self.assertEqual([p.status for p in self.mock.message_posts()], [0, 201])

    def test_send_times(self):
        for to in ("+15551230002", "+15551230001", "+15551230002"):
            self.assertEqual(self.send(to).status, 201)
        times = self.mock.send_times()
        self.assertEqual([f["To"] for _, f in times],
                         ["+15551230002", "+15551230001", "+15551230002"])
        self.assertEqual([t for t, _ in times], sorted(t for t, _ in times))
        self.assertEqual(len(self.mock.send_times(to="+15551230002")), 2)
        self.assertEqual(windows_over([0.0, 0.5, 0.99, 1.0, 1.5]), 3)

    def test_signed_status_callbacks(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.seen = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        target = "http://127.0.0.1:%d" % server.server_address[1]
        self.mock.enable_status_callbacks(target, undelivered={"+15551230002"},
                                          order="reverse", repeat=2, delay=0.0)
        self.assertEqual(self.send("+15551230001", StatusCallback=STATUS_URL).status, 201)
        self.assertEqual(self.send("+15551230002", StatusCallback=STATUS_URL).status, 201)
        self.assertEqual(self.send("+15551230003").status, 201)  # asked for none
        callbacks = self.mock.wait_for_status_callbacks(8, timeout=5)
        self.assertEqual({c["http_status"] for c in callbacks}, {204})
        by_to = collections.defaultdict(list)
        for c in callbacks:
            by_to[c["to"]].append(c["status"])
        self.assertEqual(dict(by_to), {"+15551230001": ["delivered"] * 2 + ["sent"] * 2,
                                       "+15551230002": ["undelivered"] * 2 + ["sent"] * 2})
        self.assertEqual(len(server.seen), 8)
        for path, headers, body in server.seen:
            self.assertEqual(path, SMS_STATUS_PATH)
            params = dict(urllib.parse.parse_qsl(body.decode()))
            self.assertEqual(headers["X-Twilio-Signature"],
                             twilio_signature(self.mock.auth_token, STATUS_URL, params))
            self.assertEqual(params["MessageSid"], params["SmsSid"])
            self.assertEqual(params["MessageStatus"], params["SmsStatus"])
            self.assertEqual((params["AccountSid"], params["From"], params["ApiVersion"]),
                             (self.mock.account_sid, BUSINESS_NUMBER, "2010-04-01"))
            self.assertEqual("ErrorCode" in params, params["MessageStatus"] == "undelivered")
            if "ErrorCode" in params:
                self.assertEqual(params["ErrorCode"], "30003")
        # The mock's own copy moved forward only.
        listed = http_request(self.base + "/Messages.json?To=%2B15551230002",
                              headers=self.headers).json()["messages"]
        self.assertEqual([(m["status"], m["error_code"]) for m in listed],
                         [("undelivered", 30003)])

    def test_config_with_numbers_and_messaging(self):
        text = render_config("127.0.0.1:1", "n", "sqlite:x.db", "memory", "/w", "http://x",
                             "AC" + "0" * 32, "t", tenants=[tenant_config(
                                 numbers=[FAST, "+15005550009"],
                                 messaging={"loop_limit": 0, "repeat_caller_window": "off",
                                            "max_mps": 2.5, "help_text": "Call \"us\""})])
        self.assertIn('    numbers: [{number: "+15005550001", mps: 50}, "+15005550009"]\n', text)
        self.assertIn('    messaging: {loop_limit: 0, repeat_caller_window: "off", '
                      'max_mps: 2.5, help_text: "Call \\"us\\""}\n', text)
        # The default tenant renders as before.
        self.assertIn('    numbers: ["+15005550001"]\n', render_config(
            "127.0.0.1:1", "n", "sqlite:x.db", "memory", "/w", "http://x", "AC" + "0" * 32, "t"))

    def test_parse_metrics(self):
        text = ('# HELP ringback_messages_sent_total Messages.\n'
                '# TYPE ringback_messages_sent_total counter\n'
                'ringback_messages_sent_total{number="+15005550001",tenant="acme"} 2\n'
                'ringback_messages_sent_total{number="+15005550003",tenant="a\\"b\\\\c\\n"} 1\n'
                '# TYPE ringback_outbox_queue_wait_seconds histogram\n'
                'ringback_outbox_queue_wait_seconds_bucket{le="+Inf",tenant="acme"} 3\n'
                'ringback_outbox_queue_wait_seconds_sum{tenant="acme"} 1.5e-01\n'
                'up 1 1700000000000\n')
        samples = parse_metrics(text)
        self.assertEqual(metric_value(samples, "ringback_messages_sent_total"), 3)
        self.assertEqual(metric_value(samples, "ringback_messages_sent_total", tenant="acme"), 2)
        self.assertEqual(metric_value(samples, "ringback_messages_sent_total",
                                      tenant='a"b\\c\n'), 1)
        self.assertEqual(metric_value(samples, "ringback_outbox_queue_wait_seconds_sum"), 0.15)
        self.assertEqual(metric_value(samples, "up"), 1)
        self.assertEqual(metric_value(samples, "missing"), 0)
        self.assertEqual(metric_families(text), {
            "ringback_messages_sent_total": "counter",
            "ringback_outbox_queue_wait_seconds": "histogram"})
        with self.assertRaises(ValueError):
            parse_metrics("not a metric line at all\n")


if __name__ == "__main__":
    unittest.main()
