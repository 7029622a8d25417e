"""Workflows on the real binary: voice answers from call.incoming runs, durable
waits across kill -9, replies, HTTP steps, hot reload and refusal to start."""

import http.server
import json
import os
import re
import signal
import subprocess
import threading
import unittest

from harness import (BUSINESS_NUMBER, E2ETestCase, OWNER_PHONE, PUBLIC_URL, TENANT,
                     display_phone, new_call_sid, new_caller, new_message_sid, scaled,
                     wait_until)

INCOMING = """\
name: front_door
trigger: call.incoming
steps:
  - say: "Thanks for calling {{ tenant.name }}."
  - dial:
      to: "{{ tenant.owner_phone }}"
  - if: dial.answered
    then:
      - hangup:
    else:
      - say: "Please leave a message after the beep."
      - record_voicemail:
          max_length: 60s
          transcribe: true
        on_transcription:
          - notify_owner: "Voicemail from {{ call.from }}: {{ voicemail.transcription }}"
      - say: "Thank you, goodbye."
      - hangup:
"""

MISSED_WAIT = """\
name: missed_later
trigger: call.missed
steps:
  - wait: %s
  - id: later
    send_sms:
      to: "{{ call.from }}"
      body: "Following up on your call to {{ tenant.name }}."
"""

REVIEW = """\
name: ask_review
trigger: call.missed
steps:
  - id: ask
    send_sms:
      to: "{{ call.from }}"
      body: "Can we help? Reply YES for a call back."
  - wait_for_reply:
      timeout: 1h
    on_reply:
      - if: reply.body | upper contains "YES"
        then:
          - notify_owner: "{{ call.from }} wants a call back"
    on_timeout: []
"""

HTTP = """\
name: crm
trigger: call.missed
steps:
  - id: lead
    http:
      method: POST
      url: "%s/leads"
      json:
        phone: "{{ call.from }}"
        source: missed_call
  - if: steps.lead.ok
    then:
      - send_sms:
          to: "{{ call.from }}"
          body: "Hi {{ steps.lead.json.customer.name }}, ticket {{ steps.lead.json.id }}."
"""

NOTE = """\
name: note
trigger: call.missed
steps:
  - send_sms:
      to: "{{ call.from }}"
      body: "%s"
"""


