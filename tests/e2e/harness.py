"""End-to-end test harness for ringback (Python 3 standard library only).

Pieces:
  * TwilioMock    a recording mock of Twilio's REST API (Messages, Calls) with
                  HTTP Basic auth, fault injection (global or per recipient:
                  HTTP errors with Twilio error codes, lost answers, timeouts),
                  send times for pacing checks, a per-call state table and
                  optional, signed message status callbacks.
  * ChatCompletionsMock
                  a recording mock of OpenAI's chat-completions API (the AI
                  server ringback's `ai: {provider: openai}` talks to): a
                  configurable reply with usage tokens; fault injection (HTTP
                  errors, slow answers, malformed JSON, empty content).
  * Ringback      the real binary as a child process: config file, log file,
                  health/readiness wait, kill9(), restart(), stop().
  * Webhooks      signs requests like Twilio (X-Twilio-Signature) and posts the
                  voice / dial-result / status / sms webhooks to a Ringback.
  * metrics       parse_metrics() / metric_value() read GET /metrics (Prometheus
                  text format).
  * E2ETestCase   unittest base class: a fresh mock per test, processes and temp
                  dirs cleaned up, the ringback log and the mock's request list
                  printed when a test fails, the binary / services checks.

Environment:
  RINGBACK_BIN               the binary under test (tests skip when unset/missing,
                             unless RINGBACK_REQUIRE_SERVICES=1: then they fail)
  RINGBACK_SOURCE_DIR        the repository root (default: two levels up)
  RINGBACK_TEST_PG           postgresql://... server for the PG store variants
  RINGBACK_TEST_REDIS        redis://... server for the Redis kv variants
  RINGBACK_REQUIRE_SERVICES  1: a missing binary / PG / Redis fails instead of skipping
  RINGBACK_E2E_TIME_SCALE    multiplies every wait (slow sanitizer builds), default 1
  RINGBACK_E2E_KEEP          1: keep each test's temp dir (config, log, SQLite db)
"""

import base64
import concurrent.futures
import dataclasses
import hashlib
import hmac
import html
import http.client
import http.server
import itertools
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
from email.utils import formatdate, parsedate_to_datetime

# -- constants of the standard test tenant -------------------------------------

PUBLIC_URL = "https://ringback.example.com"
BUSINESS_NUMBER = "+15005550001"
OWNER_PHONE = "+15005550002"
TENANT = {
    "id": "acme",
    "name": "Acme Plumbing",
    "numbers": [BUSINESS_NUMBER],
    "owner_phone": OWNER_PHONE,
    "timezone": "America/Denver",
}
VOICE_PATH = "/webhooks/twilio/voice"
DIAL_RESULT_PATH = "/webhooks/twilio/voice/dial-result"
STATUS_PATH = "/webhooks/twilio/voice/status"
SMS_PATH = "/webhooks/twilio/sms"
SMS_STATUS_PATH = "/webhooks/twilio/sms/status"
MISSED_STATUSES = ("no-answer", "busy", "failed", "canceled")

SOURCE_DIR = os.path.abspath(
    os.environ.get("RINGBACK_SOURCE_DIR")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TIME_SCALE = float(os.environ.get("RINGBACK_E2E_TIME_SCALE", "1") or 1)


def scaled(seconds):
    """A wait in seconds, stretched by RINGBACK_E2E_TIME_SCALE."""
    return seconds * TIME_SCALE


def require_services_flag():
    return os.environ.get("RINGBACK_REQUIRE_SERVICES", "") == "1"


# -- phone numbers as ringback shows them ----------------------------------------

def display_phone(e164):
    """+17205550100 -> "+1 720-555-0100", as the owner's relays show a customer."""
    if re.fullmatch(r"\+1[0-9]{10}", e164 or ""):
        return "+1 %s-%s-%s" % (e164[2:5], e164[5:8], e164[8:])
    return e164


_RELAY = re.compile(r"\[#(\d+) ([^\]]+)\] ")


def relay_of(body):
    """(ref, customer as shown) of a relay to the owner ("[#12 +1 720-555-0100]
    text": a customer's text forwarded to the owner's phone), else None."""
    m = _RELAY.match(body or "")
    return (int(m.group(1)), m.group(2)) if m else None


def is_relay(message):
    """Whether a sent message (a form dict from TwilioMock.messages()) is a
    conversation relay to the owner."""
    return message.get("To") == OWNER_PHONE and relay_of(message.get("Body")) is not None


# -- identifiers -----------------------------------------------------------------

def new_call_sid():
    return "CA" + uuid.uuid4().hex


def new_message_sid():
    return "SM" + uuid.uuid4().hex


def new_account_sid():
    return "AC" + uuid.uuid4().hex


_caller_counter = itertools.count(random.randrange(0, 7_000_000))
_caller_lock = threading.Lock()


def new_caller():
    """A fresh, valid-looking NANP caller number (+1 720 NXX XXXX), unique per process."""
    with _caller_lock:
        n = next(_caller_counter) % 8_000_000
    return "+1720%07d" % (2_000_000 + n)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05, message="condition"):
    """Polls predicate() until it returns a truthy value, which is returned.

    Raises AssertionError after `timeout` (already-scaled) seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, message))
        time.sleep(interval)


# -- X-Twilio-Signature ------------------------------------------------------------

def _utf16_key(s):
    # JavaScript's default sort (used by Twilio's helper libraries) compares
    # UTF-16 code units; for ASCII keys this is plain byte order.
    return s.encode("utf-16-be")


def twilio_signature(auth_token, url, params=None):
    """base64(HMAC-SHA1(auth_token, url + concat(sorted key+value))).

    `params` maps keys to a string or a list of strings (a list contributes its
    de-duplicated, sorted values). See shared/oracles/twilio/VECTORS.md."""
    data = url
    params = params or {}
    for key in sorted(params, key=_utf16_key):
        value = params[key]
        if isinstance(value, (list, tuple)):
            for v in sorted(set(value), key=_utf16_key):
                data += key + v
        else:
            data += key + value
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# -- a tiny HTTP client ----------------------------------------------------------------

@dataclasses.dataclass
class Response:
    status: int
    headers: dict  # lower-case names
    body: bytes

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


def http_request(url, method="GET", body=None, headers=None, timeout=None):
    """One request on a fresh connection; never raises on an HTTP status."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                      timeout=timeout or scaled(20))
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def raw_exchange(port, data, timeout=None):
    """Sends raw bytes to 127.0.0.1:port and returns (status or None, reply bytes).

    status is None when the server closed (or reset) the connection without an
    HTTP answer. Raises socket.timeout when the server neither answers nor closes."""
    timeout = scaled(10) if timeout is None else timeout
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while b"\r\n" not in reply:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except ConnectionResetError:
            pass
    m = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    return (int(m.group(1)) if m else None), reply


