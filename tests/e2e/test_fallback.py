"""When the dial result never arrives, ringback asks Twilio's REST API what became
of the call (GET Calls/{sid}.json and Calls.json?ParentCallSid={sid}) after
ring_timeout + fallback_grace, and decides from that."""

import unittest

from harness import E2ETestCase, new_call_sid, new_caller, scaled, wait_until


class LostCallbackFallback(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.rb = self.start_ringback(ring_timeout="1s", fallback_grace="1s")
        self.sid, self.caller, self.child = new_call_sid(), new_caller(), new_call_sid()

    def incoming(self):
        r = self.rb.webhooks.incoming(self.sid, self.caller)
        self.assertEqual(r.status, 200, r.text)

    def test_missed_call_found_by_polling(self):
        self.mock.set_call(self.sid, "completed", 25, [(self.child, "no-answer", 0)],
                           from_=self.caller)
        self.incoming()
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, self.caller)
        self.assertTrue(self.mock.call_fetches(self.sid), "no GET Calls/%s.json" % self.sid)
        self.assertTrue(self.mock.child_listings(self.sid),
                        "no GET Calls.json?ParentCallSid=%s" % self.sid)
        self.assert_all_authorized()

    def test_answered_call_found_by_polling_sends_nothing(self):
        self.mock.set_call(self.sid, "completed", 50, [(self.child, "completed", 42)],
                           from_=self.caller)
        self.incoming()
        wait_until(lambda: self.mock.child_listings(self.sid), scaled(15),
                   message="GET Calls.json?ParentCallSid=%s" % self.sid)
        self.mock.assert_message_count_stays(0, scaled(3))

    def test_call_still_ringing_is_checked_again(self):
        self.mock.set_call(self.sid, "in-progress", 0, [(self.child, "ringing", 0)],
                           from_=self.caller)
        self.incoming()
        wait_until(lambda: self.mock.call_fetches(self.sid), scaled(15),
                   message="the first GET Calls/%s.json" % self.sid)
        self.mock.assert_message_count_stays(0, scaled(2))
        self.mock.set_call(self.sid, "completed", 30, [(self.child, "no-answer", 0)],
                           from_=self.caller)
        msgs = self.mock.expect_messages(2, timeout=scaled(30), quiet=2.0)
        self.assert_missed_call_texts(msgs, self.caller)
        self.assertGreaterEqual(len(self.mock.call_fetches(self.sid)), 2)


if __name__ == "__main__":
    unittest.main()
