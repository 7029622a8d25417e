"""Every request ringback sends to Twilio follows Twilio's own OpenAPI spec.

Prism (npm @stoplight/prism-cli, installed by scripts/install-deps into
.cache/prism) runs as a validating proxy between ringback and the recording
mock, with the spec from ../shared/oracles/twilio/ (patched by its
patch_spec.py so that form arrays validate and an unencoded '+' in a phone
number is refused). A request that breaks the spec gets a 422 from Prism and
never reaches the mock, so the flows below fail if any request is wrong.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (E2ETestCase, Ringback, SOURCE_DIR, free_port, new_call_sid,
                     new_caller, require_services_flag, scaled, wait_until)

PRISM = os.path.join(SOURCE_DIR, ".cache", "prism", "node_modules", ".bin", "prism")
ORACLE = os.path.join(os.path.dirname(SOURCE_DIR), "shared", "oracles", "twilio")


def _missing(why):
    if require_services_flag() and os.path.isdir(ORACLE):
        raise AssertionError(why + " (RINGBACK_REQUIRE_SERVICES=1)")
    raise unittest.SkipTest(why)


class _ViaPrism:
    """Looks like the mock to the harness, but points ringback at Prism."""

    def __init__(self, mock, url):
        self.url = url
        self.account_sid = mock.account_sid
        self.auth_token = mock.auth_token


class OpenApi(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.isdir(ORACLE):
            raise unittest.SkipTest("Twilio's spec is not beside the repository (%s)" % ORACLE)
        if not os.access(PRISM, os.X_OK):
            _missing("prism is not installed at %s (scripts/install-deps)" % PRISM)
        cls.spec_dir = tempfile.mkdtemp(prefix="ringback-prism-")
        cls.spec = os.path.join(cls.spec_dir, "twilio.json")
        subprocess.run(["python3", os.path.join(ORACLE, "patch_spec.py"),
                        os.path.join(ORACLE, "twilio_api_v2010.json"), cls.spec,
                        "--phones-no-whitespace"], check=True, stdout=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "spec_dir", ""), ignore_errors=True)

    def setUp(self):
        super().setUp()
        port = free_port()
        self.prism_log = open(os.path.join(self.tmpdir, "prism.log"), "wb")
        self.prism = subprocess.Popen(
            [PRISM, "proxy", "-h", "127.0.0.1", "-p", str(port), "--errors", self.spec,
             self.mock.url], stdin=subprocess.DEVNULL, stdout=self.prism_log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.addCleanup(self._stop_prism)
        deadline = time.monotonic() + scaled(60)
        while True:
            if self.prism.poll() is not None:
                self.fail("prism exited with %s" % self.prism.returncode)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.fail("prism did not listen on %d in time" % port)
                time.sleep(0.2)
        self.via = _ViaPrism(self.mock, "http://127.0.0.1:%d" % port)

    def _stop_prism(self):
        self.prism.terminate()
        try:
            self.prism.wait(10)
        except subprocess.TimeoutExpired:
            self.prism.kill()
        self.prism_log.close()

    def start_via_prism(self, **kw):
        # The harness writes the mock's URL into the config: hand it Prism's.
        rb = Ringback(self.binary, os.path.join(self.tmpdir, "node-a"), self.via, **kw)
        self.processes.append(rb)
        self.addCleanup(rb.stop)
        rb.start()
        return rb

    def test_texts_lookups_and_carrier_checks_follow_the_spec(self):
        rb = self.start_via_prism(ring_timeout="1s", fallback_grace="1s")
        # 1. A missed call: two POST Messages.json, one of them answered with a
        #    lost connection, so the GET Messages.json lookup runs too.
        self.mock.drop_next_message_answers(1)
        _, caller = self.missed_call(rb, "no-answer")
        msgs = self.mock.expect_messages(2, timeout=scaled(30), quiet=2.0)
        self.assert_missed_call_texts(msgs, caller)
        self.assertGreaterEqual(len(self.mock.message_lookups()), 1)
        # 2. A lost dial callback: GET Calls/{sid}.json and Calls.json?ParentCallSid.
        sid, caller2 = new_call_sid(), new_caller()
        self.mock.set_call(sid, "completed", 20, [(new_call_sid(), "no-answer", 0)], from_=caller2)
        self.assertEqual(rb.webhooks.incoming(sid, caller2).status, 200)
        self.mock.wait_for_messages(4, timeout=scaled(30))
        self.assertTrue(self.mock.call_fetches(sid))
        # Nothing was refused on the way: every request reached the mock.
        with open(os.path.join(self.tmpdir, "prism.log"), "rb") as f:
            prism_log = f.read().decode("utf-8", "replace")
        self.assertNotIn("HTTP 422", rb.log_text(), prism_log[-4000:])
        self.assertNotIn("HTTP 401", rb.log_text(), prism_log[-4000:])
        self.assert_all_authorized()

    def test_pages_and_their_lookups_follow_the_spec(self):
        # A workflow's call_owner page: POST Calls.json, its answer lost, so the
        # GET Calls.json?To=..&From=..&StartTime>=.. lookup runs too.
        d = os.path.join(self.tmpdir, "workflows")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "page.yaml"), "w") as f:
            f.write("name: page\ntrigger: call.missed\nsteps:\n"
                    "  - call_owner: \"Missed call from {{ call.from }}\"\n")
        rb = self.start_via_prism(workflows=d)
        self.mock.drop_next_call_answers(1)
        self.missed_call(rb, "no-answer")
        wait_until(lambda: "had reached the carrier as CA" in rb.log_text(), scaled(30),
                   message="the page found by its lookup")
        self.assertEqual(len(self.mock.call_posts()), 1)
        self.assertEqual(len(self.mock.call_lookups()), 1)
        with open(os.path.join(self.tmpdir, "prism.log"), "rb") as f:
            prism_log = f.read().decode("utf-8", "replace")
        self.assertNotIn("HTTP 422", rb.log_text(), prism_log[-4000:])
        self.assert_all_authorized()


if __name__ == "__main__":
    unittest.main()
