#!/usr/bin/env python3
"""A deliberately small Python model of ringback's outside contract.

It exists only to check the end-to-end harness and tests themselves, without
the C++ binary: test_harness.py drives it through the Ringback wrapper, and the
whole suite can be pointed at it:

    cd tests/e2e && RINGBACK_BIN=$PWD/fake_ringback.py python3 -m unittest -v test_missed_call

It is NOT the product and makes no claim about how the product is built. It
understands exactly the config that harness.py writes. State lives in SQLite
(for a postgresql:// store, in a SQLite file shared by every fake given the
same URL), so kill -9 / restart and two-process tests behave.
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import urllib.parse

BODY_LIMIT = 64 * 1024
MISSED = ("no-answer", "busy", "failed", "canceled")


# -- config -----------------------------------------------------------------------------

def _scalar(text):
    text = text.strip()
    if text[:1] in ('"', "["):
        return json.loads(text)
    if text[:1] == "'":
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        return text


def parse_yaml(text):
    """Block maps, block lists of maps, JSON-style scalars and flow lists only."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        lines.append([len(raw) - len(raw.lstrip()), raw.strip()])

    def block(i, indent):
        if lines[i][1].startswith("- "):
            items = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                lines[i] = [indent + 2, lines[i][1][2:]]
                item, i = block(i, indent + 2)
                items.append(item)
            return items, i
        mapping = {}
        while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
            key, _, rest = lines[i][1].partition(":")
            if rest.strip():
                mapping[key.strip()] = _scalar(rest)
                i += 1
            elif i + 1 < len(lines) and lines[i + 1][0] > indent:
                mapping[key.strip()], i = block(i + 1, lines[i + 1][0])
            else:
                mapping[key.strip()] = None
                i += 1
        return mapping, i

    return block(0, 0)[0] if lines else {}


def seconds(text):
    text = str(text)
    for suffix, factor in (("ms", 0.001), ("s", 1), ("m", 60)):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * factor
    return float(text)


def signature(token, url, params):
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _remove_stale_shared_files(max_age=300):
    """The shared files of earlier test runs (the tests drop their databases,
    but the fake cannot know when)."""
    now = time.time()
    for name in os.listdir("/tmp"):
        if name.startswith("ringback-fake-"):
            path = os.path.join("/tmp", name)
            try:
                if now - os.path.getmtime(path) > max_age:
                    os.remove(path)
            except OSError:
                pass


# -- the model ----------------------------------------------------------------------------

