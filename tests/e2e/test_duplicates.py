"""Twilio delivers callbacks at least once and in any order: still exactly 2 texts."""

import unittest

from harness import E2ETestCase, new_call_sid, new_caller, run_concurrently, scaled


class DuplicateAndReorderedCallbacks(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.rb = self.start_ringback()
        self.sid, self.caller, self.child = new_call_sid(), new_caller(), new_call_sid()
        self.mock.set_call(self.sid, "completed", 25, [(self.child, "no-answer", 0)],
                           from_=self.caller)

    def dial_no_answer(self):
        return self.rb.webhooks.dial_result(self.sid, "no-answer", 0, dial_call_sid=self.child)

    def status_completed(self):
        return self.rb.webhooks.status(self.sid, "completed", 25)

    def assert_two_texts(self):
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, self.caller)

    def test_sequential_duplicates(self):
        self.assertEqual(self.rb.webhooks.incoming(self.sid, self.caller).status, 200)
        for _ in range(3):
            r = self.dial_no_answer()
            self.assertEqual(r.status, 200, r.text)
        self.assertEqual(self.status_completed().status // 100, 2)
        self.assert_two_texts()

    def test_concurrent_duplicates(self):
        self.assertEqual(self.rb.webhooks.incoming(self.sid, self.caller).status, 200)
        results = run_concurrently([self.dial_no_answer] * 3 + [self.status_completed], workers=4)
        self.assertEqual([r.status // 100 for r in results], [2, 2, 2, 2],
                         [(r.status, r.text) for r in results])
        self.assert_two_texts()

    def test_duplicates_after_the_texts_went_out(self):
        self.assertEqual(self.rb.webhooks.incoming(self.sid, self.caller).status, 200)
        self.assertEqual(self.dial_no_answer().status, 200)
        self.mock.wait_for_messages(2, timeout=scaled(15))
        self.assertEqual(self.dial_no_answer().status, 200)
        self.assertEqual(self.status_completed().status // 100, 2)
        self.assert_two_texts()

    def test_repeated_voice_webhook(self):
        for _ in range(2):
            self.assertEqual(self.rb.webhooks.incoming(self.sid, self.caller).status, 200)
        self.assertEqual(self.dial_no_answer().status, 200)
        self.assert_two_texts()

    def test_status_callback_before_dial_result(self):
        self.assertEqual(self.rb.webhooks.incoming(self.sid, self.caller).status, 200)
        self.assertEqual(self.status_completed().status // 100, 2)
        self.assertEqual(self.dial_no_answer().status, 200)
        self.assert_two_texts()


if __name__ == "__main__":
    unittest.main()
