"""A call the owner does not pick up gives exactly one text to the caller and one
notification to the owner; an answered call gives none."""

import unittest

from harness import E2ETestCase, MISSED_STATUSES, new_call_sid, new_caller, scaled


class MissedCall(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.rb = self.start_ringback()

    def check_missed(self, status):
        _, caller = self.missed_call(self.rb, status)
        # within 10 s (stretched for slow builds / loaded machines), then no more
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)
        self.assert_all_authorized()

    def test_no_answer(self):
        self.check_missed("no-answer")

    def test_busy(self):
        self.check_missed("busy")

    def test_failed(self):
        self.check_missed("failed")

    def test_canceled(self):
        self.check_missed("canceled")

    def test_answered_call_sends_nothing(self):
        sid, caller, child = new_call_sid(), new_caller(), new_call_sid()
        self.mock.set_call(sid, "completed", 45, [(child, "completed", 30)], from_=caller)
        self.assertEqual(self.rb.webhooks.incoming(sid, caller).status, 200)
        r = self.rb.webhooks.dial_result(sid, "completed", 30, dial_call_sid=child)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(self.rb.webhooks.status(sid, "completed", 45).status // 100, 2)
        self.mock.assert_message_count_stays(0, scaled(3))


assert set(MISSED_STATUSES) == {"no-answer", "busy", "failed", "canceled"}

if __name__ == "__main__":
    unittest.main()