class Fake:
    def __init__(self, config, config_dir):
        self.cfg = config
        self.public_url = config["public_url"].rstrip("/")
        tw = config["twilio"]
        self.api = urllib.parse.urlsplit(tw["api_url"])
        self.account_sid = tw["account_sid"]
        self.token = tw["auth_token"]
        calls = config.get("calls") or {}
        self.ring_timeout = seconds(calls.get("ring_timeout", "20s"))
        self.grace = seconds(calls.get("fallback_grace", "10s"))
        self.tenants = config.get("tenants") or []
        store = config["store"]
        if store.startswith("sqlite:"):
            path = os.path.join(config_dir, store[len("sqlite:"):])
        else:
            path = "/tmp/ringback-fake-%s.db" % hashlib.sha1(store.encode()).hexdigest()[:16]
            _remove_stale_shared_files()
        self.db_path = path
        self.local = threading.local()
        self.stopping = threading.Event()
        with self.db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript("""
                CREATE TABLE IF NOT EXISTS calls (sid TEXT PRIMARY KEY, tenant TEXT, caller TEXT,
                    number TEXT, deadline REAL, outcome TEXT, claimed_until REAL DEFAULT 0);
                CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, call_sid TEXT, kind TEXT,
                    dest TEXT, src TEXT, body TEXT, state TEXT DEFAULT 'pending',
                    next_at REAL DEFAULT 0, attempts INTEGER DEFAULT 0, claimed_until REAL DEFAULT 0,
                    UNIQUE (call_sid, kind));
            """)

    def db(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=60000")
            self.local.conn = conn
        return conn

    def tenant_for(self, number):
        for t in self.tenants:
            if number in (t.get("numbers") or []):
                return t
        return None

    def tenant_by_id(self, tid):
        return next((t for t in self.tenants if t["id"] == tid), None)

    # decisions
    def call_seen(self, sid, caller, number, deadline):
        t = self.tenant_for(number)
        if t is None:
            return None
        self.db().execute("INSERT OR IGNORE INTO calls (sid, tenant, caller, number, deadline) "
                          "VALUES (?, ?, ?, ?, ?)", (sid, t["id"], caller, number, deadline))
        return t

    def decide(self, sid, outcome):
        db = self.db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT tenant, caller, number FROM calls WHERE sid=? AND outcome IS NULL",
                             (sid,)).fetchone()
            if row is not None:
                db.execute("UPDATE calls SET outcome=? WHERE sid=?", (outcome, sid))
                if outcome == "missed":
                    t = self.tenant_by_id(row[0])
                    caller, number = row[1], row[2]
                    db.execute("INSERT OR IGNORE INTO outbox (call_sid, kind, dest, src, body) "
                               "VALUES (?, 'caller', ?, ?, ?)",
                               (sid, caller, number, "Sorry we missed your call at %s. "
                                "We will call you back soon." % t["name"]))
                    db.execute("INSERT OR IGNORE INTO outbox (call_sid, kind, dest, src, body) "
                               "VALUES (?, 'owner', ?, ?, ?)",
                               (sid, t["owner_phone"], number, "Missed call from %s" % caller))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # the Twilio REST API
    def api_call(self, method, path, form=None):
        conn = http.client.HTTPConnection(self.api.hostname, self.api.port, timeout=10)
        try:
            auth = base64.b64encode(("%s:%s" % (self.account_sid, self.token)).encode()).decode()
            headers = {"Authorization": "Basic " + auth}
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, "/2010-04-01/Accounts/%s/%s" % (self.account_sid, path), body, headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), (json.loads(data) if data else None)
        finally:
            conn.close()

    def fallback_loop(self):
        while not self.stopping.wait(0.2):
            try:
                self.fallback_once()
            except Exception as e:  # keep the loop alive, like a supervisor would
                print("fallback: %r" % e, file=sys.stderr, flush=True)

    def fallback_once(self):
        now = time.time()
        db = self.db()
        for (sid,) in db.execute("SELECT sid FROM calls WHERE outcome IS NULL AND deadline <= ? "
                                 "AND claimed_until <= ?", (now, now)).fetchall():
            if db.execute("UPDATE calls SET claimed_until=? WHERE sid=? AND claimed_until <= ?",
                          (now + 5, sid, now)).rowcount != 1:
                continue
            status, _, call = self.api_call("GET", "Calls/%s.json" % sid)
            if status != 200 or call["status"] in ("queued", "ringing", "in-progress"):
                db.execute("UPDATE calls SET deadline=?, claimed_until=0 WHERE sid=?", (now + 1, sid))
                continue
            status, _, page = self.api_call("GET", "Calls.json?" + urllib.parse.urlencode(
                {"ParentCallSid": sid}))
            if status != 200:
                db.execute("UPDATE calls SET deadline=?, claimed_until=0 WHERE sid=?", (now + 1, sid))
                continue
            answered = any(c["status"] == "completed" and int(c.get("duration") or 0) > 0
                           for c in page["calls"])
            self.decide(sid, "answered" if answered else "missed")

    def outbox_loop(self):
        while not self.stopping.wait(0.05):
            try:
                while self.send_one():
                    pass
            except Exception as e:
                print("outbox: %r" % e, file=sys.stderr, flush=True)

    def send_one(self):
        now = time.time()
        db = self.db()
        db.execute("BEGIN IMMEDIATE")
        row = db.execute("SELECT id, dest, src, body, attempts FROM outbox WHERE state='pending' "
                         "AND next_at <= ? AND claimed_until <= ? LIMIT 1", (now, now)).fetchone()
        if row is None:
            db.execute("COMMIT")
            return False
        db.execute("UPDATE outbox SET claimed_until=? WHERE id=?", (now + 30, row[0]))
        db.execute("COMMIT")
        oid, dest, src, body, attempts = row
        try:
            status, headers, _ = self.api_call("POST", "Messages.json",
                                               {"To": dest, "From": src, "Body": body})
        except OSError:
            status, headers = 599, {}
        if status == 201:
            db.execute("UPDATE outbox SET state='sent' WHERE id=?", (oid,))
        elif status == 429 or status >= 500:
            delay = float(headers.get("Retry-After") or min(2.0, 0.2 * 2 ** attempts))
            db.execute("UPDATE outbox SET next_at=?, attempts=attempts+1, claimed_until=0 WHERE id=?",
                       (time.time() + delay, oid))
        else:
            db.execute("UPDATE outbox SET state='failed' WHERE id=?", (oid,))
        return True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", ctype="text/plain", close=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def twiml(self, xml):
        self.reply(200, ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode(), "text/xml")

    ROUTES = ("/webhooks/twilio/voice", "/webhooks/twilio/voice/dial-result",
              "/webhooks/twilio/voice/status", "/webhooks/twilio/sms")

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/healthz", "/readyz"):
            self.reply(200, b"ok")
        elif path in self.ROUTES:
            self.reply(405, b"method not allowed")
        else:
            self.reply(404, b"not found")

    def do_POST(self):
        fake = self.server.fake
        path = urllib.parse.urlsplit(self.path).path
        if self.headers.defects or "Transfer-Encoding" in self.headers:
            self.reply(400, b"bad request", close=True)
            return
        if path not in self.ROUTES:
            self.reply(404, b"not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > BODY_LIMIT:
            self.reply(413, b"payload too large", close=True)
            return
        params = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        got = self.headers.get("X-Twilio-Signature", "")
        want = signature(fake.token, fake.public_url + self.path, params)
        if not hmac.compare_digest(got, want):
            self.reply(403, b"forbidden")
            return
        sid = params.get("CallSid", "")
        if path == "/webhooks/twilio/voice":
            t = fake.call_seen(sid, params.get("From", ""), params.get("To", ""),
                               time.time() + fake.ring_timeout + fake.grace)
            if t is None:
                self.twiml("<Response><Reject/></Response>")
                return
            self.twiml('<Response><Dial timeout="%d" action="%s/webhooks/twilio/voice/dial-result" '
                       'method="POST"><Number>%s</Number></Dial></Response>'
                       % (round(fake.ring_timeout), fake.public_url, t["owner_phone"]))
        elif path == "/webhooks/twilio/voice/dial-result":
            fake.call_seen(sid, params.get("From", ""), params.get("To", ""), time.time())
            status = params.get("DialCallStatus", "")
            answered = status == "completed" and int(params.get("DialCallDuration") or 0) > 0
            fake.decide(sid, "answered" if answered else "missed")
            self.twiml("<Response><Hangup/></Response>")
        elif path == "/webhooks/twilio/voice/status":
            if params.get("CallStatus") in ("completed",) + MISSED:
                # the dial result may be lost: check the call soon
                fake.db().execute("UPDATE calls SET deadline=MIN(deadline, ?) WHERE sid=? "
                                  "AND outcome IS NULL", (time.time() + fake.grace, sid))
            self.reply(204)
        else:
            self.twiml("<Response/>")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main(argv):
    if len(argv) != 4 or argv[1] != "serve" or argv[2] != "--config":
        print("usage: fake_ringback.py serve --config FILE", file=sys.stderr)
        return 2
    with open(argv[3]) as f:
        config = parse_yaml(f.read())
    fake = Fake(config, os.path.dirname(os.path.abspath(argv[3])))
    host, port = config["listen"].rsplit(":", 1)
    server = Server((host, int(port)), Handler)
    server.fake = fake
    for loop in (fake.fallback_loop, fake.outbox_loop, fake.outbox_loop):
        threading.Thread(target=loop, daemon=True).start()

    def on_term(*_):
        fake.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, on_term)
    print("fake ringback listening on %s" % config["listen"], flush=True)
    server.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
