"""Conversations and the AI takeover (issue 5), end to end: the real binary
against the recording Twilio mock and a mock of the chat-completions API.

- a customer's text is relayed to the owner ("[#1 +1 720-555-0100] ...");
  when the owner stays silent for the owner-reply window (5 s here) the AI
  answers: the model's words, or the offline responder's when the model
  fails (HTTP 500, too slow, malformed JSON, empty content), recorded as
  ai_turn / ai_error events with provider, tokens and cost;
- the owner answering in time wins the window (no AI); `#ref` addresses one
  of several customers, a plain reply the one the owner last heard from, and
  no customer ever receives another one's words;
- any owner text takes the conversation back from the AI; texts in quick
  succession make one AI turn; STOP wins over the AI;
- two processes (PostgreSQL + Redis): an owner's reply on one near the end of
  the window the other holds gives exactly one outcome per window;
- kill -9 during an open window: the restarted process still answers once.

Every test uses a 5 s window and scaled() waits (RINGBACK_E2E_TIME_SCALE).
"""

import collections
import json
import os
import sqlite3
import subprocess
import sys
import time
import unittest

from harness import (BUSINESS_NUMBER, ChatCompletionsMock, E2ETestCase, OWNER_PHONE,
                     display_phone, http_request, new_caller, new_message_sid, redis_url_for,
                     relay_of, render_config, run_concurrently, scaled, tenant_config,
                     wait_until)

WINDOW = 5.0  # seconds: conversations.owner_reply_window in every test (the minimum)
FAST = {"number": BUSINESS_NUMBER, "mps": 50}
PROFILE = {
    "services": ["water heaters", "drain cleaning"],
    "hours": "Mon-Fri 8am-5pm",
    "service_area": "Denver metro",
    "booking_link": "https://acme.example/book",
}
MODEL_REPLY = "Thanks for reaching out! You can pick a time at https://acme.example/book."
# What the offline responder says to an hours question with PROFILE.
OFFLINE_HOURS = "Our hours are Mon-Fri 8am-5pm."
UNKNOWN_REF_HELP = ("No conversation #999. Start your text with the number shown in brackets, "
                    "e.g. #12 on my way.")


def relay_ref(body, customer):
    """The #ref of a relay "[#12 +1 720-555-0100] text" about `customer`, or None."""
    relay = relay_of(body)
    return relay[0] if relay and relay[1] == display_phone(customer) else None


def _lit(v):
    """An SQL literal of an int or a str (values the tests control)."""
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


