"""A ringing call's actor is let go once quiescent (calls.passivate_after) and
reloaded from the store by its next event or timer: the dial result, the
fallback timer and a restart after kill -9 still give exactly one text-back.

Passivation shows in the log: the call actor logs "<sid>: ringing ..." each
time it is (re)loaded, so a passivated call that got its dial result or timer
logs it at least twice (once with passivation off)."""

import time
import unittest

from harness import E2ETestCase, new_call_sid, new_caller, scaled


class Passivation(E2ETestCase):
    def start(self, passivate_after="0s", **config):
        rb = self.start_ringback(start=False, **config)
        with open(rb.config_path) as f:
            lines = f.read().splitlines(True)
        at = next(i for i, line in enumerate(lines) if line.startswith("  fallback_grace:"))
        lines.insert(at + 1, "  passivate_after: %s\n" % passivate_after)
        with open(rb.config_path, "w") as f:
            f.write("".join(lines))
        rb.start()
        return rb

    def ring(self, rb):
        sid, caller, child = new_call_sid(), new_caller(), new_call_sid()
        self.mock.set_call(sid, "completed", 25, [(child, "no-answer", 0)], from_=caller)
        r = rb.webhooks.incoming(sid, caller)
        self.assertEqual(r.status, 200, r.text)
        self.assertIn("<Dial", r.text)
        return sid, caller, child

    def loads(self, rb, sid):
        return rb.log_text().count(sid + ": ringing ")

    def test_dial_result_after_passivation_texts_once(self):
        rb = self.start("0s")
        sid, caller, child = self.ring(rb)
        time.sleep(scaled(1))  # stored and let go
        r = rb.webhooks.dial_result(sid, "no-answer", 0, dial_call_sid=child)
        self.assertEqual(r.status, 200, r.text)
        self.assertIn("<Response", r.text)
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)
        self.assertGreaterEqual(self.loads(rb, sid), 2, "the call was not reloaded")
        # A carrier retry of the dial result sends nothing more.
        self.assertEqual(rb.webhooks.dial_result(sid, "no-answer", 0,
                                                 dial_call_sid=child).status, 200)
        self.mock.assert_message_count_stays(2, scaled(2))

    def test_after_an_idle_second(self):
        rb = self.start("1s")
        sid, caller, child = self.ring(rb)
        time.sleep(scaled(2.5))
        self.assertEqual(rb.webhooks.dial_result(sid, "busy", 0, dial_call_sid=child).status,
                         200)
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)
        self.assertGreaterEqual(self.loads(rb, sid), 2, "the call was not reloaded")

    def test_off_keeps_the_actor(self):
        rb = self.start("off")
        sid, caller, child = self.ring(rb)
        time.sleep(scaled(1))
        self.assertEqual(rb.webhooks.dial_result(sid, "no-answer", 0,
                                                 dial_call_sid=child).status, 200)
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)
        self.assertEqual(self.loads(rb, sid), 1)

    def test_lost_dial_callback_is_caught_by_the_fallback(self):
        rb = self.start("0s", ring_timeout="1s", fallback_grace="1s")
        sid, caller, _ = self.ring(rb)
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)
        self.assertTrue(self.mock.call_fetches(sid), "no GET Calls/%s.json" % sid)
        self.assertGreaterEqual(self.loads(rb, sid), 2, "the call was not reloaded")

    def test_kill9_while_passivated_then_dial_result(self):
        rb = self.start("0s")
        sid, caller, child = self.ring(rb)
        time.sleep(scaled(1))
        rb.kill9()
        rb.restart()
        r = rb.webhooks.dial_result(sid, "no-answer", 0, dial_call_sid=child)
        self.assertEqual(r.status, 200, r.text)
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=3.0)
        self.assert_missed_call_texts(msgs, caller)

    def test_kill9_while_passivated_then_fallback(self):
        rb = self.start("0s", ring_timeout="3s", fallback_grace="1s")
        sid, caller, _ = self.ring(rb)
        time.sleep(scaled(1))
        rb.kill9()
        rb.restart()
        msgs = self.mock.expect_messages(2, timeout=scaled(20), quiet=3.0)
        self.assert_missed_call_texts(msgs, caller)


if __name__ == "__main__":
    unittest.main()
