"""A missed call survives a crash (kill -9) of the process: after the restart the
texts still go out, exactly once."""

import unittest

from harness import E2ETestCase, new_call_sid, new_caller, scaled


class CrashRecovery(E2ETestCase):
    def prepare(self, **config):
        self.rb = self.start_ringback(**config)
        self.sid, self.caller, self.child = new_call_sid(), new_caller(), new_call_sid()
        self.mock.set_call(self.sid, "completed", 25, [(self.child, "no-answer", 0)],
                           from_=self.caller)
        r = self.rb.webhooks.incoming(self.sid, self.caller)
        self.assertEqual(r.status, 200, r.text)
        self.rb.kill9()  # right after the voice answer

    def test_fallback_after_restart(self):
        self.prepare(ring_timeout="1s", fallback_grace="1s")
        self.rb.restart()
        msgs = self.mock.expect_messages(2, timeout=scaled(20), quiet=2.0)
        self.assert_missed_call_texts(msgs, self.caller)

    def test_dial_result_after_restart(self):
        self.prepare()
        self.rb.restart()
        r = self.rb.webhooks.dial_result(self.sid, "no-answer", 0, dial_call_sid=self.child)
        self.assertEqual(r.status, 200, r.text)
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, self.caller)

    def test_restart_after_texts_sends_nothing_more(self):
        self.rb = self.start_ringback(ring_timeout="1s", fallback_grace="1s")
        sid, caller = self.missed_call(self.rb, "no-answer")
        self.mock.wait_for_messages(2, timeout=scaled(15))
        self.mock.assert_message_count_stays(2, scaled(1))
        self.rb.kill9()
        self.rb.restart()
        self.assertEqual(self.rb.webhooks.dial_result(sid, "no-answer").status, 200)
        msgs = self.mock.expect_messages(2, timeout=scaled(5), quiet=3.0)
        self.assert_missed_call_texts(msgs, caller)


if __name__ == "__main__":
    unittest.main()
