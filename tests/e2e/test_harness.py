"""Self-tests of the e2e harness; they need no ringback binary.

The signer is checked against Twilio's official vectors (shared/oracles/twilio/
VECTORS.md), the REST mock over real HTTP, and the process wrapper and webhook
sender against fake_ringback.py (a small Python model of the contract)."""

import base64
import os
import re
import socket
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness
from harness import (BUSINESS_NUMBER, OWNER_PHONE, PUBLIC_URL, TwilioMock, Webhooks,
                     http_request, new_call_sid, new_caller, twilio_signature)

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_ringback.py")

DEFAULT_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
                  "From": "+14158675309", "To": "+18005551212"}
ZEROS = "0" * 32


class SignatureVectors(unittest.TestCase):
    def test_official_row_1(self):
        self.assertEqual(twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
                                          DEFAULT_PARAMS), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")

    def test_official_port_rows_are_signed_byte_for_byte(self):
        self.assertEqual(twilio_signature("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                                          DEFAULT_PARAMS), "kvajT1Ptam85bY51eRf/AJRuM3w=")
        self.assertEqual(twilio_signature("12345", "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                                          DEFAULT_PARAMS), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")

    def test_official_array_rows(self):
        url = "https://mycompany.com/myapp.php?foo=1&bar=2"
        for order in (["+1325xxxxxxx", "+1415xxxxxxx"], ["+1415xxxxxxx", "+1325xxxxxxx"]):
            self.assertEqual(twilio_signature("12345", url, {"MessagingBinding.Address": order}),
                             "83O6e2vORAoJHUNzJjDWN1jz+BA=")
        self.assertEqual(twilio_signature("12345", url, {"Sid": "CA123", "SidAccount": "AC123",
                                                         "Digits": ["5678", "1234", "1234"]}),
                         "IK+Dwps556ElfBT0I3Rgjkr1wJU=")

    def test_oracle_voice_vector(self):
        params = {"AccountSid": "AC" + ZEROS, "CallSid": "CA" + ZEROS, "CallStatus": "ringing",
                  "Direction": "inbound", "From": "+15005550001", "To": "+15005550006"}
        self.assertEqual(twilio_signature("12345", "http://127.0.0.1:8080/twilio/voice", params),
                         "ybhRui1yVrL/YOi4eKjyR7ULmIU=")

    def test_oracle_status_empty_and_utf8_vectors(self):
        params = {"AccountSid": "AC" + ZEROS, "CallSid": "CA" + ZEROS, "CallStatus": "completed",
                  "CallDuration": "15", "Timestamp": "Tue, 31 Aug 2010 20:36:44 +0000"}
        self.assertEqual(twilio_signature("12345", "http://127.0.0.1:8080/twilio/status", params),
                         "RDF3vtz4KgUrr1JfAakN1WfZCzg=")
        self.assertEqual(twilio_signature("12345", "https://example.com/empty", {}),
                         "fk0FZWREU/JkEZLr5UD+kPqqVNY=")
        self.assertEqual(twilio_signature("12345", "https://example.com/utf8",
                                          {"Body": "h\u00e9llo \U0001F44D & <x>"}),
                         "pXBTYvUpXjrFkOS83jnoazH/xVA=")

    def test_wrong_token_differs(self):
        self.assertNotEqual(twilio_signature("54321", "https://mycompany.com/myapp.php?foo=1&bar=2",
                                             DEFAULT_PARAMS), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def _basic(mock, sid=None, token=None):
    raw = "%s:%s" % (sid or mock.account_sid, token or mock.auth_token)
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def _form(**fields):
    return urllib.parse.urlencode(fields).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class MockTest(unittest.TestCase):
    def setUp(self):
        self.mock = TwilioMock().start()
        self.addCleanup(self.mock.stop)
        self.base = "%s/2010-04-01/Accounts/%s" % (self.mock.url, self.mock.account_sid)

    def send(self, to="+15551230001", body="hi", auth=None, **extra):
        headers = dict(FORM, **(auth if auth is not None else _basic(self.mock)))
        fields = {"To": to, "From": BUSINESS_NUMBER, "Body": body}
        fields.update(extra)
        return http_request(self.base + "/Messages.json", "POST", _form(**fields), headers)

    def test_message_created_like_twilio(self):
        r = self.send(body="Hello \U0001F44D")
        self.assertEqual(r.status, 201, r.text)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        m = r.json()
        self.assertRegex(m["sid"], r"^SM[0-9a-f]{32}$")
        self.assertEqual(m["status"], "queued")
        self.assertEqual((m["to"], m["from"], m["body"]), ("+15551230001", BUSINESS_NUMBER,
                                                           "Hello \U0001F44D"))
        self.assertEqual(m["account_sid"], self.mock.account_sid)
        self.assertEqual(m["uri"], "/2010-04-01/Accounts/%s/Messages/%s.json"
                         % (self.mock.account_sid, m["sid"]))
        self.assertEqual(self.mock.messages(), [{"To": "+15551230001", "From": BUSINESS_NUMBER,
                                                 "Body": "Hello \U0001F44D"}])
        fetched = http_request(self.base + "/Messages/%s.json" % m["sid"], headers=_basic(self.mock))
        self.assertEqual(fetched.json()["sid"], m["sid"])

    def test_bad_credentials_get_401_and_are_recorded(self):
        r = self.send(auth=_basic(self.mock, token="wrong"))
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["code"], 20003)
        self.assertIn("www-authenticate", r.headers)
        self.assertEqual(self.send(auth={}).status, 401)
        self.assertEqual(len(self.mock.unauthorized()), 2)
        self.assertEqual(self.mock.messages(), [])

    def test_unencoded_plus_is_an_invalid_number(self):
        headers = dict(FORM, **_basic(self.mock))
        r = http_request(self.base + "/Messages.json", "POST",
                         b"To=+15551230001&From=%2B15005550001&Body=x", headers)
        self.assertEqual((r.status, r.json()["code"]), (400, 21211))
        self.assertEqual(self.mock.message_count(), 0)

    def test_missing_fields(self):
        headers = dict(FORM, **_basic(self.mock))
        r = http_request(self.base + "/Messages.json", "POST", _form(From=BUSINESS_NUMBER, Body="x"),
                         headers)
        self.assertEqual((r.status, r.json()["code"]), (400, 21604))
        r = http_request(self.base + "/Messages.json", "POST", _form(To="+15551230001", Body="x"),
                         headers)
        self.assertEqual((r.status, r.json()["code"]), (400, 21603))

    def test_fault_injection_in_order(self):
        self.mock.fail_next_messages(2, status=500)
        self.mock.fail_next_messages(1, status=429, retry_after=1)
        self.mock.fail_next_messages(1, status=400)
        r1, r2, r3, r4, r5 = (self.send() for _ in range(5))
        self.assertEqual([r.status for r in (r1, r2, r3, r4, r5)], [500, 500, 429, 400, 201])
        self.assertEqual(r1.json(), {"code": 20500, "message": "Internal Server Error",
                                     "more_info": "https://www.twilio.com/docs/errors/20500",
                                     "status": 500})
        self.assertEqual(r3.headers.get("retry-after"), "1")
        self.assertEqual(r4.json()["code"], 21211)
        self.assertEqual(self.mock.message_count(), 1)
        self.assertEqual(len(self.mock.message_posts()), 5)

    def test_calls_table(self):
        parent, child = new_call_sid(), new_call_sid()
        self.mock.set_call(parent, "completed", 25, [(child, "no-answer", 0)], from_="+15551230009")
        r = http_request(self.base + "/Calls/%s.json" % parent, headers=_basic(self.mock))
        self.assertEqual(r.status, 200)
        call = r.json()
        self.assertEqual((call["sid"], call["status"], call["duration"], call["from"], call["to"]),
                         (parent, "completed", "25", "+15551230009", BUSINESS_NUMBER))
        r = http_request(self.base + "/Calls.json?ParentCallSid=%s" % parent, headers=_basic(self.mock))
        page = r.json()
        self.assertEqual([(c["sid"], c["status"], c["duration"], c["parent_call_sid"])
                          for c in page["calls"]], [(child, "no-answer", "0", parent)])
        for key in ("first_page_uri", "next_page_uri", "page", "page_size", "previous_page_uri",
                    "start", "end", "uri"):
            self.assertIn(key, page)
        self.assertEqual(len(self.mock.call_fetches(parent)), 1)
        self.assertEqual(len(self.mock.child_listings(parent)), 1)
        # flipping the state replaces the children
        child2 = new_call_sid()
        self.mock.set_call(parent, "completed", 60, [(child2, "completed", 42)])
        page = http_request(self.base + "/Calls.json?ParentCallSid=%s" % parent,
                            headers=_basic(self.mock)).json()
        self.assertEqual([(c["sid"], c["duration"]) for c in page["calls"]], [(child2, "42")])

    def test_unknown_call_is_twilio_404(self):
        sid = new_call_sid()
        r = http_request(self.base + "/Calls/%s.json" % sid, headers=_basic(self.mock))
        self.assertEqual(r.status, 404)
        body = r.json()
        self.assertEqual((body["code"], body["status"], body["more_info"]),
                         (20404, 404, "https://www.twilio.com/docs/errors/20404"))
        self.assertRegex(body["message"], r"^The requested resource .*%s\.json was not found$" % sid)

    def test_delay_and_waits(self):
        self.mock.set_delay(0.3)
        got = []
        t = threading.Thread(target=lambda: got.append(self.send()))
        started = time.monotonic()
        t.start()
        msgs = self.mock.wait_for_messages(1, timeout=5)
        self.assertGreaterEqual(time.monotonic() - started, 0.25)
        t.join()
        self.assertEqual(len(msgs), 1)
        with self.assertRaises(AssertionError):
            self.mock.wait_for_messages(2, timeout=0.3)
        self.mock.set_delay(0)
        self.mock.assert_message_count_stays(1, 0.2)
        self.send()
        with self.assertRaises(AssertionError):
            self.mock.assert_message_count_stays(1, 0.2)

    def test_chunked_body(self):
        body = _form(To="+15551230001", From=BUSINESS_NUMBER, Body="chunked")
        s = socket.create_connection(("127.0.0.1", self.mock.port), timeout=5)
        head = ("POST /2010-04-01/Accounts/%s/Messages.json HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nAuthorization: %s\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                % (self.mock.account_sid, _basic(self.mock)["Authorization"])).encode()
        s.sendall(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 201"), reply[:100])
        self.assertEqual(self.mock.messages()[0]["Body"], "chunked")


class ConfigTest(unittest.TestCase):
    def test_render_config_has_the_contract_keys(self):
        sys.path.insert(0, HERE)
        import fake_ringback
        text = harness.render_config("127.0.0.1:1234", "node-a", "sqlite:ringback.db", "memory",
                                     "/repo/workflows", "http://127.0.0.1:9", "AC" + ZEROS, "tok",
                                     ring_timeout="1s", fallback_grace="1s")
        cfg = fake_ringback.parse_yaml(text)
        self.assertEqual(cfg, {
            "listen": "127.0.0.1:1234", "public_url": PUBLIC_URL, "node_id": "node-a",
            "store": "sqlite:ringback.db", "kv": "memory", "workflows": "/repo/workflows",
            "twilio": {"api_url": "http://127.0.0.1:9", "account_sid": "AC" + ZEROS,
                       "auth_token": "tok"},
            "calls": {"ring_timeout": "1s", "fallback_grace": "1s"},
            "tenants": [{"id": "acme", "name": "Acme Plumbing", "numbers": [BUSINESS_NUMBER],
                         "owner_phone": OWNER_PHONE, "timezone": "America/Denver"}],
        })
        self.assertIn("\nlisten: \"127.0.0.1:1234\"\n", text)


class _Recorder(harness._MockServer):
    pass


class WebhookSenderTest(unittest.TestCase):
    """The sender's requests, as seen by a bare recording server."""

    def setUp(self):
        import http.server
        seen = self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                seen.append((self.path, dict(self.headers), body))
                out = (b'<Response><Dial timeout="20" action="https://ringback.example.com'
                       b'/webhooks/twilio/voice/dial-result?t=acme&amp;n=1" method="POST">'
                       b'<Number>+15005550002</Number></Dial></Response>')
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = _Recorder(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.hooks = Webhooks("http://127.0.0.1:%d" % self.server.server_address[1], "12345",
                              "AC" + ZEROS)

    def check_signed(self, path, headers, body):
        params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        self.assertEqual(headers["X-Twilio-Signature"],
                         twilio_signature("12345", PUBLIC_URL + path, params))
        return params

    def test_incoming_then_dial_result_follows_the_action_url(self):
        sid, caller = new_call_sid(), new_caller()
        self.hooks.incoming(sid, caller)
        path, headers, body = self.seen[0]
        self.assertEqual(path, "/webhooks/twilio/voice")
        self.assertIn(b"From=%2B1720", body)  # '+' percent-encoded
        params = self.check_signed(path, headers, body)
        self.assertEqual({k: params[k] for k in ("CallSid", "From", "To", "CallStatus", "Direction",
                                                  "Caller", "Called", "ApiVersion", "AccountSid")},
                         {"CallSid": sid, "From": caller, "To": BUSINESS_NUMBER,
                          "CallStatus": "ringing", "Direction": "inbound", "Caller": caller,
                          "Called": BUSINESS_NUMBER, "ApiVersion": "2010-04-01",
                          "AccountSid": "AC" + ZEROS})
        child = new_call_sid()
        self.hooks.dial_result(sid, "no-answer", dial_call_sid=child)
        path, headers, body = self.seen[1]
        self.assertEqual(path, "/webhooks/twilio/voice/dial-result?t=acme&n=1")
        params = self.check_signed(path, headers, body)
        self.assertEqual((params["CallSid"], params["From"], params["DialCallSid"],
                          params["DialCallStatus"], params["DialCallDuration"], params["CallStatus"]),
                         (sid, caller, child, "no-answer", "0", "in-progress"))

    def test_status_sms_and_signature_modes(self):
        sid = new_call_sid()
        self.hooks.status(sid, "completed", 21, from_="+15551230001")
        path, headers, body = self.seen[-1]
        params = self.check_signed(path, headers, body)
        self.assertEqual((path, params["CallStatus"], params["CallDuration"]),
                         ("/webhooks/twilio/voice/status", "completed", "21"))
        self.hooks.sms("SM" + ZEROS, "+15551230001", BUSINESS_NUMBER, "call me")
        path, headers, body = self.seen[-1]
        params = self.check_signed(path, headers, body)
        self.assertEqual((path, params["Body"], params["MessageSid"]),
                         ("/webhooks/twilio/sms", "call me", "SM" + ZEROS))
        self.hooks.status(sid, "completed", signature=None)
        self.assertNotIn("X-Twilio-Signature", self.seen[-1][1])
        self.hooks.status(sid, "completed", signature="bogus")
        self.assertEqual(self.seen[-1][1]["X-Twilio-Signature"], "bogus")


class WrapperAgainstFakeTest(harness.E2ETestCase):
    """The process wrapper, the sender and the mock together, against the Python fake."""

    @classmethod
    def setUpClass(cls):
        cls.binary = FAKE

    def test_missed_call_kill9_restart_stop(self):
        rb = self.start_ringback(ring_timeout="1s", fallback_grace="1s")
        self.assertEqual(rb.get("/healthz").status, 200)
        sid, caller = new_call_sid(), new_caller()
        self.mock.set_call(sid, "completed", 25, [(new_call_sid(), "no-answer", 0)], from_=caller)
        r = rb.webhooks.incoming(sid, caller)
        self.assertEqual(r.status, 200)
        self.assertRegex(r.text, re.escape('<Dial timeout="1" action="%s/webhooks/twilio/voice/'
                                           'dial-result' % PUBLIC_URL))
        rb.kill9()
        self.assertFalse(rb.running())
        rb.restart()
        msgs = self.mock.expect_messages(2, quiet=0.5)
        self.assert_missed_call_texts(msgs, caller)
        self.assertTrue(self.mock.call_fetches(sid))
        self.assert_all_authorized()
        self.assertEqual(rb.stop(), 0)
        self.assertIn("killed with SIGKILL", rb.log_text())

    def test_start_failure_reports_the_log(self):
        rb = self.start_ringback(start=False)
        with open(rb.config_path, "w") as f:
            f.write("listen: nonsense\n")
        with self.assertRaises(AssertionError) as ctx:
            rb.start(timeout=10)
        self.assertIn("exited with", str(ctx.exception))

    def test_binary_checks(self):
        saved = dict(os.environ)
        self.addCleanup(lambda: (os.environ.clear(), os.environ.update(saved)))
        os.environ.pop("RINGBACK_BIN", None)
        os.environ.pop("RINGBACK_REQUIRE_SERVICES", None)
        with self.assertRaises(unittest.SkipTest):
            harness.check_binary()
        os.environ["RINGBACK_BIN"] = os.path.join(tempfile.gettempdir(), "no-such-ringback")
        os.environ["RINGBACK_REQUIRE_SERVICES"] = "1"
        with self.assertRaises(AssertionError):
            harness.check_binary()
        os.environ["RINGBACK_BIN"] = FAKE
        self.assertEqual(harness.check_binary(), FAKE)


if __name__ == "__main__":
    unittest.main()