class ConversationCase(E2ETestCase):
    """Helpers: start a ringback with conversations, text as a customer or the
    owner, read the conversation tables (SQLite file or PostgreSQL)."""

    def start(self, name="node-a", chat=None, conversations=None, ai=None, store=None,
              kv="memory", profile=PROFILE, **kw):
        conv = {"owner_reply_window": "%ds" % WINDOW}
        conv.update(conversations or {})
        tenant = dict(numbers=[FAST], conversations=conv, profile=profile)
        if ai is not None:
            tenant["ai"] = ai
        elif chat is not None:
            tenant["ai"] = chat.ai_config()
        store = store or "sqlite:ringback.db"
        rb = self.start_ringback(name, store=store, kv=kv, tenants=[tenant_config(**tenant)],
                                 **kw)
        rb.store_url = store
        return rb

    # texting
    def text(self, rb, customer, body):
        """A customer's SMS to the business number (ringback answers empty TwiML)."""
        r = rb.webhooks.sms(new_message_sid(), customer, BUSINESS_NUMBER, body)
        self.assertEqual(r.status, 200, r.text)
        return time.monotonic()

    def owner_says(self, rb, body):
        r = rb.webhooks.sms(new_message_sid(), OWNER_PHONE, BUSINESS_NUMBER, body)
        self.assertEqual(r.status, 200, r.text)
        return time.monotonic()

    def to(self, who):
        return [m for m in self.mock.messages() if m.get("To") == who]

    def bodies_to(self, who):
        return [m.get("Body") for m in self.to(who)]

    def wait_relay(self, customer, body=None, timeout=None):
        """Waits for the owner's relay of `customer`'s text (`body` if given);
        returns the conversation's #ref."""
        def find():
            for m in self.to(OWNER_PHONE):
                ref = relay_ref(m.get("Body"), customer)
                if ref is not None and (body is None or m["Body"].endswith("] " + body)):
                    self.assertEqual(m.get("From"), BUSINESS_NUMBER, m)
                    return ref
            return None
        return wait_until(find, scaled(10) if timeout is None else timeout,
                          message="the relay of %s's text %r to the owner" % (customer, body))

    def wait_texts(self, who, n, timeout=None):
        """Waits until `who` was sent at least n texts; returns their bodies."""
        return wait_until(lambda: (lambda b: b if len(b) >= n else None)(self.bodies_to(who)),
                          scaled(15) if timeout is None else timeout,
                          message="%d text(s) to %s" % (n, who))

    # the store
    def query(self, rb, sql):
        """Rows of a SELECT on the process's store: tuples (SQLite: native
        types; PostgreSQL: strings)."""
        url = rb.store_url
        if url.startswith("postgres"):
            out = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-F", "\x1f", "-c", sql],
                                 check=True, capture_output=True, text=True,
                                 timeout=scaled(30)).stdout
            return [tuple(line.split("\x1f")) for line in out.splitlines() if line]
        path = os.path.join(rb.workdir, url[len("sqlite:"):])
        conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def conversation(self, rb, customer):
        """The customer's conversation: dict of ref, state, window_seq,
        window_deadline (epoch ms), outcome, ai_replies; None if none."""
        rows = self.query(rb, "SELECT ref, state, window_seq, window_deadline, outcome, "
                              "ai_replies FROM conversations WHERE tenant_id = 'acme' AND "
                              "customer = %s" % _lit(customer))
        if not rows:
            return None
        ref, state, seq, deadline, outcome, replies = rows[0]
        return {"ref": int(ref), "state": state, "window_seq": int(seq),
                "window_deadline": int(deadline), "outcome": outcome,
                "ai_replies": int(replies)}

    def events(self, rb, customer):
        """The conversation's events in order: dicts of kind, detail,
        window_seq, provider, latency_ms, prompt_tokens, completion_tokens,
        cost_usd."""
        rows = self.query(rb, "SELECT e.kind, e.detail, e.window_seq, e.provider, "
                              "e.latency_ms, e.prompt_tokens, e.completion_tokens, e.cost_usd "
                              "FROM conversation_events e JOIN conversations c ON "
                              "c.id = e.conversation_id WHERE c.tenant_id = 'acme' AND "
                              "c.customer = %s ORDER BY e.id" % _lit(customer))
        return [{"kind": k, "detail": d, "window_seq": int(w), "provider": p,
                 "latency_ms": int(lat), "prompt_tokens": int(pt),
                 "completion_tokens": int(ct), "cost_usd": float(cost)}
                for k, d, w, p, lat, pt, ct, cost in rows]

    def kinds(self, rb, customer):
        return [e["kind"] for e in self.events(rb, customer)]

    def transcript(self, rb, customer):
        """[(author, body)] of the conversation, in order."""
        return [tuple(r) for r in self.query(
            rb, "SELECT m.author, m.body FROM conversation_messages m JOIN conversations c ON "
                "c.id = m.conversation_id WHERE c.tenant_id = 'acme' AND c.customer = %s "
                "ORDER BY m.id" % _lit(customer))]

    def outbox_to(self, rb, who):
        """[(state, reason, body)] of the outbox rows to `who`, in order."""
        return [tuple(r) for r in self.query(
            rb, "SELECT state, reason, body FROM messages WHERE to_number = %s ORDER BY id"
                % _lit(who))]

    def wait_kinds(self, rb, customer, *kinds, timeout=None):
        """Waits until the conversation's events include each of `kinds`
        (as many times as listed); returns the events."""
        want = collections.Counter(kinds)

        def check():
            got = collections.Counter(self.kinds(rb, customer))
            return all(got[k] >= n for k, n in want.items())
        try:
            wait_until(check, scaled(15) if timeout is None else timeout, interval=0.1,
                       message="events %r of %s" % (kinds, customer))
        except AssertionError:
            self.fail("events of %s: %r, expected to include %r"
                      % (customer, self.kinds(rb, customer), list(kinds)))
        return self.events(rb, customer)

    def requests_about(self, chat, words):
        """The chat-completions requests whose messages contain `words`."""
        return [r for r in chat.requests() if words in r.text()]


