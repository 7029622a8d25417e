"""Twilio's API fails now and then (5xx, 429 with Retry-After, an answer lost
after the message was accepted): the texts are retried, or looked up, and
still arrive exactly once each."""

import unittest

from harness import E2ETestCase, scaled


class CarrierFailures(E2ETestCase):
    def test_5xx_and_429_are_retried(self):
        rb = self.start_ringback()
        self.mock.fail_next_messages(2, status=500)
        self.mock.fail_next_messages(1, status=429, retry_after=1)
        _, caller = self.missed_call(rb, "no-answer")
        msgs = self.mock.expect_messages(2, timeout=scaled(30), quiet=3.0)
        self.assert_missed_call_texts(msgs, caller)
        self.assertEqual([r.status for r in self.mock.message_posts()][:3], [500, 500, 429])
        self.assertEqual(len(self.mock.message_posts()), 5)
        self.assert_all_authorized()

    def test_lost_answer_is_looked_up_not_resent(self):
        # Twilio accepts the text but the answer never comes back: ringback
        # must ask Twilio (GET Messages.json?To&From) instead of sending again.
        rb = self.start_ringback()
        self.mock.drop_next_message_answers(1)
        _, caller = self.missed_call(rb, "no-answer")
        msgs = self.mock.expect_messages(2, timeout=scaled(30), quiet=3.0)
        self.assert_missed_call_texts(msgs, caller)
        self.assertEqual(len(self.mock.message_posts()), 2)
        self.assertGreaterEqual(len(self.mock.message_lookups()), 1)
        self.assertIn("not sent again", rb.log_text())

    def test_slow_carrier(self):
        rb = self.start_ringback()
        self.mock.set_delay(2.0)
        _, caller = self.missed_call(rb, "busy")
        msgs = self.mock.expect_messages(2, timeout=scaled(30), quiet=3.0)
        self.assert_missed_call_texts(msgs, caller)


if __name__ == "__main__":
    unittest.main()