class _Crm(http.server.BaseHTTPRequestHandler):
    seen = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode()
        _Crm.seen.append((self.path, body))
        payload = json.dumps({"id": 7, "customer": {"name": "Dana"}}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class WorkflowsE2E(E2ETestCase):
    def workflows_dir(self, files):
        d = os.path.join(self.tmpdir, "workflows")
        os.makedirs(d, exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        return d

    def runs_report(self, rb, sid):
        """`ringback runs --call sid`: the call's runs as the store has them."""
        out = subprocess.run([rb.binary, "runs", "--config", rb.config_path, "--call", sid],
                             cwd=rb.workdir, capture_output=True, text=True, timeout=scaled(20))
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_incoming_workflow_answers_every_voice_webhook_of_the_call(self):
        d = self.workflows_dir({"front_door.yaml": INCOMING})
        rb = self.start_ringback(workflows=d)
        sid, caller = new_call_sid(), new_caller()
        r = rb.webhooks.incoming(sid, caller)
        self.assertEqual(r.status, 200, r.text)
        self.assertIn("<Say>Thanks for calling Acme Plumbing.</Say>", r.text)
        self.assertRegex(r.text, r'<Dial timeout="20" action="' + re.escape(PUBLIC_URL)
                         + r'/webhooks/twilio/voice/dial-result" method="POST"><Number>'
                         + re.escape(OWNER_PHONE) + "</Number></Dial>")
        r = rb.webhooks.dial_result(sid, "no-answer")
        self.assertEqual(r.status, 200, r.text)
        self.assertIn("<Say>Please leave a message after the beep.</Say><Record", r.text)
        self.assertIn('action="%s/webhooks/twilio/voice/recording"' % PUBLIC_URL, r.text)
        m = re.search(r'transcribeCallback="([^"]+)"', r.text)
        self.assertIsNotNone(m, r.text)
        transcription_path = m.group(1)[len(PUBLIC_URL):]
        r = rb.webhooks.post("/webhooks/twilio/voice/recording", {
            "AccountSid": self.mock.account_sid, "CallSid": sid, "From": caller,
            "To": BUSINESS_NUMBER, "RecordingUrl": "https://api.twilio.com/rec/RE1",
            "RecordingDuration": "12", "RecordingSid": "RE1"})
        self.assertEqual(r.status, 200, r.text)
        self.assertIn("<Say>Thank you, goodbye.</Say><Hangup/>", r.text)
        rb.webhooks.status(sid, "completed", 40)
        r = rb.webhooks.post(transcription_path.replace("&amp;", "&"), {
            "AccountSid": self.mock.account_sid, "CallSid": sid, "From": caller,
            "To": BUSINESS_NUMBER, "TranscriptionText": "the basement is flooding",
            "TranscriptionStatus": "completed", "RecordingUrl": "https://api.twilio.com/rec/RE1"})
        self.assertEqual(r.status, 200, r.text)
        msgs = self.mock.wait_for_messages(1)
        owner = [m for m in msgs if m["To"] == OWNER_PHONE]
        self.assertEqual(len(owner), 1, msgs)
        self.assertEqual(owner[0]["Body"], "Voicemail from %s: the basement is flooding" % caller)
        self.mock.assert_message_count_stays(1, scaled(1.0))

    def test_a_durable_wait_survives_kill9_and_sends_once(self):
        d = self.workflows_dir({"missed_later.yaml": MISSED_WAIT % "4s"})
        rb = self.start_ringback(workflows=d)
        sid, caller = new_call_sid(), new_caller()
        rb.webhooks.incoming(sid, caller)
        self.assertEqual(rb.webhooks.dial_result(sid, "no-answer").status, 200)
        # The run is stored waiting; the process dies before the deadline. (Not
        # the "waiting 4s" log line: it is written before the run is stored.)
        wait_until(lambda: ", waiting for timer" in self.runs_report(rb, sid), scaled(5),
                   message="the run stored waiting")
        rb.kill9()
        self.assertEqual(self.mock.message_count(), 0)
        rb.restart()
        msgs = self.mock.wait_for_messages(1, timeout=scaled(15))
        self.assertEqual(msgs[0]["To"], caller)
        self.assertEqual(msgs[0]["Body"], "Following up on your call to Acme Plumbing.")
        self.mock.assert_message_count_stays(1, scaled(2.0))
        # "Why did this caller get that text?"
        out = self.runs_report(rb, sid)
        self.assertIn("missed_later (version ", out)
        self.assertIn("trigger call.missed, finished", out)
        self.assertRegex(out, r"#0 wait waiting( \(\d+ us\))?: waiting 4s")
        self.assertRegex(out, r"#0 wait resumed( \(\d+ us\))?: time is up")
        self.assertRegex(out, r"later send_sms ok( \(\d+ us\))?: to " + re.escape(caller))
        self.assertIn("missed_later/later to %s" % caller, out)

    def test_a_reply_resumes_the_waiting_run(self):
        d = self.workflows_dir({"ask_review.yaml": REVIEW})
        rb = self.start_ringback(workflows=d)
        sid, caller = new_call_sid(), new_caller()
        rb.webhooks.incoming(sid, caller)
        rb.webhooks.dial_result(sid, "busy")
        self.mock.wait_for_messages(1)
        # Someone else's text does not resume it; the caller's does, once.
        rb.webhooks.sms(new_message_sid(), new_caller(), BUSINESS_NUMBER, "yes")
        msid = new_message_sid()
        rb.webhooks.sms(msid, caller, BUSINESS_NUMBER, "yes please")
        rb.webhooks.sms(msid, caller, BUSINESS_NUMBER, "yes please")  # a carrier retry
        # The reply is also relayed to the owner, once (its conversation, issue 5).
        msgs = self.mock.wait_for_messages(3)
        self.mock.assert_message_count_stays(3, scaled(1.5))
        self.assertEqual(sorted(m["Body"] for m in msgs[1:] if m["To"] == OWNER_PHONE), sorted([
            "%s wants a call back" % caller, "[#1 %s] yes please" % display_phone(caller)]))

    def test_http_step_posts_to_an_allowed_host_and_reads_the_json(self):
        crm = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Crm)
        threading.Thread(target=crm.serve_forever, daemon=True).start()
        self.addCleanup(crm.server_close)
        self.addCleanup(crm.shutdown)
        base = "http://127.0.0.1:%d" % crm.server_address[1]
        d = self.workflows_dir({"crm.yaml": HTTP % base})
        tenant = dict(TENANT, http_allow=["127.0.0.1"])
        rb = self.start_ringback(workflows=d, tenants=[tenant])
        sid, caller = new_call_sid(), new_caller()
        rb.webhooks.incoming(sid, caller)
        rb.webhooks.dial_result(sid, "no-answer")
        msgs = self.mock.wait_for_messages(1)
        self.assertEqual(msgs[0]["Body"], "Hi Dana, ticket 7.")
        self.assertEqual(len(_Crm.seen), 1)
        path, body = _Crm.seen[-1]
        self.assertEqual(path, "/leads")
        self.assertEqual(json.loads(body), {"phone": caller, "source": "missed_call"})

    def test_http_to_a_host_not_allowed_is_refused(self):
        d = self.workflows_dir({"crm.yaml": HTTP % "http://127.0.0.1:9"})
        rb = self.start_ringback(workflows=d)  # no http_allow
        sid = new_call_sid()
        rb.webhooks.incoming(sid, new_caller())
        rb.webhooks.dial_result(sid, "no-answer")
        wait_until(lambda: "http_allow" in rb.log_text(), scaled(5),
                   message="the refusal in the log")
        self.mock.assert_message_count_stays(0, scaled(1.0))

    def test_sighup_swaps_valid_workflows_and_keeps_the_old_on_errors(self):
        d = self.workflows_dir({"note.yaml": NOTE % "version one"})
        rb = self.start_ringback(workflows=d)

        def missed_call_body(n):
            sid, caller = new_call_sid(), new_caller()
            rb.webhooks.incoming(sid, caller)
            rb.webhooks.dial_result(sid, "no-answer")
            return self.mock.wait_for_messages(n)[-1]["Body"]

        self.assertEqual(missed_call_body(1), "version one")
        with open(os.path.join(d, "note.yaml"), "w") as f:
            f.write(NOTE % "version two")
        rb.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reloaded workflows" in rb.log_text(), scaled(5),
                   message="the reload")
        self.assertEqual(missed_call_body(2), "version two")
        # An invalid edit is rejected with its diagnostics; version two stays.
        with open(os.path.join(d, "note.yaml"), "w") as f:
            f.write((NOTE % "version three").replace("send_sms", "send_smss"))
        rb.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "rejected new workflows" in rb.log_text(), scaled(5),
                   message="the rejection")
        self.assertIn("note.yaml:4:5: error", rb.log_text())
        self.assertIn("did you mean 'send_sms'?", rb.log_text())
        self.assertEqual(missed_call_body(3), "version two")

    def test_a_waiting_run_finishes_on_the_version_it_started_with(self):
        versioned = MISSED_WAIT.replace("Following up", "%s: following up")
        d = self.workflows_dir({"missed_later.yaml": versioned % ("3s", "v1")})
        rb = self.start_ringback(workflows=d)
        sid, caller = new_call_sid(), new_caller()
        rb.webhooks.incoming(sid, caller)
        rb.webhooks.dial_result(sid, "no-answer")
        wait_until(lambda: "waiting 3s" in rb.log_text(), scaled(5), message="the run to wait")
        with open(os.path.join(d, "missed_later.yaml"), "w") as f:
            f.write(versioned % ("3s", "v2"))
        rb.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reloaded workflows" in rb.log_text(), scaled(5), message="the reload")
        msgs = self.mock.wait_for_messages(1, timeout=scaled(10))
        self.assertTrue(msgs[0]["Body"].startswith("v1: following up"), msgs[0]["Body"])
        # A new call runs the new version.
        sid2, caller2 = new_call_sid(), new_caller()
        rb.webhooks.incoming(sid2, caller2)
        rb.webhooks.dial_result(sid2, "no-answer")
        msgs = self.mock.wait_for_messages(2, timeout=scaled(10))
        self.assertTrue(msgs[1]["Body"].startswith("v2: following up"), msgs[1]["Body"])

    def test_a_file_change_is_picked_up_without_a_signal(self):
        d = self.workflows_dir({"note.yaml": NOTE % "before"})
        rb = self.start_ringback(workflows=d)
        with open(os.path.join(d, "note.yaml"), "w") as f:
            f.write(NOTE % "after")
        wait_until(lambda: "reloaded workflows" in rb.log_text(), scaled(10),
                   message="the watcher's reload")
        sid, caller = new_call_sid(), new_caller()
        rb.webhooks.incoming(sid, caller)
        rb.webhooks.dial_result(sid, "no-answer")
        self.assertEqual(self.mock.wait_for_messages(1)[0]["Body"], "after")

    def test_serve_refuses_invalid_workflows(self):
        d = self.workflows_dir({"bad.yaml": "name: bad\ntrigger: call.mised\nsteps:\n  - hangup:\n"})
        rb = self.start_ringback(workflows=d, start=False)
        proc = subprocess.run([rb.binary, "serve", "--config", rb.config_path], cwd=rb.workdir,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=scaled(20))
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("bad.yaml:2:10: error: /trigger: unknown trigger 'call.mised' "
                      "(did you mean 'call.missed'?)", proc.stderr)


if __name__ == "__main__":
    unittest.main()
