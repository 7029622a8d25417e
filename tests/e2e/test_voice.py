"""The voice webhook answers with TwiML that forwards the call to the owner."""

import re
import unittest

from harness import (BUSINESS_NUMBER, E2ETestCase, OWNER_PHONE, PUBLIC_URL, new_call_sid,
                     new_caller, new_message_sid)

DIAL = re.compile(
    r'<Response><Dial timeout="20" action="' + re.escape(PUBLIC_URL + "/webhooks/twilio/voice/dial-result")
    + r'(\?[^"]*)?" method="POST"><Number>' + re.escape(OWNER_PHONE) + r"</Number></Dial></Response>")


class VoiceAnswer(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.rb = self.start_ringback()

    def test_incoming_call_is_forwarded_to_the_owner(self):
        r = self.rb.webhooks.incoming(new_call_sid(), new_caller())
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/xml"), r.headers)
        self.assertRegex(r.text, DIAL)

    def test_repeated_voice_webhook_gets_the_same_answer(self):
        # Twilio retries a voice webhook that timed out: the answer must not change.
        sid, caller = new_call_sid(), new_caller()
        first = self.rb.webhooks.incoming(sid, caller)
        second = self.rb.webhooks.incoming(sid, caller)
        self.assertEqual((first.status, second.status), (200, 200))
        self.assertRegex(first.text, DIAL)
        self.assertRegex(second.text, DIAL)

    def test_unknown_number_is_rejected(self):
        r = self.rb.webhooks.incoming(new_call_sid(), new_caller(), to="+15005559999")
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/xml"), r.headers)
        self.assertIn("<Reject", r.text)
        self.assertNotIn("<Dial", r.text)
        self.mock.assert_message_count_stays(0, 1.0)

    def test_health_and_readiness(self):
        self.assertEqual(self.rb.get("/healthz").status, 200)
        self.assertEqual(self.rb.get("/readyz").status, 200)

    def test_inbound_sms_is_accepted(self):
        r = self.rb.webhooks.sms(new_message_sid(), new_caller(), BUSINESS_NUMBER, "please call back")
        self.assertEqual(r.status // 100, 2, r.text)


if __name__ == "__main__":
    unittest.main()