# -- the takeover -------------------------------------------------------------------------------

class Takeover(ConversationCase):
    def test_the_ai_answers_with_the_models_words_after_the_window(self):
        chat = self.chat_mock(reply=MODEL_REPLY, prompt_tokens=120, completion_tokens=30)
        key = "sk-test-" + "a1b2c3d4e5f6"
        rb = self.start(ai=chat.ai_config(model="m", api_key="${OPENAI_API_KEY}",
                                          usd_per_1k_prompt=0.5, usd_per_1k_completion=1.5),
                        env={"OPENAI_API_KEY": key})
        customer = new_caller()
        words = "Hi, can you look at my water heater this week? It makes a banging noise."
        sent_at = self.text(rb, customer, words)
        # The owner hears of it at once, from the business number.
        ref = self.wait_relay(customer, words, timeout=scaled(3))
        self.assertEqual(self.bodies_to(OWNER_PHONE),
                         ["[#%d %s] %s" % (ref, display_phone(customer), words)])
        # Silence from the owner: the AI answers when the window ends, not before.
        self.assertEqual(chat.requests(), [])
        self.assertEqual(self.to(customer), [])
        chat.wait_for_requests(1, timeout=scaled(WINDOW + 5))
        self.assertGreaterEqual(time.monotonic() - sent_at, WINDOW - 0.5)
        self.assertEqual(self.wait_texts(customer, 1), [MODEL_REPLY])
        self.assertEqual(self.to(customer)[0]["From"], BUSINESS_NUMBER)
        # The request: OpenAI's JSON, the configured model, the key from the
        # environment, the profile in the system message, the customer's words.
        req = chat.requests()[0]
        self.assertEqual(req.path, "/v1/chat/completions")
        self.assertEqual(req.headers.get("authorization"), "Bearer " + key)
        self.assertTrue(req.headers.get("content-type", "").startswith("application/json"))
        self.assertEqual(req.json["model"], "m")
        roles = [m["role"] for m in req.messages]
        self.assertEqual(roles[0], "system")
        self.assertEqual(roles[-1], "user")
        for fact in ("Acme Plumbing", "Mon-Fri 8am-5pm", "Denver metro", "water heaters",
                     "https://acme.example/book"):
            self.assertIn(fact, req.messages[0]["content"])
        self.assertIn(words, [m["content"] for m in req.messages if m["role"] == "user"][-1])
        self.assertNotIn(key, rb.log_text())
        # Recorded: the window's outcome, the turn with tokens and cost.
        events = self.wait_kinds(rb, customer, "ai_turn")
        self.assertEqual([e["kind"] for e in events],
                         ["opened", "window_opened", "ai_won", "ai_turn"])
        self.assertEqual(events[2]["window_seq"], 1)
        turn = events[3]
        self.assertEqual(turn["provider"], "openai")
        self.assertEqual((turn["prompt_tokens"], turn["completion_tokens"]), (120, 30))
        self.assertAlmostEqual(turn["cost_usd"], 0.120 * 0.5 + 0.030 * 1.5, places=6)
        self.assertGreaterEqual(turn["latency_ms"], 0)
        self.assertLess(turn["latency_ms"], scaled(1000))
        self.assertEqual(self.transcript(rb, customer), [("customer", words), ("ai", MODEL_REPLY)])
        conv = self.conversation(rb, customer)
        self.assertEqual((conv["ref"], conv["state"], conv["outcome"], conv["ai_replies"]),
                         (ref, "ai_active", "ai", 1))
        # Nothing more: one relay, one answer, one model call.
        self.mock.assert_message_count_stays(2, scaled(1.5))
        self.assertEqual(len(chat.requests()), 1)
        self.assert_all_authorized()

    def test_model_failures_fall_back_to_the_offline_answer(self):
        chat = self.chat_mock(reply=MODEL_REPLY)
        rb = self.start(chat=chat)  # timeout 1s, max_attempts 1
        cases = {  # customer -> (their words, the fault, the ai_error detail)
            new_caller(): ("What are your hours on Saturday? I'm on Elm St.",
                           dict(kind="status", status=500), "chat completions: HTTP 500"),
            new_caller(): ("What are your hours on Saturday? I'm on Oak St.",
                           dict(kind="slow", seconds=scaled(2.5)),
                           "chat completions: timed out after 1000 ms"),
            new_caller(): ("What are your hours on Saturday? I'm on Pine St.",
                           dict(kind="malformed"),
                           "chat completions: malformed JSON in the response"),
            new_caller(): ("What are your hours on Saturday? I'm on Ash St.",
                           dict(kind="empty"), "chat completions: no content in the response"),
        }
        for customer, (words, fault, _) in cases.items():
            chat.inject(match=words, times=None, **fault)
        run_concurrently([lambda c=c, w=w: self.text(rb, c, w)
                          for c, (w, _, _) in cases.items()], workers=4)
        for customer in cases:
            self.wait_relay(customer)
        # Each customer gets exactly one answer: the offline responder's.
        for customer, (words, _, detail) in cases.items():
            bodies = self.wait_texts(customer, 1, timeout=scaled(WINDOW + 8))
            self.assertEqual(len(bodies), 1, bodies)
            self.assertIn(OFFLINE_HOURS, bodies[0], customer)
            self.assertNotEqual(bodies[0], MODEL_REPLY)
        self.mock.assert_message_count_stays(8, scaled(1.5))
        for customer, (words, fault, detail) in cases.items():
            # One attempt each (max_attempts 1), answered with the fault.
            reqs = self.requests_about(chat, words)
            self.assertEqual([r.answer.split(" ")[0] for r in reqs], [fault["kind"]], words)
            events = self.wait_kinds(rb, customer, "ai_error", "ai_turn")
            self.assertEqual([e["kind"] for e in events],
                             ["opened", "window_opened", "ai_won", "ai_error", "ai_turn"],
                             customer)
            error, turn = events[3], events[4]
            self.assertTrue(error["detail"].startswith(detail), (detail, error))
            self.assertEqual(turn["provider"], "offline", turn)
            if fault["kind"] == "slow":
                self.assertGreaterEqual(turn["latency_ms"], 900)
            if fault["kind"] == "empty":
                # The tokens the server reported are still counted.
                self.assertEqual((turn["prompt_tokens"], turn["completion_tokens"]), (42, 17))
            self.assertEqual([a for a, _ in self.transcript(rb, customer)], ["customer", "ai"])