def post_streaming(port, path, body, headers, timeout=None):
    """POSTs a (large) body in chunks and stops sending as soon as the server
    answers early (e.g. 413 before reading the whole body). Returns (status or
    None, reply bytes)."""
    timeout = scaled(20) if timeout is None else timeout
    head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\nConnection: close\r\n" % (
        path, port, len(body))
    head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
    reply = b""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode())
        sent = 0
        try:
            while sent < len(body) and time.monotonic() < deadline:
                readable, writable, _ = select.select([s], [s], [], 0.5)
                if readable:
                    break
                if writable:
                    sent += s.send(body[sent:sent + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
                if b"\r\n\r\n" in reply:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
    m = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    return (int(m.group(1)) if m else None), reply


# -- the Twilio REST mock ------------------------------------------------------------

@dataclasses.dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict  # name -> list of values
    headers: dict  # lower-case name -> value
    form: dict  # name -> value (a list when repeated)
    body: bytes
    authorized: bool
    status: int = 0  # what the mock answered
    time: float = 0.0  # time.monotonic() at arrival


def _decode_form(body):
    form = {}
    for k, v in urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        if k in form:
            if not isinstance(form[k], list):
                form[k] = [form[k]]
            form[k].append(v)
        else:
            form[k] = v
    return form


def _rfc2822_now():
    return formatdate(time.time(), usegmt=False).replace("-0000", "+0000")


def twilio_error(code, message, status):
    return {"code": code, "message": message,
            "more_info": "https://www.twilio.com/docs/errors/%d" % code, "status": status}


# Twilio's messages for the error codes the mock answers with ({to}: the recipient).
ERROR_MESSAGES = {
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "The 'To' number {to} is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' "
           "phone number via SMS.",
    21614: "'To' number is not a valid mobile number",
    30003: "Unreachable destination handset",
}

# How far along a message is, by Twilio's MessageStatus (status callbacks never
# move the mock's own copy backwards either).
_STATUS_RANK = {"queued": 1, "sending": 2, "sent": 3, "delivered": 4, "undelivered": 4,
                "failed": 4}


def _fault(kind, **kw):
    """A fault for the Messages POST: kind "error" (status, retry_after, code,
    message), "drop" (accepted, answer lost) or "hold" (seconds, then)."""
    fault = {"kind": kind, "status": None, "retry_after": None, "code": None, "message": None,
             "seconds": 0, "then": "drop"}
    fault.update(kw)
    return fault


class _MockServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that goes away mid-request (ringback killed with SIGKILL, a
        # request timeout) is part of the tests, not an error of the mock.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _MockHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TwilioMock/1.0"
    sys_version = ""

    def log_message(self, *args):
        pass

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self):
        self.server.mock._dispatch(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def send_json(self, status, obj, extra_headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


TWILIO_API_BASE = "https://api.twilio.com"


class TwilioMock:
    """A recording mock of the Twilio REST API (2010-04-01) on 127.0.0.1:<free port>.

    Serves:
      POST /2010-04-01/Accounts/{sid}/Messages.json    -> 201 Message JSON ("queued")
      GET  /2010-04-01/Accounts/{sid}/Messages/{SM}.json
      POST /2010-04-01/Accounts/{sid}/Calls.json       -> 201 Call JSON ("queued", a page)
      GET  /2010-04-01/Accounts/{sid}/Calls/{CA}.json  -> from the table set_call() fills
      GET  /2010-04-01/Accounts/{sid}/Calls.json[?ParentCallSid=..&Status=..]
      GET  /2010-04-01/Accounts/{sid}/Calls.json?To=..&From=..&StartTime>=..
           (newest first)
    Everything else is a 404 Twilio error. Requests without the right HTTP Basic
    credentials (account_sid:auth_token) get 401 (and are recorded)."""

    API_PREFIX = "/2010-04-01/Accounts/"

    def __init__(self, account_sid=None, auth_token=None):
        self.account_sid = account_sid or new_account_sid()
        self.auth_token = auth_token or uuid.uuid4().hex
        self.delay = 0.0  # seconds to wait before answering any request
        self._lock = threading.Condition()
        self._requests = []
        self._messages = []  # (RecordedRequest, message JSON) of accepted sends
        self._message_by_sid = {}
        self._failures = []  # pending fault specs for Messages POSTs
        self._to_failures = {}  # To -> pending fault specs for that recipient
        self._call_failures = []  # pending fault specs for Calls POSTs
        self._placed = []  # (RecordedRequest, call JSON) of accepted Call POSTs
        self._callbacks_config = None  # see enable_status_callbacks()
        self._callbacks = []  # status callbacks sent
        self._callback_turn = itertools.count()
        self._calls = {}  # sid -> call JSON
        self._children = {}  # parent sid -> [child sid]
        self._server = None
        self._thread = None

    # lifecycle
    def start(self):
        self._server = _MockServer(("127.0.0.1", 0), _MockHandler)
        self._server.mock = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # knobs
    def set_delay(self, seconds):
        self.delay = seconds

    def fail_next_messages(self, n, status=500, retry_after=None, code=None, message=None):
        """The next n Message POSTs (with valid credentials) fail with `status`.

        status 429 adds a Retry-After header when retry_after is given; status 400
        defaults to code 21211 (invalid 'To' number); `code` puts another Twilio
        error code in the JSON body (21610 unsubscribed recipient, 21614 not a
        mobile number, ...: see ERROR_MESSAGES), with Twilio's message for it
        unless `message` is given."""
        with self._lock:
            for _ in range(n):
                self._failures.append(_fault("error", status=status, retry_after=retry_after,
                                             code=code, message=message))

    def drop_next_message_answers(self, n):
        """The next n Message POSTs are accepted (the message exists and counts),
        but the connection is closed before the answer: the sender cannot know."""
        with self._lock:
            for _ in range(n):
                self._failures.append(_fault("drop"))

    def hold_next_messages(self, n, seconds, then="drop"):
        """The next n Message POSTs get no answer for `seconds` (a carrier that
        times out), then:
          then="drop"    the connection is closed and the message does not exist
                         (the carrier never took it: it must be sent again);
          then="accept"  the message was taken when the request arrived (a
                         lookup finds it at once) and the 201 goes out late,
                         after the sender gave up: it must not be sent again.
        """
        if then not in ("drop", "accept"):
            raise ValueError("then must be 'drop' or 'accept', not %r" % (then,))
        with self._lock:
            for _ in range(n):
                self._failures.append(_fault("hold", seconds=seconds, then=then))

    def fail_messages_to(self, to, status=400, code=None, message=None, retry_after=None,
                         times=None, hold=None, then="drop"):
        """Message POSTs whose To is `to` fail like fail_next_messages(), or with
        hold=<seconds> like hold_next_messages(): the next `times` of them, or
        every one when times is None. Faults for a recipient come before the
        global ones (fail_next_messages, drop_next_message_answers); other
        recipients are not affected."""
        if hold is not None:
            fault = _fault("hold", seconds=hold, then=then)
        else:
            fault = _fault("error", status=status, retry_after=retry_after, code=code,
                           message=message)
        with self._lock:
            queue = self._to_failures.setdefault(to, [])
            if times is None:
                queue.append(dict(fault, forever=True))
            else:
                queue.extend(dict(fault) for _ in range(times))

    def fail_next_calls(self, n, status=500, retry_after=None, code=None, message=None):
        """The next n Call POSTs (pages) fail with `status`, as fail_next_messages()
        (status 400 defaults to code 21211, 429 to 20429, others to 20500)."""
        with self._lock:
            for _ in range(n):
                self._call_failures.append(_fault("error", status=status,
                                                  retry_after=retry_after, code=code,
                                                  message=message))

    def drop_next_call_answers(self, n):
        """The next n Call POSTs are accepted (the call exists and is listed), but
        the connection is closed before the answer: the caller cannot know."""
        with self._lock:
            for _ in range(n):
                self._call_failures.append(_fault("drop"))

    def clear_faults(self):
        with self._lock:
            self._failures.clear()
            self._to_failures.clear()
            self._call_failures.clear()

    def enable_status_callbacks(self, targets, undelivered=(), order="forward", repeat=1,
                                delay=0.05, error_code=30003):
        """After accepting a Message POST whose form has StatusCallback, POSTs
        the message's status to that URL from a thread, as Twilio does: "sent"
        then "delivered", or "sent" then "undelivered" with ErrorCode
        `error_code` for recipients in `undelivered`. order="reverse" sends the
        final status first (a late "sent"); each callback is sent `repeat`
        times (carrier retries). Requests are signed with the auth token over
        the StatusCallback URL, which names the public URL: they are sent to
        the base URL(s) in `targets` instead (one ringback URL, or a list used
        in turn). Results are in status_callbacks()."""
        if order not in ("forward", "reverse"):
            raise ValueError("order must be 'forward' or 'reverse', not %r" % (order,))
        targets = [targets] if isinstance(targets, str) else list(targets)
        with self._lock:
            self._callbacks_config = {"targets": targets, "undelivered": set(undelivered),
                                      "order": order, "repeat": repeat, "delay": delay,
                                      "error_code": error_code}

    def disable_status_callbacks(self):
        with self._lock:
            self._callbacks_config = None

    def status_callbacks(self):
        """Status callbacks posted so far: dicts with sid, to, status, target,
        http_status (None when the request failed), seconds (round trip) and
        the form."""
        with self._lock:
            return [dict(c) for c in self._callbacks]

    def wait_for_status_callbacks(self, n, timeout=None):
        """Waits until at least n status callbacks got an answer; returns them."""
        timeout = scaled(15) if timeout is None else timeout
        return wait_until(lambda: (lambda cs: cs if len(cs) >= n else None)(
            [c for c in self.status_callbacks() if "http_status" in c]), timeout,
            message="%d status callback(s)" % n)

    def message_lookups(self):
        """GET Messages.json (list) requests seen."""
        return [r for r in self.requests("GET") if r.path.endswith("/Messages.json")]

    def set_call(self, sid, status, duration=0, children=(), from_=None, to=None):
        """Sets what GET Calls/{sid}.json and Calls.json?ParentCallSid={sid} answer.

        children: [(child_sid, status, duration), ...] (the Dial legs)."""
        from_ = from_ or "+17205550100"
        to = to or BUSINESS_NUMBER
        with self._lock:
            for old in self._children.pop(sid, []):
                self._calls.pop(old, None)
            self._calls[sid] = self._call_json(sid, status, duration, None, from_, to, "inbound")
            self._children[sid] = []
            for child_sid, child_status, child_duration in children:
                self._calls[child_sid] = self._call_json(
                    child_sid, child_status, child_duration, sid, to, OWNER_PHONE, "outbound-dial")
                self._children[sid].append(child_sid)

    # what was seen
    def requests(self, method=None, path_contains=None):
        with self._lock:
            return [r for r in self._requests
                    if (method is None or r.method == method)
                    and (path_contains is None or path_contains in r.path)]

    def messages(self):
        """Decoded forms of the accepted (201) Message POSTs, in arrival order."""
        with self._lock:
            return [dict(req.form) for req, _ in self._messages]

    def message_count(self):
        with self._lock:
            return len(self._messages)

    def send_times(self, to=None, from_=None):
        """(arrival time, form) of each accepted Message POST, by arrival time
        (time.monotonic() when the request reached the mock), optionally only
        those to `to` / from `from_`. For pacing checks."""
        with self._lock:
            out = [(req.time, dict(req.form)) for req, _ in self._messages
                   if (to is None or req.form.get("To") == to)
                   and (from_ is None or req.form.get("From") == from_)]
        return sorted(out, key=lambda x: x[0])

    def message_posts(self):
        """Every Message POST, accepted or not, recorded on arrival: its status is 0
        until the mock has chosen its answer."""
        return [r for r in self.requests("POST") if r.path.endswith("/Messages.json")]

    def unauthorized(self):
        return [r for r in self.requests() if not r.authorized]

    def placed_calls(self):
        """Decoded forms of the accepted (201) Call POSTs (pages), in arrival order."""
        with self._lock:
            return [dict(req.form) for req, _ in self._placed]

    def call_posts(self):
        """Every Call POST, accepted or not, recorded on arrival: its status is 0
        until the mock has chosen its answer."""
        return [r for r in self.requests("POST") if r.path.endswith("/Calls.json")]

    def call_lookups(self):
        """GET Calls.json list requests other than child listings (a page's lookup)."""
        return [r for r in self.requests("GET")
                if r.path.endswith("/Calls.json") and "ParentCallSid" not in r.query]

    def call_fetches(self, sid):
        """GET Calls/{sid}.json requests seen."""
        return [r for r in self.requests("GET") if r.path.endswith("/Calls/%s.json" % sid)]

    def child_listings(self, sid):
        """GET Calls.json?ParentCallSid={sid} requests seen."""
        return [r for r in self.requests("GET")
                if r.path.endswith("/Calls.json") and sid in r.query.get("ParentCallSid", [])]

    def wait_for_messages(self, n, timeout=None):
        """Waits until at least n messages were accepted; returns them all.

        Accepted is the mock's choice of a 201, made before the answer is sent:
        ringback may not have it (nor counted, logged or stored it) yet."""
        timeout = scaled(15) if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "timed out after %.1fs waiting for %d message(s); got %d: %s"
                        % (timeout, n, len(self._messages), self._summary_locked()))
                self._lock.wait(min(left, 0.2))
            return [dict(req.form) for req, _ in self._messages]

    def wait_for_request(self, predicate, timeout=None, message="a request"):
        """Waits until predicate(request) holds for a recorded request; returns
        those it holds for. Requests are recorded on arrival (status 0 until
        the mock has chosen its answer): wait on the status if it matters."""
        timeout = scaled(15) if timeout is None else timeout
        return wait_until(lambda: [r for r in self.requests() if predicate(r)], timeout,
                          message=message)

    def assert_message_count_stays(self, n, seconds):
        """Fails as soon as more than n messages are accepted within `seconds`."""
        deadline = time.monotonic() + seconds
        with self._lock:
            while True:
                if len(self._messages) != n:
                    raise AssertionError("expected exactly %d message(s), got %d: %s"
                                         % (n, len(self._messages), self._summary_locked()))
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._lock.wait(min(left, 0.2))

    def expect_messages(self, n, timeout=None, quiet=2.0):
        """Exactly n accepted messages: waits for n, then checks that no more
        arrive for `quiet` seconds. Returns the decoded forms."""
        self.wait_for_messages(n, timeout)
        self.assert_message_count_stays(n, scaled(quiet))
        return self.messages()

    def summary(self, limit=60):
        with self._lock:
            return self._summary_locked(limit)

    def _summary_locked(self, limit=60):
        lines = []
        for r in self._requests[-limit:]:
            q = ("?" + urllib.parse.urlencode(r.query, doseq=True)) if r.query else ""
            form = (" " + json.dumps(r.form)) if r.form else ""
            lines.append("  %s %s%s -> %d%s" % (r.method, r.path, q, r.status, form))
        return "%d request(s)%s\n%s" % (
            len(self._requests),
            " (last %d)" % limit if len(self._requests) > limit else "", "\n".join(lines))

    # serving
    def _call_json(self, sid, status, duration, parent, from_, to, direction):
        base = "/2010-04-01/Accounts/%s/Calls/%s" % (self.account_sid, sid)
        now = _rfc2822_now()
        done = status in ("completed", "busy", "failed", "no-answer", "canceled")
        return {
            "sid": sid, "account_sid": self.account_sid, "parent_call_sid": parent,
            "date_created": now, "date_updated": now,
            "to": to, "to_formatted": to, "from": from_, "from_formatted": from_,
            "phone_number_sid": None if parent else "PN" + "0" * 32,
            "status": status, "start_time": now, "end_time": now if done else None,
            "duration": str(duration) if done else None,
            "price": None, "price_unit": "USD", "direction": direction,
            "answered_by": None, "api_version": "2010-04-01", "forwarded_from": None,
            "group_sid": None, "caller_name": None, "queue_time": "0", "trunk_sid": None,
            "uri": base + ".json",
            "subresource_uris": {"notifications": base + "/Notifications.json",
                                 "recordings": base + "/Recordings.json"},
        }

    def _dispatch(self, h):
        arrived = time.monotonic()
        url = urllib.parse.urlsplit(h.path)
        path = url.path
        try:
            body = h._body()
        except (ValueError, OSError):
            body = b""
        form = _decode_form(body) if h.command == "POST" else {}
        expected = "Basic " + base64.b64encode(
            ("%s:%s" % (self.account_sid, self.auth_token)).encode()).decode()
        authorized = hmac.compare_digest(h.headers.get("Authorization", ""), expected)
        rec = RecordedRequest(h.command, path, urllib.parse.parse_qs(url.query, keep_blank_values=True),
                              {k.lower(): v for k, v in h.headers.items()}, form, body,
                              authorized, 0, arrived)
        with self._lock:
            self._requests.append(rec)
            self._lock.notify_all()
        if self.delay:
            time.sleep(self.delay)

        status, obj, headers = self._route(h.command, path, rec, authorized)
        drop = bool(headers and headers.pop("__drop__", False))
        hold = headers.pop("__hold__", None) if headers else None
        is_message = path.endswith("/Messages.json")
        with self._lock:
            rec.status = status
            if status == 201 and is_message:
                self._messages.append((rec, obj))
                self._message_by_sid[obj["sid"]] = obj
            self._lock.notify_all()
        if status == 201 and is_message and rec.form.get("StatusCallback"):
            self._schedule_status_callbacks(rec, obj)
        if hold is not None:
            time.sleep(hold)
        if drop:
            h.close_connection = True  # accepted or not, the answer is lost
            return
        try:
            h.send_json(status, obj, headers)
        except OSError:
            pass

    def _route(self, method, path, rec, authorized):
        not_found = (404, twilio_error(20404, "The requested resource %s was not found" % path, 404), None)
        if not path.startswith(self.API_PREFIX):
            return not_found
        if not authorized:
            return (401, {"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.",
                          "message": "Authenticate",
                          "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401},
                    {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        rest = path[len(self.API_PREFIX):].split("/")
        if rest[0] != self.account_sid:
            return not_found
        rest = rest[1:]
        if method == "POST" and rest == ["Messages.json"]:
            return self._create_message(rec)
        if method == "GET" and rest == ["Messages.json"]:
            return self._list_messages(path, rec.query)
        if method == "GET" and len(rest) == 2 and rest[0] == "Messages" and rest[1].endswith(".json"):
            with self._lock:
                msg = self._message_by_sid.get(rest[1][:-5])
            return (200, msg, None) if msg else not_found
        if method == "GET" and len(rest) == 2 and rest[0] == "Calls" and rest[1].endswith(".json"):
            with self._lock:
                call = self._calls.get(rest[1][:-5])
            return (200, dict(call), None) if call else not_found
        if method == "GET" and rest == ["Calls.json"]:
            return self._list_calls(path, rec.query)
        if method == "POST" and rest == ["Calls.json"]:
            return self._create_call(rec)
        if method != "GET" and method != "POST":
            return (405, twilio_error(20004, "Method not allowed", 405), None)
        return not_found

    def _next_fault(self, to):
        with self._lock:
            queue = self._to_failures.get(to)
            if queue:
                fault = queue[0]
                if not fault.get("forever"):
                    queue.pop(0)
                return fault
            return self._failures.pop(0) if self._failures else None

    def _create_message(self, rec):
        form = rec.form
        to = form.get("To", "")
        fault = self._next_fault(to if isinstance(to, str) else "")
        drop = fault is not None and fault["kind"] == "drop"
        if fault is not None and fault["kind"] == "hold":
            if fault["then"] == "drop":
                # Never taken: no answer for a while, then a closed connection.
                return (0, None, {"__drop__": True, "__hold__": fault["seconds"]})
            status, obj, headers = self._create_message_now(rec)
            headers = dict(headers or {}, __hold__=fault["seconds"])
            return (status, obj, headers)
        if fault is not None and fault["kind"] == "error":
            status, retry_after = fault["status"], fault["retry_after"]
            code, message = fault["code"], fault["message"]
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            if status == 400:
                code = code or 21211
            elif status == 429:
                code = code or 20429
            else:
                code = code or 20500
            message = message or ERROR_MESSAGES.get(code, "Error %d" % code).replace("{to}", to)
            return (status, twilio_error(code, message, status), headers)
        status, obj, headers = self._create_message_now(rec)
        if drop:
            headers = dict(headers or {}, __drop__=True)
        return (status, obj, headers)

    def _create_call(self, rec):
        """A call placed through the API (ringback's page): recorded, listed, not dialled."""
        form = rec.form
        with self._lock:
            fault = self._call_failures.pop(0) if self._call_failures else None
        to = form.get("To", "")
        if fault is not None and fault["kind"] == "error":
            status, retry_after = fault["status"], fault["retry_after"]
            code = fault["code"] or {400: 21211, 429: 20429}.get(status, 20500)
            message = fault["message"] or ERROR_MESSAGES.get(code, "Error %d" % code).replace(
                "{to}", str(to))
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return (status, twilio_error(code, message, status), headers)
        if not isinstance(to, str) or not re.fullmatch(r"\+[1-9][0-9]{6,14}", to):
            return (400, twilio_error(21211, "The 'To' number %s is not a valid phone number."
                                      % to, 400), None)
        if not form.get("From"):
            return (400, twilio_error(21603, "The 'From' phone number is required.", 400), None)
        if not form.get("Twiml") and not form.get("Url") and not form.get("ApplicationSid"):
            return (400, twilio_error(21205, "Url parameter is required.", 400), None)
        sid = new_call_sid()
        call = self._call_json(sid, "queued", 0, None, form.get("From"), to, "outbound-api")
        with self._lock:
            self._calls[sid] = call
            self._placed.append((rec, call))
        headers = {"__drop__": True} if fault is not None and fault["kind"] == "drop" else None
        return (201, dict(call), headers)

    def _create_message_now(self, rec):
        form = rec.form
        to = form.get("To", "")
        if not isinstance(to, str) or not to:
            return (400, twilio_error(21604, "A 'To' phone number is required.", 400), None)
        if not re.fullmatch(r"\+[1-9][0-9]{6,14}", to):
            # e.g. a '+' that was not percent-encoded arrives as a space
            return (400, twilio_error(21211, "The 'To' number %s is not a valid phone number." % to, 400), None)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return (400, twilio_error(21603, "The 'From' phone number is required.", 400), None)
        if not form.get("Body") and not form.get("MediaUrl"):
            return (400, twilio_error(21602, "Message body is required.", 400), None)
        sid = new_message_sid()
        now = _rfc2822_now()
        base = "/2010-04-01/Accounts/%s/Messages/%s" % (self.account_sid, sid)
        body = form.get("Body", "")
        return (201, {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body,
            "date_created": now, "date_sent": None, "date_updated": now,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0", "num_segments": str(max(1, (len(body) + 152) // 153)),
            "price": None, "price_unit": "USD", "sid": sid, "status": "queued",
            "subresource_uris": {"media": base + "/Media.json"}, "to": to, "uri": base + ".json",
        }, None)

    def _schedule_status_callbacks(self, rec, msg):
        with self._lock:
            cfg = self._callbacks_config
        if cfg is None:
            return
        to = rec.form.get("To", "")
        final = "undelivered" if to in cfg["undelivered"] else "delivered"
        statuses = ["sent", final]
        if cfg["order"] == "reverse":
            statuses.reverse()
        turn = next(self._callback_turn)
        target = cfg["targets"][turn % len(cfg["targets"])]
        url = rec.form["StatusCallback"]
        threading.Thread(target=self._post_status_callbacks, daemon=True,
                         args=(url, target, msg, statuses, cfg)).start()

    def _post_status_callbacks(self, url, target, msg, statuses, cfg):
        parts = urllib.parse.urlsplit(url)
        local = target.rstrip("/") + parts.path + ("?" + parts.query if parts.query else "")
        time.sleep(cfg["delay"])
        for status in statuses:
            params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01",
                      "From": msg["from"] or "", "MessageSid": msg["sid"],
                      "MessageStatus": status, "SmsSid": msg["sid"], "SmsStatus": status,
                      "To": msg["to"]}
            if status == "undelivered":
                params["ErrorCode"] = str(cfg["error_code"])
            with self._lock:
                stored = self._message_by_sid.get(msg["sid"])
                if stored is not None and _STATUS_RANK.get(status, 0) > _STATUS_RANK.get(
                        stored["status"], 0):
                    stored["status"] = status
                    if status == "undelivered":
                        stored["error_code"] = cfg["error_code"]
            for _ in range(cfg["repeat"]):
                entry = {"sid": msg["sid"], "to": msg["to"], "status": status, "target": target,
                         "form": dict(params)}
                body = urllib.parse.urlencode(params).encode()
                headers = {"Content-Type": "application/x-www-form-urlencoded",
                           "User-Agent": "TwilioProxy/1.1",
                           "X-Twilio-Signature": twilio_signature(self.auth_token, url, params),
                           "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
                started = time.monotonic()
                try:
                    r = http_request(local, "POST", body, headers, timeout=scaled(10))
                    entry["http_status"] = r.status
                except OSError as e:
                    entry["http_status"] = None
                    entry["error"] = str(e)
                entry["seconds"] = time.monotonic() - started
                with self._lock:
                    self._callbacks.append(entry)
                    self._lock.notify_all()

    def _list_messages(self, path, query):
        """Newest first, filtered by To and From, like Twilio's list."""
        def first(name):
            values = query.get(name)
            return values[0] if values else None
        to, from_ = first("To"), first("From")
        page_size = int(first("PageSize") or 50)
        with self._lock:
            listed = [dict(m) for _, m in reversed(self._messages)
                      if (to is None or m["to"] == to) and (from_ is None or m["from"] == from_)]
        listed = listed[:page_size]
        uri = path + "?" + urllib.parse.urlencode(
            [(k, v) for k, vs in sorted(query.items()) for v in vs])
        uri = TWILIO_API_BASE + uri  # the spec types these as absolute URIs
        return (200, {"messages": listed, "end": max(0, len(listed) - 1), "first_page_uri": uri,
                      "next_page_uri": None, "page": 0, "page_size": page_size,
                      "previous_page_uri": None, "start": 0, "uri": uri}, None)

    def _list_calls(self, path, query):
        def first(name):
            values = query.get(name)
            return values[0] if values else None
        parent = first("ParentCallSid")
        status = first("Status")
        page_size = int(first("PageSize") or 50)
        with self._lock:
            if parent is not None:
                calls = [dict(self._calls[c]) for c in self._children.get(parent, [])]
            else:
                calls = [dict(c) for c in reversed(list(self._calls.values()))]  # newest first
        if status:
            calls = [c for c in calls if c["status"] == status]
        to, from_, since = first("To"), first("From"), first("StartTime>")
        if to is not None:
            calls = [c for c in calls if c["to"] == to]
        if from_ is not None:
            calls = [c for c in calls if c["from"] == from_]
        if since is not None:  # YYYY-MM-DD, UTC: started on or after that day
            calls = [c for c in calls if c["start_time"] and
                     parsedate_to_datetime(c["start_time"]).strftime("%Y-%m-%d") >= since]
        calls = calls[:page_size]
        uri = path + "?" + urllib.parse.urlencode(
            [(k, v) for k, vs in sorted(query.items()) for v in vs] + [("PageSize", page_size), ("Page", 0)])
        uri = TWILIO_API_BASE + uri  # the spec types these as absolute URIs
        return (200, {"calls": calls, "end": max(0, len(calls) - 1), "first_page_uri": uri,
                      "next_page_uri": None, "page": 0, "page_size": page_size,
                      "previous_page_uri": None, "start": 0, "uri": uri}, None)


# -- the chat-completions mock (an OpenAI-compatible AI server) ----------------------------

@dataclasses.dataclass
class ChatRequest:
    method: str
    path: str
    headers: dict  # lower-case name -> value
    body: bytes
    json: object  # the decoded body (None when it is not JSON)
    time: float = 0.0  # time.monotonic() at arrival
    answer: str = ""  # what the mock does: "ok", "status 500", "slow", "malformed", "empty"
    status: int = 0  # the HTTP status answered (0: writing the answer failed)

    @property
    def messages(self):
        """The request's chat messages ([{role, content}, ...]), [] if none."""
        obj = self.json if isinstance(self.json, dict) else {}
        msgs = obj.get("messages")
        return msgs if isinstance(msgs, list) else []

    def text(self):
        """Every message's content, one per line (for "does it mention X")."""
        return "\n".join(str(m.get("content", "")) for m in self.messages if isinstance(m, dict))


class _ChatHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ChatMock/1.0"
    sys_version = ""

    def log_message(self, *args):
        pass

    def _handle(self):
        self.server.mock._dispatch(self)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def send_body(self, status, data, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


CHAT_FAULTS = ("status", "slow", "malformed", "empty")


class ChatCompletionsMock:
    """A recording mock of OpenAI's chat-completions API on 127.0.0.1:<free port>.

    POST {base_url}/chat/completions (base_url = http://127.0.0.1:<port>/v1)
    answers a chat.completion JSON whose choices[0].message.content is the
    configured reply (set_reply), with usage tokens; every request is recorded
    (requests(): ChatRequest with the decoded JSON body and the headers).
    Faults for the next requests (inject()): an HTTP error status
    with an OpenAI error body, a slow answer (held `seconds` before the normal
    answer: longer than the client's timeout, it never gets it), malformed
    JSON, or an empty content. Other paths get a 404."""

    def __init__(self, reply="Thanks for your message! We will get back to you shortly.",
                 prompt_tokens=42, completion_tokens=17, model="mock-model"):
        self.reply = reply
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.model = model
        self._lock = threading.Condition()
        self._requests = []
        self._faults = []  # pending fault dicts (kind, status, seconds, forever, match)
        self._server = None
        self._thread = None

    def start(self):
        self._server = _MockServer(("127.0.0.1", 0), _ChatHandler)
        self._server.mock = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def base_url(self):
        """What goes in `ai.base_url` (ringback appends /chat/completions)."""
        return self.url + "/v1"

    def ai_config(self, model="m", timeout="1s", max_attempts=1, **extra):
        """An `ai:` block (a dict for tenant_config(ai=...) or render_config's
        ai=) pointing at this mock."""
        cfg = {"provider": "openai", "base_url": self.base_url, "model": model,
               "timeout": timeout, "max_attempts": max_attempts}
        cfg.update(extra)
        return cfg

    # knobs
    def set_reply(self, text, prompt_tokens=None, completion_tokens=None):
        with self._lock:
            self.reply = text
            if prompt_tokens is not None:
                self.prompt_tokens = prompt_tokens
            if completion_tokens is not None:
                self.completion_tokens = completion_tokens

    def inject(self, kind, times=1, status=500, seconds=3.0, match=None):
        """The next `times` requests (every one when times is None) fail, or
        only those whose body contains the string `match` (e.g. a customer's
        words; faults with a match come first, like the Twilio mock's
        per-recipient ones):
          kind="status"     HTTP `status` with an OpenAI error JSON body;
          kind="slow"       no answer for `seconds`, then the normal answer
                            (a client with a shorter timeout has given up);
          kind="malformed"  200 with a body that is not JSON;
          kind="empty"      200, a well-formed completion whose content is ""
                            (usage tokens still reported)."""
        if kind not in CHAT_FAULTS:
            raise ValueError("kind must be one of %s, not %r" % (", ".join(CHAT_FAULTS), kind))
        fault = {"kind": kind, "status": status, "seconds": seconds, "forever": times is None,
                 "match": match}
        with self._lock:
            self._faults.extend([fault] if times is None else [dict(fault) for _ in range(times)])

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    # what was seen
    def requests(self):
        """Every request to /v1/chat/completions, in arrival order."""
        with self._lock:
            return [r for r in self._requests if r.path.endswith("/chat/completions")]

    def all_requests(self):
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, n, timeout=None):
        """Waits until at least n chat-completions requests arrived; returns them."""
        timeout = scaled(15) if timeout is None else timeout
        return wait_until(lambda: (lambda rs: rs if len(rs) >= n else None)(self.requests()),
                          timeout, message="%d chat-completions request(s)" % n)

    def summary(self):
        lines = []
        for r in self.all_requests():
            msgs = r.messages
            last = msgs[-1].get("content", "") if msgs and isinstance(msgs[-1], dict) else ""
            lines.append("  %s %s -> %s (%d message(s), last %r)"
                         % (r.method, r.path, r.answer or "-", len(msgs), str(last)[:120]))
        return "%d request(s)\n%s" % (len(lines), "\n".join(lines))

    # serving
    def _dispatch(self, h):
        arrived = time.monotonic()
        try:
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        except (ValueError, OSError):
            body = b""
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = None
        rec = ChatRequest(h.command, urllib.parse.urlsplit(h.path).path,
                          {k.lower(): v for k, v in h.headers.items()}, body, decoded, arrived)
        with self._lock:
            self._requests.append(rec)
            self._lock.notify_all()
            fault = None
            if rec.path.endswith("/chat/completions") and h.command == "POST":
                text = body.decode("utf-8", "replace")
                # json.dumps escapes non-ASCII: match the decoded contents too.
                text += "\n" + rec.text()
                candidates = ([f for f in self._faults if f["match"] is not None
                               and f["match"] in text]
                              or [f for f in self._faults if f["match"] is None])
                if candidates:
                    fault = candidates[0]
                    if not fault["forever"]:
                        self._faults.remove(fault)
                    # Known at once (a slow answer is still being held).
                    rec.answer = fault["kind"] if fault["kind"] != "status" else (
                        "status %d" % fault["status"])
            reply, prompt, completion = self.reply, self.prompt_tokens, self.completion_tokens
        if not (h.command == "POST" and rec.path.endswith("/chat/completions")):
            self._answer(h, rec, 404, {"error": {"message": "Unknown request URL: %s %s"
                                                 % (h.command, rec.path),
                                                 "type": "invalid_request_error",
                                                 "code": "unknown_url"}}, "not found")
            return
        kind = fault["kind"] if fault else None
        if kind == "status":
            status = fault["status"]
            self._answer(h, rec, status, {"error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error" if status >= 500 else "invalid_request_error",
                "code": None}}, "status %d" % status)
            return
        if kind == "malformed":
            self._answer(h, rec, 200, b'{"id": "chatcmpl-x", "choices": [{"message": ',
                         "malformed")
            return
        if kind == "slow":
            time.sleep(fault["seconds"])
        content = "" if kind == "empty" else reply
        model = decoded.get("model", self.model) if isinstance(decoded, dict) else self.model
        self._answer(h, rec, 200, {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }, kind or "ok")

    def _answer(self, h, rec, status, obj, what):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        with self._lock:
            rec.answer = what
            rec.status = status
        try:
            h.send_body(status, data)
        except OSError:
            with self._lock:  # the client gave up (e.g. its timeout ran out while we were slow)
                rec.status = 0


# -- webhooks, signed like Twilio ---------------------------------------------------------

_calls_seen = {}  # call sid -> {"from":..., "to":..., "action": path+query}
_calls_seen_lock = threading.Lock()


def _dial_action(twiml):
    """path+query of the <Dial action="..."> in a TwiML answer, or None."""
    m = re.search(r'<Dial\b[^>]*\baction="([^"]*)"', twiml)
    if not m:
        return None
    action = html.unescape(m.group(1))
    if action.startswith(PUBLIC_URL):
        action = action[len(PUBLIC_URL):]
    return action if action.startswith("/") else None


class Webhooks:
    """Posts Twilio-signed webhook requests to a ringback at `base_url`.

    The signature covers public_url + path (+ query), i.e. the URL that Twilio
    was told; the request itself goes to base_url (http://127.0.0.1:PORT).
    Calls started with incoming() are remembered (caller, number, the Dial action
    URL that ringback answered with), so that dial_result()/status() for the same
    CallSid need only the sid, also when sent to another process."""

    def __init__(self, base_url, auth_token, account_sid, public_url=PUBLIC_URL):
        self.base_url = base_url
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.public_url = public_url

    def post(self, path, params, signature="sign", headers=None, timeout=None):
        """POSTs a form. signature: "sign" (correct), None (no header) or a literal value."""
        body = urllib.parse.urlencode(params)
        hdrs = {"Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
        if signature == "sign":
            hdrs["X-Twilio-Signature"] = twilio_signature(self.auth_token, self.public_url + path, params)
        elif signature is not None:
            hdrs["X-Twilio-Signature"] = signature
        hdrs.update(headers or {})
        return http_request(self.base_url + path, "POST", body.encode(), hdrs, timeout)

    def _call(self, call_sid):
        with _calls_seen_lock:
            return dict(_calls_seen.get(call_sid, {}))

    def incoming(self, call_sid, from_=None, to=BUSINESS_NUMBER, **kw):
        """The voice webhook of a new inbound call (CallStatus=ringing)."""
        from_ = from_ or new_caller()
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": call_sid,
            "CallStatus": "ringing", "Called": to, "Caller": from_, "Direction": "inbound",
            "From": from_, "To": to,
        }
        params.update(kw.pop("extra", {}))
        r = self.post(VOICE_PATH, params, **kw)
        with _calls_seen_lock:
            entry = _calls_seen.setdefault(call_sid, {})
            entry.update({"from": from_, "to": to})
            action = _dial_action(r.text) if r.status == 200 else None
            if action:
                entry["action"] = action
        return r

    def dial_result(self, call_sid, status, duration=0, dial_call_sid=None, from_=None,
                    to=None, **kw):
        """The <Dial action> callback: DialCallStatus of the forwarded leg."""
        call = self._call(call_sid)
        from_ = from_ or call.get("from") or "+17205550100"
        to = to or call.get("to") or BUSINESS_NUMBER
        path = call.get("action") or DIAL_RESULT_PATH
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": call_sid,
            "CallStatus": "in-progress", "Called": to, "Caller": from_, "Direction": "inbound",
            "DialCallDuration": str(duration), "DialCallSid": dial_call_sid or new_call_sid(),
            "DialCallStatus": status, "From": from_, "To": to,
        }
        params.update(kw.pop("extra", {}))
        return self.post(path, params, **kw)

    def status(self, call_sid, status, duration=0, from_=None, to=None, **kw):
        """The call's status callback (e.g. completed with CallDuration)."""
        call = self._call(call_sid)
        from_ = from_ or call.get("from") or "+17205550100"
        to = to or call.get("to") or BUSINESS_NUMBER
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": call_sid,
            "CallStatus": status, "CallDuration": str(duration), "Called": to, "Caller": from_,
            "Direction": "inbound", "From": from_, "To": to, "CallbackSource": "call-progress-events",
            "SequenceNumber": "0", "Timestamp": formatdate(time.time(), usegmt=True),
        }
        params.update(kw.pop("extra", {}))
        return self.post(STATUS_PATH, params, **kw)

    def sms(self, message_sid, from_, to, body, **kw):
        """An inbound SMS webhook."""
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "Body": body,
            "From": from_, "MessageSid": message_sid, "NumMedia": "0", "NumSegments": "1",
            "SmsMessageSid": message_sid, "SmsSid": message_sid, "SmsStatus": "received",
            "To": to,
        }
        params.update(kw.pop("extra", {}))
        return self.post(SMS_PATH, params, **kw)

    def sms_status(self, message_sid, status, from_=BUSINESS_NUMBER, to=None, error_code=None,
                   **kw):
        """A message status callback (POST /webhooks/twilio/sms/status), as
        Twilio sends it for an outbound message: MessageStatus sent, delivered,
        undelivered (with ErrorCode), failed..."""
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "From": from_,
            "MessageSid": message_sid, "MessageStatus": status, "SmsSid": message_sid,
            "SmsStatus": status, "To": to or "+17205550100",
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        params.update(kw.pop("extra", {}))
        return self.post(SMS_STATUS_PATH, params, **kw)


# -- config ----------------------------------------------------------------------------------

def _q(value):
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def _flow_map(d):
    """{key: "value", n: 5} (numbers stay numbers)."""
    return "{%s}" % ", ".join("%s: %s" % (k, _q(v)) for k, v in d.items())


def tenant_config(numbers=None, messaging=None, **overrides):
    """The standard test tenant (TENANT) with changes, for tenants=[...].

    numbers: a list of E.164 strings or dicts ({"number": ..., "mps": 5,
    "type": "toll_free"}); messaging: the tenant's `messaging:` settings
    (e.g. {"repeat_caller_window": "off", "max_mps": 10}). Other sections go
    in as keyword arguments, e.g. conversations={"owner_reply_window": "5s"},
    profile={"services": ["drains"], "hours": "8-5"}, ai=chat.ai_config()."""
    t = dict(TENANT)
    if numbers is not None:
        t["numbers"] = list(numbers)
    if messaging is not None:
        t["messaging"] = dict(messaging)
    t.update(overrides)
    return t


def render_config(listen, node_id, store, kv, workflows, api_url, account_sid, auth_token,
                  ring_timeout="20s", fallback_grace="10s", tenants=None,
                  public_url=PUBLIC_URL, extra=None, ai=None):
    """The YAML of a ringback config. tenants: dicts like tenant_config()'s;
    ai: the global `ai:` block as a dict (None: none, the offline default)."""
    tenants = tenants if tenants is not None else [TENANT]
    lines = [
        "# written by tests/e2e/harness.py",
        "listen: %s" % _q(listen),
        "public_url: %s" % _q(public_url),
        "node_id: %s" % _q(node_id),
        "store: %s" % _q(store),
        "kv: %s" % _q(kv),
        "workflows: %s" % _q(workflows),
        "twilio:",
        "  api_url: %s" % _q(api_url),
        "  account_sid: %s" % _q(account_sid),
        "  auth_token: %s" % _q(auth_token),
        "calls:",
        "  ring_timeout: %s" % _q(ring_timeout),
        "  fallback_grace: %s" % _q(fallback_grace),
    ]
    if ai is not None:
        lines.append("ai: %s" % _flow_map(ai))
    lines.append("tenants:")
    for t in tenants:
        lines.append("  - id: %s" % _q(t["id"]))
        for key in ("name", "numbers", "owner_phone", "timezone", "business_hours",
                    "holidays", "quiet_hours", "http_allow", "messaging", "profile",
                    "conversations", "ai"):
            if key in t:
                value = t[key]
                if isinstance(value, dict):
                    lines.append("    %s: %s" % (key, _flow_map(value)))
                    continue
                lines.append("    %s: %s" % (key, "[%s]" % ", ".join(
                    _flow_map(v) if isinstance(v, dict) else _q(v) for v in value)
                    if isinstance(value, list) else _q(value)))
    if extra:
        lines.append(extra.rstrip("\n"))
    return "\n".join(lines) + "\n"


# -- GET /metrics -----------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _unescape_label(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_metrics(text):
    """Prometheus text format -> [(name, {label: value}, float)], in order.

    Raises ValueError on a line that is neither a comment nor a sample."""
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("not a Prometheus sample: %r" % line)
        labels = {}
        rest = m.group(2) or ""
        pos = 0
        while pos < len(rest):
            lm = _LABEL.match(rest, pos)
            if not lm:
                raise ValueError("bad labels in %r" % line)
            labels[lm.group(1)] = _unescape_label(lm.group(2))
            pos = lm.end()
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def metric_value(samples, name, **labels):
    """The sum of the samples called `name` whose labels include `labels`
    (0.0 when there is none). E.g. metric_value(s, "ringback_messages_sent_total",
    tenant="acme")."""
    return sum(v for n, ls, v in samples
               if n == name and all(ls.get(k) == str(x) for k, x in labels.items()))


def metric_families(text):
    """The names declared by `# TYPE name kind` lines -> kind."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            out[parts[2]] = parts[3]
    return out


# -- the process under test ------------------------------------------------------------

class Ringback:
    """The ringback binary as a child process with its own config, log and temp dir."""

    def __init__(self, binary, workdir, mock, node_id="node-a", store="sqlite:ringback.db",
                 kv="memory", ring_timeout="20s", fallback_grace="10s", tenants=None,
                 port=None, extra_config=None, public_url=PUBLIC_URL, workflows=None, ai=None,
                 env=None):
        self.binary = binary
        self.workdir = workdir
        self.mock = mock
        self.node_id = node_id
        self.port = port or free_port()
        self.public_url = public_url
        os.makedirs(workdir, exist_ok=True)
        self.config_path = os.path.join(workdir, "ringback.yaml")
        self.log_path = os.path.join(workdir, "ringback.log")
        with open(self.config_path, "w") as f:
            f.write(render_config(
                "127.0.0.1:%d" % self.port, node_id, store, kv,
                workflows or os.path.join(SOURCE_DIR, "workflows"), mock.url, mock.account_sid,
                mock.auth_token, ring_timeout, fallback_grace, tenants, public_url, extra_config,
                ai))
        # Variables added to the process's environment (e.g. OPENAI_API_KEY for
        # an `api_key: ${OPENAI_API_KEY}` in the config).
        self.env = dict(env or {})
        self.proc = None
        self.webhooks = Webhooks(self.url, mock.auth_token, mock.account_sid, public_url)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=None):
        with open(self.log_path, "ab") as log:
            log.write(("\n===== harness: starting %s serve --config %s =====\n"
                       % (self.binary, self.config_path)).encode())
            log.flush()
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--config", self.config_path], cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=dict(os.environ, **self.env) if self.env else None)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=None):
        """Waits until GET /healthz and GET /readyz both answer 200."""
        timeout = scaled(30) if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise AssertionError("ringback %s exited with %s before it was ready; log:\n%s"
                                     % (self.node_id, code, self.log_tail()))
            try:
                if (http_request(self.url + "/healthz", timeout=2).status == 200
                        and http_request(self.url + "/readyz", timeout=2).status == 200):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise AssertionError("ringback %s not ready after %.0fs; log:\n%s"
                                     % (self.node_id, timeout, self.log_tail()))
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._note("killed with SIGKILL")

    def restart(self, timeout=None):
        self.stop()
        return self.start(timeout)

    def stop(self, timeout=None):
        """SIGTERM, wait (then SIGKILL); returns the exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(10) if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._note("did not exit within the SIGTERM grace period: killed")
        return self.proc.returncode

    def _note(self, text):
        with open(self.log_path, "ab") as log:
            log.write(("===== harness: %s =====\n" % text).encode())

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=300):
        return "\n".join(self.log_text().splitlines()[-lines:])

    # shorthands
    def get(self, path, **kw):
        return http_request(self.url + path, "GET", **kw)

    def metrics(self):
        """GET /metrics, parsed (see parse_metrics); fails on a non-200 answer."""
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError("GET /metrics answered %d: %s" % (r.status, r.text[:500]))
        return parse_metrics(r.text)

    def metric(self, name, **labels):
        """One value from GET /metrics (see metric_value)."""
        return metric_value(self.metrics(), name, **labels)

    def request(self, method, path, body=None, headers=None, **kw):
        return http_request(self.url + path, method, body, headers, **kw)


# -- PostgreSQL / Redis for the service-backed variants ---------------------------------

def services_available():
    return bool(os.environ.get("RINGBACK_TEST_PG")) and bool(os.environ.get("RINGBACK_TEST_REDIS"))


def _pg_with_db(url, dbname):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))


