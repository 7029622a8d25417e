"""An owner's page (a workflow's `call_owner` step) on the real binary: a call
placed through Twilio's REST API (POST Calls.json) by the outbox, stored as a
message on the call channel, and looked up (GET Calls.json?To=..&From=..) before
it is ever placed again after an unknown outcome."""

import os
import re
import subprocess
import time
import unittest

from harness import (BUSINESS_NUMBER, E2ETestCase, OWNER_PHONE, scaled, wait_until)

PAGE = """\
name: page
trigger: call.missed
steps:
  - id: ring
    call_owner: "Missed call from {{ call.from }}"
"""


class PagingE2E(E2ETestCase):
    def start_with_page(self):
        d = os.path.join(self.tmpdir, "workflows")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "page.yaml"), "w") as f:
            f.write(PAGE)
        return self.start_ringback(workflows=d)

    def wait_for_posts(self, n, timeout=None):
        """The first n Call POSTs once the mock has answered each of them (a POST
        is recorded on arrival, with status 0 until its answer is chosen)."""
        return wait_until(lambda: (lambda ps: ps if len(ps) >= n and all(
            p.status for p in ps[:n]) else None)(self.mock.call_posts()),
            scaled(15) if timeout is None else timeout,
            message="%d answered POST Calls.json" % n)

    def assert_posts_stay(self, n, seconds):
        """Fails as soon as the mock has seen more (or fewer) than n Call POSTs
        within `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            posts = self.mock.call_posts()
            self.assertEqual(len(posts), n, "POST Calls.json: %s" % self.mock.summary())
            if time.monotonic() >= deadline:
                return
            time.sleep(0.1)

    def runs_report(self, rb, sid):
        out = subprocess.run([rb.binary, "runs", "--config", rb.config_path, "--call", sid],
                             cwd=rb.workdir, capture_output=True, text=True,
                             timeout=scaled(20))
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_a_page_step_places_one_call_to_the_owner(self):
        rb = self.start_with_page()
        sid, caller = self.missed_call(rb, "no-answer")
        posts = self.wait_for_posts(1)
        form = posts[0].form
        self.assertEqual(form["To"], OWNER_PHONE)
        self.assertEqual(form["From"], BUSINESS_NUMBER)
        self.assertIn("<Say>Missed call from %s</Say>" % caller, form["Twiml"])
        self.assertNotIn("StatusCallback", form)
        self.assertEqual(posts[0].status, 201)
        self.assert_posts_stay(1, scaled(1.5))
        self.assertEqual(self.mock.message_count(), 0, "a page is no text")
        self.assertEqual(self.mock.call_lookups(), [])
        # Stored as the outbox's message, sent with the CallSid.
        report = wait_until(lambda: (lambda r: r if ": sent CA" in r else None)(
            self.runs_report(rb, sid)), scaled(10), message="the page stored as sent")
        self.assertRegex(report, r"page/ring to %s from %s: sent CA[0-9a-f]{32}"
                         % (re.escape(OWNER_PHONE), re.escape(BUSINESS_NUMBER)))
        self.assert_all_authorized()

    def test_a_lost_answer_is_looked_up_and_the_page_not_placed_again(self):
        rb = self.start_with_page()
        self.mock.drop_next_call_answers(1)  # Twilio has the call; ringback cannot know
        self.missed_call(rb, "no-answer")
        self.wait_for_posts(1)
        lookups = wait_until(lambda: self.mock.call_lookups() or None, scaled(15),
                             message="GET Calls.json (the lookup)")
        q = lookups[0].query
        self.assertEqual(q.get("To"), [OWNER_PHONE])
        self.assertEqual(q.get("From"), [BUSINESS_NUMBER])
        self.assertRegex(q.get("StartTime>", [""])[0], r"^\d{4}-\d{2}-\d{2}$")
        wait_until(lambda: "had reached the carrier as CA" in rb.log_text(), scaled(10),
                   message="the page found at the carrier")
        self.assert_posts_stay(1, scaled(2.0))
        self.assertEqual(len(self.mock.placed_calls()), 1)

    def test_a_server_error_is_looked_up_then_the_page_placed_once_more(self):
        # The 503 created nothing; the lookup must not take the <Dial> leg of the
        # missed call (same From and To) for the page.
        rb = self.start_with_page()
        self.mock.fail_next_calls(1, status=503)
        self.missed_call(rb, "no-answer")
        self.wait_for_posts(2, timeout=scaled(20))
        self.assertGreaterEqual(len(self.mock.call_lookups()), 1)
        self.assertEqual([p.status for p in self.mock.call_posts()], [503, 201])
        self.assert_posts_stay(2, scaled(2.0))
        self.assertEqual(len(self.mock.placed_calls()), 1)

    def test_a_refused_page_is_failed_not_retried(self):
        rb = self.start_with_page()
        self.mock.fail_next_calls(1, status=400, code=21215, message="Geo permission")
        sid, _ = self.missed_call(rb, "no-answer")
        self.wait_for_posts(1)
        self.assert_posts_stay(1, scaled(2.0))
        self.assertEqual(self.mock.call_lookups(), [])
        report = wait_until(lambda: (lambda r: r if ": failed" in r else None)(
            self.runs_report(rb, sid)), scaled(10), message="the page stored as failed")
        self.assertIn("page/ring to %s from %s: failed (error 21215: Geo permission)"
                      % (OWNER_PHONE, BUSINESS_NUMBER), report)


if __name__ == "__main__":
    unittest.main()