# -- the owner -----------------------------------------------------------------------------------

class OwnerReplies(ConversationCase):
    def test_the_owner_answering_in_time_wins_and_the_ai_stays_out(self):
        chat = self.chat_mock(reply=MODEL_REPLY)
        rb = self.start(chat=chat)
        customer = new_caller()
        words = "Do you do drain cleaning in Aurora?"
        sent_at = self.text(rb, customer, words)
        self.wait_relay(customer, words)
        self.owner_says(rb, "Yes we do. I can call you in 10 minutes.")
        self.assertEqual(self.wait_texts(customer, 1), ["Yes we do. I can call you in 10 minutes."])
        self.assertEqual(self.to(customer)[0]["From"], BUSINESS_NUMBER)
        self.wait_kinds(rb, customer, "owner_won")
        # Past the window: no model call, nothing more to anyone.
        left = WINDOW + 1.5 - (time.monotonic() - sent_at)
        self.mock.assert_message_count_stays(2, scaled(max(left, 0) + 0.5))
        self.assertEqual(chat.requests(), [])
        self.assertEqual(self.kinds(rb, customer), ["opened", "window_opened", "owner_won"])
        self.assertEqual(self.transcript(rb, customer), [
            ("customer", words), ("owner", "Yes we do. I can call you in 10 minutes.")])
        conv = self.conversation(rb, customer)
        self.assertEqual((conv["state"], conv["outcome"], conv["ai_replies"]),
                         ("owner_active", "owner", 0))

    def test_ref_replies_with_two_customers_never_cross(self):
        chat = self.chat_mock(reply=MODEL_REPLY)
        rb = self.start(chat=chat)
        x, y = new_caller(), new_caller()
        x_words = "Is the tech still coming to Maple Ave?"
        y_words = "Can I get a quote for a new sink?"
        started = time.monotonic()
        run_concurrently([lambda: self.text(rb, x, x_words), lambda: self.text(rb, y, y_words)],
                         workers=2)
        x_ref, y_ref = self.wait_relay(x, x_words), self.wait_relay(y, y_words)
        self.assertNotEqual(x_ref, y_ref)
        # x writes again: the owner's plain replies now go to x.
        self.text(rb, x, "Gate code is 4321.")
        self.assertEqual(self.wait_relay(x, "Gate code is 4321."), x_ref)
        self.owner_says(rb, "#%d For Y: about $200, I will confirm tomorrow." % y_ref)
        self.owner_says(rb, "For X: yes, around 3pm, thanks for the code.")
        self.owner_says(rb, "#999 hello?")
        self.owner_says(rb, "#%d:   " % x_ref)
        self.wait_texts(x, 1)
        self.wait_texts(y, 1)
        self.wait_texts(OWNER_PHONE, 5)
        # Past both windows: no AI, and each customer got only their own words.
        left = WINDOW + 1.5 - (time.monotonic() - started)
        time.sleep(scaled(max(left, 0) + 0.5))
        self.assertEqual(self.bodies_to(x), ["For X: yes, around 3pm, thanks for the code."])
        self.assertEqual(self.bodies_to(y), ["For Y: about $200, I will confirm tomorrow."])
        # The owner: three relays, the unknown reference and the empty reply explained.
        owner = self.bodies_to(OWNER_PHONE)
        self.assertEqual(sorted(owner[:2]), sorted([
            "[#%d %s] %s" % (x_ref, display_phone(x), x_words),
            "[#%d %s] %s" % (y_ref, display_phone(y), y_words)]))
        self.assertEqual(owner[2], "[#%d %s] Gate code is 4321." % (x_ref, display_phone(x)))
        self.assertEqual(sorted(owner[3:]), sorted([
            UNKNOWN_REF_HELP,
            "Nothing to send to #%d: write your text after the number." % x_ref]))
        self.assertEqual(len(self.mock.messages()), 7)
        self.assertEqual(chat.requests(), [])
        for who in (x, y):
            self.assertEqual(self.kinds(rb, who), ["opened", "window_opened", "owner_won"])
        self.assertEqual(self.transcript(rb, x), [
            ("customer", x_words), ("customer", "Gate code is 4321."),
            ("owner", "For X: yes, around 3pm, thanks for the code.")])
        self.assertEqual(self.transcript(rb, y), [
            ("customer", y_words), ("owner", "For Y: about $200, I will confirm tomorrow.")])

    def test_the_owner_takes_the_conversation_back_from_the_ai(self):
        chat = self.chat_mock(reply=MODEL_REPLY)
        rb = self.start(chat=chat, conversations={"batch": "1s"})
        customer = new_caller()
        self.text(rb, customer, "Do you service tankless heaters?")
        ref = self.wait_relay(customer)
        self.assertEqual(self.wait_texts(customer, 1, timeout=scaled(WINDOW + 5)), [MODEL_REPLY])
        # The owner writes: the customer gets their words, the AI stops.
        self.owner_says(rb, "#%d This is Dave, I'll take it from here." % ref)
        self.assertEqual(self.wait_texts(customer, 2)[1], "This is Dave, I'll take it from here.")
        self.wait_kinds(rb, customer, "taken_back")
        self.assertEqual(self.conversation(rb, customer)["state"], "owner_active")
        # The customer's next text is the owner's again: relayed, a new window,
        # and no AI turn after the batch time (1 s) as while the AI held it.
        sent_at = self.text(rb, customer, "Great, thanks Dave. Tuesday works.")
        self.wait_relay(customer, "Great, thanks Dave. Tuesday works.")
        # (Not scaled: this must stay inside the new 5 s window.)
        time.sleep(max(0.0, sent_at + 3.5 - time.monotonic()))
        self.assertEqual(len(chat.requests()), 1)
        self.owner_says(rb, "See you Tuesday.")
        self.assertEqual(self.wait_texts(customer, 3)[2], "See you Tuesday.")
        left = WINDOW + 1.0 - (time.monotonic() - sent_at)
        self.mock.assert_message_count_stays(5, scaled(max(left, 0) + 0.5))
        self.assertEqual(len(chat.requests()), 1)
        events = self.events(rb, customer)
        self.assertEqual([(e["kind"], e["window_seq"]) for e in events
                          if e["kind"] not in ("ai_turn",)],
                         [("opened", 1), ("window_opened", 1), ("ai_won", 1), ("taken_back", 1),
                          ("window_opened", 2), ("owner_won", 2)])
        self.assertEqual([a for a, _ in self.transcript(rb, customer)],
                         ["customer", "ai", "owner", "customer", "owner"])