def _psql(url, sql):
    subprocess.run(["psql", url, "-q", "-X", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


def create_pg_database(prefix="rb_e2e"):
    """A fresh database on RINGBACK_TEST_PG's server; returns (url, drop())."""
    base = os.environ["RINGBACK_TEST_PG"]
    name = "%s_%s" % (prefix, uuid.uuid4().hex[:12])
    _psql(base, 'CREATE DATABASE "%s"' % name)

    def drop():
        try:
            _psql(base, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        except (subprocess.SubprocessError, OSError):
            pass
    return _pg_with_db(base, name), drop


# Tests in different modules run in parallel against the one Redis server, so each
# module that uses Redis owns a database index and flushes only that one.
# (Index 0, the URL's own, is left to the C++ integration tests.)
REDIS_DB_INDEX = {
    "test_stores": 11,
    "test_two_processes": 12,
    "test_messaging": 14,  # 13: benchmarks/run-scenario --pg (test_simulator_smoke)
    "test_conversations": 15,
}


def _redis_pipeline(url, *commands):
    """Sends commands on one connection; returns their (simple) replies as bytes."""
    parts = urllib.parse.urlsplit(url)
    payload = b""
    for args in commands:
        payload += b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            payload += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection((parts.hostname, parts.port or 6379), timeout=10) as s:
        s.sendall(payload)
        got = b""
        while got.count(b"\r\n") < len(commands):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    replies = got.split(b"\r\n")[:len(commands)]
    for r in replies:
        if not r.startswith((b"+", b":")):
            raise RuntimeError("redis %s: %r" % (url, got))
    return replies


def redis_url_for(module):
    """RINGBACK_TEST_REDIS with the database index that `module` owns, flushed."""
    index = REDIS_DB_INDEX[module]
    parts = urllib.parse.urlsplit(os.environ["RINGBACK_TEST_REDIS"])
    url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/%d" % index, parts.query, ""))
    _redis_pipeline(url, ("SELECT", index), ("FLUSHDB",))
    return url


# -- the unittest base class ---------------------------------------------------------------

def binary_path():
    return os.environ.get("RINGBACK_BIN", "")


def check_binary():
    """Skips (or, with RINGBACK_REQUIRE_SERVICES=1, fails) without a runnable binary."""
    binary = binary_path()
    if binary and os.path.isfile(binary) and os.access(binary, os.X_OK):
        return binary
    why = ("RINGBACK_BIN is not set" if not binary
           else "RINGBACK_BIN=%s is missing or not executable" % binary)
    if require_services_flag():
        raise AssertionError(why + " (RINGBACK_REQUIRE_SERVICES=1)")
    raise unittest.SkipTest(why + ": end-to-end tests need the built ringback binary")


class E2ETestCase(unittest.TestCase):
    """A fresh TwilioMock per test (self.mock), ringback processes started with
    start_ringback() and stopped afterwards; on failure the logs of every process
    and the mock's requests are printed to stderr."""

    @classmethod
    def setUpClass(cls):
        cls.binary = check_binary()

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="ringback-e2e-%s-" % self._testMethodName[:40])
        self.processes = []
        self.mock = TwilioMock().start()
        self.addCleanup(self.mock.stop)

    def require_services(self):
        if services_available():
            return
        if require_services_flag():
            self.fail("RINGBACK_TEST_PG and RINGBACK_TEST_REDIS must be set (RINGBACK_REQUIRE_SERVICES=1)")
        self.skipTest("RINGBACK_TEST_PG / RINGBACK_TEST_REDIS not set (scripts/test-services start)")

    def chat_mock(self, **kw):
        """A started ChatCompletionsMock (kw: its constructor's), stopped after
        the test; its requests are printed with the diagnostics of a failure."""
        chat = ChatCompletionsMock(**kw).start()
        self.addCleanup(chat.stop)
        self.chat_mocks = getattr(self, "chat_mocks", []) + [chat]
        return chat

    def pg_store(self):
        url, drop = create_pg_database()
        self.addCleanup(drop)
        return url

    def start_ringback(self, name="node-a", start=True, **kw):
        rb = Ringback(self.binary, os.path.join(self.tmpdir, name), self.mock, node_id=name, **kw)
        self.processes.append(rb)
        self.addCleanup(rb.stop)
        if start:
            rb.start()
        return rb

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            failed = len(result.failures) + len(result.errors) > before
            if failed:
                self._dump_diagnostics()
            tmp = getattr(self, "tmpdir", None)
            if tmp and os.environ.get("RINGBACK_E2E_KEEP") != "1":
                shutil.rmtree(tmp, ignore_errors=True)

    def _dump_diagnostics(self):
        out = ["", "=" * 30 + " diagnostics for %s " % self.id() + "=" * 30]
        for rb in getattr(self, "processes", []):
            out.append("--- ringback %s (%s), log %s:" % (rb.node_id, rb.url, rb.log_path))
            out.append(rb.log_tail(400))
        mock = getattr(self, "mock", None)
        if mock is not None:
            out.append("--- Twilio mock saw " + mock.summary())
        for chat in getattr(self, "chat_mocks", []):
            out.append("--- chat-completions mock saw " + chat.summary())
        out.append("=" * 80)
        sys.stderr.write("\n".join(out) + "\n")
        sys.stderr.flush()

    # contract helpers
    def assert_missed_call_texts(self, messages, caller, business=BUSINESS_NUMBER,
                                 owner=OWNER_PHONE):
        """Exactly one text to the caller and one to the owner, both from the business number."""
        to_caller = [m for m in messages if m.get("To") == caller]
        to_owner = [m for m in messages if m.get("To") == owner]
        self.assertEqual(len(to_caller), 1, "texts to the caller %s: %r" % (caller, messages))
        self.assertEqual(len(to_owner), 1, "texts to the owner %s: %r" % (owner, messages))
        for m in (to_caller[0], to_owner[0]):
            self.assertEqual(m.get("From"), business, m)
            self.assertTrue(m.get("Body", "").strip(), "empty body: %r" % m)

    def assert_all_authorized(self):
        self.assertEqual([], [(r.method, r.path) for r in self.mock.unauthorized()],
                         "requests to the Twilio API without valid Basic auth")

    def missed_call(self, rb, status="no-answer", call_sid=None, caller=None):
        """incoming + dial result `status` (with the mock's call table agreeing)."""
        call_sid = call_sid or new_call_sid()
        caller = caller or new_caller()
        child = new_call_sid()
        self.mock.set_call(call_sid, "completed", 25, [(child, status, 0)], from_=caller)
        r = rb.webhooks.incoming(call_sid, caller)
        self.assertEqual(r.status, 200, r.text)
        r = rb.webhooks.dial_result(call_sid, status, 0, dial_call_sid=child)
        self.assertEqual(r.status, 200, r.text)
        return call_sid, caller


def run_concurrently(fns, workers=32):
    """Runs the callables on a thread pool; returns their results (re-raises the first error)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(f) for f in fns]
        return [f.result() for f in futures]
