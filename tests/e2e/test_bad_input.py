"""Untrusted input gets a 4xx, changes nothing, and never takes the process down."""

import unittest
import urllib.parse
import uuid

from harness import (BUSINESS_NUMBER, E2ETestCase, PUBLIC_URL, VOICE_PATH, new_call_sid,
                     new_caller, new_message_sid, post_streaming, raw_exchange, scaled,
                     twilio_signature)


class BadInput(E2ETestCase):
    def setUp(self):
        super().setUp()
        self.rb = self.start_ringback()
        self.hooks = self.rb.webhooks

    def assert_alive(self):
        self.assertEqual(self.rb.get("/healthz").status, 200)
        self.assertTrue(self.rb.running())

    def test_missing_signature_is_403(self):
        sid, caller = new_call_sid(), new_caller()
        for send in (lambda: self.hooks.incoming(sid, caller, signature=None),
                     lambda: self.hooks.dial_result(sid, "no-answer", signature=None),
                     lambda: self.hooks.status(sid, "completed", 20, signature=None),
                     lambda: self.hooks.sms(new_message_sid(), caller, BUSINESS_NUMBER, "hi",
                                            signature=None)):
            r = send()
            self.assertEqual(r.status, 403, r.text)
        self.mock.assert_message_count_stays(0, scaled(2))
        self.assert_alive()

    def test_wrong_signature_is_403_and_changes_nothing(self):
        sid, caller, child = new_call_sid(), new_caller(), new_call_sid()
        self.mock.set_call(sid, "completed", 25, [(child, "no-answer", 0)], from_=caller)
        bogus = twilio_signature("not-the-token", PUBLIC_URL + VOICE_PATH, {"CallSid": sid})
        self.assertEqual(self.hooks.incoming(sid, caller, signature=bogus).status, 403)
        self.assertEqual(self.hooks.incoming(sid, caller).status, 200)
        # a forged "answered" must not be recorded ...
        forged = self.hooks.dial_result(sid, "completed", 30, dial_call_sid=child, signature=bogus)
        self.assertEqual(forged.status, 403, forged.text)
        # ... nor a forged "no-answer" acted upon
        forged = self.hooks.dial_result(sid, "no-answer", 0, dial_call_sid=child,
                                        signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        self.assertEqual(forged.status, 403, forged.text)
        self.mock.assert_message_count_stays(0, scaled(2))
        # the genuine result still counts
        self.assertEqual(self.hooks.dial_result(sid, "no-answer", 0, dial_call_sid=child).status, 200)
        msgs = self.mock.expect_messages(2, timeout=scaled(15), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)

    def test_signature_over_other_url_or_params_is_403(self):
        sid, caller = new_call_sid(), new_caller()
        params = {"AccountSid": self.mock.account_sid, "CallSid": sid, "From": caller,
                  "To": BUSINESS_NUMBER, "CallStatus": "ringing", "Direction": "inbound"}
        other_path = "/webhooks/twilio/sms"  # a valid signature, but for another URL
        r = self.hooks.post(VOICE_PATH, params,
                            signature=twilio_signature(self.mock.auth_token,
                                                       PUBLIC_URL + other_path, params))
        self.assertEqual(r.status, 403, r.text)
        tampered = dict(params, From="+17205550199")
        r = self.hooks.post(VOICE_PATH, tampered,
                            signature=twilio_signature(self.mock.auth_token,
                                                       PUBLIC_URL + VOICE_PATH, params))
        self.assertEqual(r.status, 403, r.text)
        self.assert_alive()

    def test_one_mib_body_is_413(self):
        params = {"CallSid": new_call_sid(), "From": new_caller(), "To": BUSINESS_NUMBER,
                  "Body": "x" * (1 << 20)}
        body = urllib.parse.urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": twilio_signature(self.mock.auth_token,
                                                          PUBLIC_URL + VOICE_PATH, params)}
        status, reply = post_streaming(self.rb.port, VOICE_PATH, body, headers)
        self.assertEqual(status, 413, reply[:300])
        self.assert_alive()

    def test_malformed_requests(self):
        garbage = [
            b"\x00\x01\x02\x03 not http at all\r\n\r\n",
            b"POST /webhooks/twilio/voice HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"POST /webhooks/twilio/voice HTTP/1.1\r\nHost x no colon\r\n\r\n",
            b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /webhooks/twilio/voice HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\n",
        ]
        for data in garbage:
            with self.subTest(data=data[:60]):
                status, reply = raw_exchange(self.rb.port, data)
                self.assertIn(status, (400, 413, 414, 431, 505, None), reply[:300])
                self.assert_alive()

    def test_wrong_method_unknown_path_health(self):
        self.assertEqual(self.rb.get(VOICE_PATH).status, 405)
        self.assertEqual(self.rb.get("/webhooks/twilio/voice/dial-result").status, 405)
        self.assertEqual(self.rb.get("/no/such/path-%s" % uuid.uuid4().hex).status, 404)
        self.assertEqual(self.rb.request("POST", "/no/such/path", b"a=b",
                                         {"Content-Type": "application/x-www-form-urlencoded"}).status,
                         404)
        self.assertEqual(self.rb.get("/healthz").status, 200)
        self.assertEqual(self.rb.get("/readyz").status, 200)


if __name__ == "__main__":
    unittest.main()