# -- batching and STOP -------------------------------------------------------------------------

class Batching(ConversationCase):
    def test_quick_texts_make_one_ai_turn(self):
        chat = self.chat_mock(reply=MODEL_REPLY)
        rb = self.start(chat=chat, conversations={"batch": "2s"})
        customer = new_caller()
        self.text(rb, customer, "Do you install garbage disposals?")
        self.assertEqual(self.wait_texts(customer, 1, timeout=scaled(WINDOW + 5)), [MODEL_REPLY])
        self.assertEqual(len(chat.requests()), 1)
        chat.set_reply("Got all three, thanks! We will get back to you about the disposal.")
        first = self.text(rb, customer, "It is a 1/2 hp unit.")
        self.text(rb, customer, "Kitchen sink, north side.")
        self.text(rb, customer, "Weekday mornings are best.")
        req = chat.wait_for_requests(2, timeout=scaled(10))[1]
        self.assertGreaterEqual(req.time - first, 1.5)  # the batch time, not at once
        # One turn for the three texts, and it saw all of them.
        user = "\n".join(m["content"] for m in req.messages if m["role"] == "user")
        for words in ("It is a 1/2 hp unit.", "Kitchen sink, north side.",
                      "Weekday mornings are best."):
            self.assertIn(words, user)
        self.assertIn(MODEL_REPLY, [m["content"] for m in req.messages
                                    if m["role"] == "assistant"])
        self.assertEqual(self.wait_texts(customer, 2)[1],
                         "Got all three, thanks! We will get back to you about the disposal.")
        # 4 relays + 2 answers; no third model call.
        self.mock.assert_message_count_stays(6, scaled(3.0))
        self.assertEqual(len(chat.requests()), 2)
        self.assertEqual(len(self.to(OWNER_PHONE)), 4)
        self.assertEqual(collections.Counter(self.kinds(rb, customer))["ai_turn"], 2)
        self.assertEqual(self.conversation(rb, customer)["ai_replies"], 2)


class Stop(ConversationCase):
    def test_stop_wins_over_the_ai(self):
        chat = self.chat_mock(reply=MODEL_REPLY)
        rb = self.start(chat=chat, conversations={"batch": "1s"})
        during, after = new_caller(), new_caller()
        # `during` opts out while the owner-reply window is open.
        self.text(rb, during, "Do you clean gutters too?")
        self.wait_relay(during)
        self.text(rb, during, "STOP")
        # `after` opts out once the AI has answered, then writes again.
        self.text(rb, after, "Do you fix garbage disposals?")
        self.assertEqual(self.wait_texts(after, 1, timeout=scaled(WINDOW + 5)), [MODEL_REPLY])
        self.text(rb, after, "Stop")
        self.text(rb, after, "Actually, what do you charge for a disposal?")
        # Neither hears from the AI again (no stop_reply is configured: the
        # carrier confirms), whatever the model or the offline responder said.
        self.wait_metric_at_least(rb, "ringback_messages_refused_total", 2, reason="opted_out",
                                  tenant="acme")
        time.sleep(scaled(1.0))
        self.assertEqual(self.bodies_to(during), [])
        self.assertEqual(self.bodies_to(after), [MODEL_REPLY])
        for who in (during, after):
            rows = self.outbox_to(rb, who)
            # What the gate refused is the AI's answer.
            self.assertEqual([(s, r, b) for s, r, b in rows if s == "refused"],
                             [("refused", "opted_out", MODEL_REPLY)], rows)
        # The owner still hears the customers' texts (not the STOPs).
        self.assertEqual(len(self.to(OWNER_PHONE)), 3, self.bodies_to(OWNER_PHONE))

    def wait_metric_at_least(self, rb, name, value, **labels):
        try:
            wait_until(lambda: rb.metric(name, **labels) >= value, scaled(15), interval=0.1,
                       message="%s%r >= %r" % (name, labels, value))
        except AssertionError:
            self.fail("%s%r: expected >= %r, got %r; outbox: %r" % (
                name, labels, value, rb.metric(name, **labels),
                self.query(rb, "SELECT to_number, state, reason, body FROM messages")))


# -- two processes and crashes -------------------------------------------------------------------

class TwoProcesses(ConversationCase):
    # Owner replies relative to the window's deadline (seconds): well before,
    # near it on both sides, well after.
    OFFSETS = (-scaled(0.5), -0.1, -0.03, -0.01, 0.0, 0.01, 0.03, 0.1, scaled(0.6))

    def test_owner_on_one_node_and_the_timer_on_the_other_give_one_outcome(self):
        self.require_services()
        store = self.pg_store()
        kv = redis_url_for("test_conversations")
        chat = self.chat_mock(reply=MODEL_REPLY)
        a = self.start("node-a", chat=chat, store=store, kv=kv)
        b = self.start("node-b", chat=chat, store=store, kv=kv)
        customers = [new_caller() for _ in self.OFFSETS]
        words = {c: "Can you replace a shutoff valve? Unit %d." % (i + 1)
                 for i, c in enumerate(customers)}
        # Every customer writes to node A: A holds the windows' timers.
        run_concurrently([lambda c=c: self.text(a, c, words[c]) for c in customers], workers=4)
        refs = {c: self.wait_relay(c, words[c]) for c in customers}
        deadlines = {c: self.conversation(a, c)["window_deadline"] / 1000.0 for c in customers}
        owner_words = {c: "Owner here for unit %d." % (i + 1) for i, c in enumerate(customers)}

        def reply(c, offset):
            delay = deadlines[c] + offset - time.time()
            if delay > 0:
                time.sleep(delay)
            r = b.webhooks.sms(new_message_sid(), OWNER_PHONE, BUSINESS_NUMBER,
                               "#%d %s" % (refs[c], owner_words[c]))
            return r.status
        statuses = run_concurrently([lambda c=c, o=o: reply(c, o)
                                     for c, o in zip(customers, self.OFFSETS)], workers=8)
        self.assertEqual(statuses, [200] * len(customers))
        for c in customers:
            self.wait_texts(c, 1)
        time.sleep(scaled(2.0))  # anything late (a second AI turn) would show now
        outcomes = {}
        for c, offset in zip(customers, self.OFFSETS):
            events = self.events(a, c)
            first = [e["kind"] for e in events if e["window_seq"] == 1
                     and e["kind"] in ("owner_won", "ai_won")]
            self.assertEqual(len(first), 1, "offset %+.2f: %r" % (offset, events))
            outcomes[offset] = first[0]
            asked = self.requests_about(chat, words[c])
            if first[0] == "ai_won":
                # The AI spoke once; the owner's later reply took it back.
                bodies = self.wait_texts(c, 2)
                self.assertEqual(len(asked), 1, offset)
                self.assertEqual(sorted(bodies), sorted([MODEL_REPLY, owner_words[c]]), offset)
                self.assertIn("taken_back", [e["kind"] for e in events])
            else:
                bodies = self.bodies_to(c)
                self.assertEqual(asked, [], offset)
                self.assertEqual(bodies, [owner_words[c]], offset)
                self.assertNotIn("ai_turn", [e["kind"] for e in events])
        # Well before the deadline the owner wins; well after, the AI did.
        self.assertEqual(outcomes[self.OFFSETS[0]], "owner_won", outcomes)
        self.assertEqual(outcomes[self.OFFSETS[-1]], "ai_won", outcomes)
        sys.stderr.write("outcomes by offset: %r\n" % sorted(outcomes.items()))


class Crash(ConversationCase):
    def test_kill9_during_an_open_window_the_ai_still_answers_once(self):
        chat = self.chat_mock(reply=MODEL_REPLY)
        rb = self.start(chat=chat)
        customer = new_caller()
        self.text(rb, customer, "Can you look at a running toilet?")
        self.wait_relay(customer)
        deadline = self.conversation(rb, customer)["window_deadline"] / 1000.0
        rb.kill9()
        # Back only after the deadline passed: nothing armed it but the scan
        # of due deadlines at start.
        time.sleep(max(0.0, deadline - time.time()) + 0.5)
        rb.start()
        self.assertEqual(self.wait_texts(customer, 1, timeout=scaled(10)), [MODEL_REPLY])
        self.mock.assert_message_count_stays(2, scaled(2.0))
        self.assertEqual(len(chat.requests()), 1)
        self.assertEqual(self.kinds(rb, customer),
                         ["opened", "window_opened", "ai_won", "ai_turn"])


# -- the chat-completions mock itself (no binary needed) ------------------------------------------

class ChatMockFeatures(unittest.TestCase):
    def setUp(self):
        self.chat = ChatCompletionsMock(reply="hello there", prompt_tokens=7,
                                        completion_tokens=3).start()
        self.addCleanup(self.chat.stop)

    def ask(self, content, timeout=5):
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})
        return http_request(self.chat.base_url + "/chat/completions", "POST", body.encode(),
                            {"Content-Type": "application/json",
                             "Authorization": "Bearer k"}, timeout)

    def test_answers_and_records(self):
        r = self.ask("hi")
        self.assertEqual(r.status, 200)
        obj = r.json()
        self.assertEqual(obj["object"], "chat.completion")
        self.assertEqual(obj["model"], "m")
        self.assertEqual(obj["choices"][0]["message"], {"role": "assistant",
                                                        "content": "hello there"})
        self.assertEqual(obj["usage"], {"prompt_tokens": 7, "completion_tokens": 3,
                                        "total_tokens": 10})
        req = self.chat.requests()[0]
        self.assertEqual((req.path, req.answer, req.status), ("/v1/chat/completions", "ok", 200))
        self.assertEqual(req.headers["authorization"], "Bearer k")
        self.assertEqual(req.messages, [{"role": "user", "content": "hi"}])
        self.assertEqual(http_request(self.chat.url + "/v1/models").status, 404)
        self.assertEqual(len(self.chat.requests()), 1)  # only chat completions
        self.assertEqual(self.chat.ai_config()["base_url"], self.chat.base_url)

    def test_faults_in_order_and_by_match(self):
        self.chat.inject("status", status=503)
        self.chat.inject("malformed")
        self.chat.inject("empty", match="special")
        r = self.ask("a special one")  # its own fault first
        self.assertEqual((r.status, r.json()["choices"][0]["message"]["content"]), (200, ""))
        self.assertEqual(self.ask("x").status, 503)
        r = self.ask("y")
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            json.loads(r.body)
        self.assertEqual(self.ask("z").json()["choices"][0]["message"]["content"], "hello there")
        self.assertEqual([q.answer for q in self.chat.requests()],
                         ["empty", "status 503", "malformed", "ok"])
        self.chat.inject("status", times=None, status=500)
        self.assertEqual([self.ask("w").status for _ in range(3)], [500] * 3)
        self.chat.clear_faults()
        self.assertEqual(self.ask("v").status, 200)
        with self.assertRaises(ValueError):
            self.chat.inject("nope")

    def test_slow_answers_outlast_a_short_timeout(self):
        self.chat.inject("slow", seconds=0.6)
        started = time.monotonic()
        with self.assertRaises(OSError):
            self.ask("slow one", timeout=0.2)
        self.chat.wait_for_requests(1, timeout=1)
        time.sleep(0.6)
        self.assertGreaterEqual(time.monotonic() - started, 0.6)
        self.assertEqual(self.chat.requests()[0].answer, "slow")
        self.assertEqual(self.ask("fast").status, 200)

    def test_config_rendering(self):
        text = render_config("127.0.0.1:1", "n", "sqlite:x.db", "memory", "/w", "http://x",
                             "AC" + "0" * 32, "t", ai=self.chat.ai_config(api_key="${K}"),
                             tenants=[tenant_config(conversations={"owner_reply_window": "5s"},
                                                    profile={"services": ["a", "b"]},
                                                    ai={"provider": "offline"})])
        self.assertIn('\nai: {provider: "openai", base_url: "%s", model: "m", timeout: "1s", '
                      'max_attempts: 1, api_key: "${K}"}\ntenants:\n' % self.chat.base_url, text)
        self.assertIn('    conversations: {owner_reply_window: "5s"}\n', text)
        self.assertIn('    profile: {services: ["a", "b"]}\n', text)
        self.assertIn('    ai: {provider: "offline"}\n', text)


if __name__ == "__main__":
    unittest.main()
