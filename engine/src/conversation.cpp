// Conversations: the owner-reply window, takeover, take-back, batching and
// closing, as pure transitions; the owner's texts in and out.

#include "ringback/engine/conversation.hpp"

#include "ringback/engine/messaging.hpp"

#include <algorithm>
#include <cctype>

namespace ringback::engine {

namespace {

using cs = conversation_state;

/// `c` with seq bumped and the time of the change.
conversation_step begin(const conversation_record& c, epoch_ms at) {
  conversation_step out;
  out.next = c;
  out.next.seq = c.seq + 1;
  out.next.updated_at = at;
  out.changed = true;
  return out;
}

void open_window(conversation_step& st, const conversation_settings& s,
                 epoch_ms at) {
  auto& n = st.next;
  n.state = cs::owner_window;
  n.window_seq += 1;
  n.window_deadline = at + s.owner_reply_window.count();
  n.outcome = window_outcome::none;
  n.turn_at = 0;
  st.fx.events.emplace_back("window_opened");
}

/// Reopens a closed conversation: a fresh count of AI replies.
void reopen(conversation_step& st, epoch_ms at) {
  auto& n = st.next;
  const bool fresh = n.last_customer_at == 0 && n.last_owner_at == 0
                     && n.last_ai_at == 0;
  st.fx.events.emplace_back(fresh ? "opened" : "reopened");
  n.opened_at = at;
  n.ai_replies = 0;
  n.window_deadline = 0;
  n.turn_at = 0;
}

void keep_open(conversation_record& n, const conversation_settings& s,
               epoch_ms at) {
  n.close_at = s.idle_close.count() > 0 ? at + s.idle_close.count() : 0;
}

bool ai_may_answer(const conversation_record& n, const conversation_settings& s) {
  return s.max_ai_replies <= 0 ? false : n.ai_replies < s.max_ai_replies;
}

/// Schedules an AI turn, or hands the conversation back to the owner when
/// the AI has said enough.
void ai_turn(conversation_step& st, const conversation_settings& s,
             epoch_ms now, bool takeover) {
  auto& n = st.next;
  if (!ai_may_answer(n, s)) {
    n.state = cs::owner_active;
    n.turn_at = 0;
    st.fx.events.emplace_back("ai_cap_reached");
    return;
  }
  n.ai_replies += 1;
  n.last_ai_at = now;
  n.turn_at = 0;
  st.fx.ai_turn = true;
  st.fx.takeover = takeover;
}

std::string trim(std::string_view x) {
  auto blank = [](char ch) {
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
  };
  while (!x.empty() && blank(x.front()))
    x.remove_prefix(1);
  while (!x.empty() && blank(x.back()))
    x.remove_suffix(1);
  return std::string{x};
}

/// Cuts `text` to `max` bytes at a word boundary (not inside a UTF-8
/// sequence), ending with "...".
std::string cut(std::string text, std::size_t max) {
  if (text.size() <= max)
    return text;
  if (max <= 3)
    return std::string(max, '.');
  auto end = max - 3;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
    --end;
  auto space = text.rfind(' ', end);
  if (space != std::string::npos && space > end / 2)
    end = space;
  text.resize(end);
  while (!text.empty() && text.back() == ' ')
    text.pop_back();
  return text + "...";
}

} // namespace

conversation_step on_customer_message(const conversation_record& c,
                                      const conversation_settings& s,
                                      epoch_ms at) {
  auto st = begin(c, at);
  auto& n = st.next;
  st.fx.relay_to_owner = true;
  if (n.state == cs::closed) {
    reopen(st, at);
    open_window(st, s, at);
  } else if (n.state == cs::owner_active) {
    open_window(st, s, at);
  } else if (n.state == cs::owner_window) {
    if (n.outcome != window_outcome::none || n.window_deadline == 0)
      open_window(st, s, at); // defensive: a decided window is not reused
  } else if (n.state == cs::ai_active) {
    if (!ai_may_answer(n, s)) {
      // The AI has said enough: the message waits for the owner (its window
      // can only be won by the owner or lapse, see `on_due`).
      st.fx.events.emplace_back("ai_cap_reached");
      open_window(st, s, at);
    } else if (n.turn_at == 0) {
      n.turn_at = at + s.batch.count();
    }
  }
  n.last_customer_at = at;
  keep_open(n, s, at);
  return st;
}

conversation_step on_owner_message(const conversation_record& c,
                                   const conversation_settings& s, epoch_ms at) {
  auto st = begin(c, at);
  auto& n = st.next;
  st.fx.send_owner_text = true;
  switch (n.state) {
    case cs::owner_window:
      if (n.outcome == window_outcome::none && n.window_deadline != 0) {
        n.outcome = window_outcome::owner;
        st.fx.events.emplace_back("owner_won");
      } else {
        st.fx.events.emplace_back("taken_back");
      }
      break;
    case cs::ai_active:
      st.fx.events.emplace_back("taken_back");
      break;
    case cs::closed:
      reopen(st, at);
      break;
    case cs::owner_active:
      break;
  }
  n.state = cs::owner_active;
  n.window_deadline = 0;
  n.turn_at = 0;
  n.last_owner_at = at;
  keep_open(n, s, at);
  return st;
}

conversation_step on_due(const conversation_record& c,
                         const conversation_settings& s, epoch_ms now) {
  auto st = begin(c, now);
  auto& n = st.next;
  bool acted = false;
  if (n.state == cs::owner_window && n.outcome == window_outcome::none
      && n.window_deadline != 0 && n.window_deadline <= now) {
    n.window_deadline = 0;
    if (ai_may_answer(n, s)) {
      n.outcome = window_outcome::ai;
      n.state = cs::ai_active;
      st.fx.events.emplace_back("ai_won");
      ai_turn(st, s, now, true);
    } else {
      // The AI has said enough: the window lapses, the owner keeps it.
      n.state = cs::owner_active;
      st.fx.events.emplace_back("ai_cap_reached");
    }
    acted = true;
  }
  if (n.state == cs::ai_active && n.turn_at != 0 && n.turn_at <= now) {
    ai_turn(st, s, now, false);
    acted = true;
  }
  if (n.state != cs::closed && n.close_at != 0 && n.close_at <= now) {
    n.state = cs::closed;
    n.close_at = 0;
    n.window_deadline = 0;
    n.turn_at = 0;
    st.fx.ai_turn = false;
    st.fx.summary_to_owner = true;
    st.fx.events.emplace_back("closed");
    acted = true;
  }
  if (!acted) {
    conversation_step none;
    none.next = c;
    return none;
  }
  return st;
}

conversation_step on_text_back(const conversation_record& c,
                               const conversation_settings& s, epoch_ms at) {
  auto st = begin(c, at);
  auto& n = st.next;
  if (n.state == cs::closed) {
    reopen(st, at);
    n.state = cs::owner_active;
    n.outcome = window_outcome::none;
  }
  keep_open(n, s, at);
  return st;
}

epoch_ms next_deadline(const conversation_record& c) {
  epoch_ms out = 0;
  auto consider = [&out](epoch_ms t) {
    if (t != 0 && (out == 0 || t < out))
      out = t;
  };
  if (c.state == cs::owner_window && c.outcome == window_outcome::none)
    consider(c.window_deadline);
  if (c.state == cs::ai_active)
    consider(c.turn_at);
  if (c.state != cs::closed)
    consider(c.close_at);
  return out;
}

owner_reply parse_owner_reply(std::string_view body) {
  owner_reply out;
  auto text = trim(body);
  std::string_view x{text};
  if (!x.empty() && x.front() == '#') {
    auto rest = x.substr(1);
    while (!rest.empty() && rest.front() == ' ')
      rest.remove_prefix(1);
    std::size_t digits = 0;
    while (digits < rest.size() && digits < 9
           && std::isdigit(static_cast<unsigned char>(rest[digits])) != 0)
      ++digits;
    if (digits > 0
        && (digits == rest.size() || rest[digits] == ' ' || rest[digits] == ':'
            || rest[digits] == ',' || rest[digits] == '\n')) {
      out.ref = std::stoi(std::string{rest.substr(0, digits)});
      rest.remove_prefix(digits);
      if (!rest.empty() && (rest.front() == ':' || rest.front() == ','))
        rest.remove_prefix(1);
      out.text = trim(rest);
      return out;
    }
  }
  out.text = std::move(text);
  return out;
}

std::string display_phone(std::string_view e164) {
  if (e164.size() == 12 && e164.substr(0, 2) == "+1"
      && std::all_of(e164.begin() + 2, e164.end(), [](char ch) {
           return std::isdigit(static_cast<unsigned char>(ch)) != 0;
         })) {
    std::string out{"+1 "};
    out.append(e164.substr(2, 3));
    out += '-';
    out.append(e164.substr(5, 3));
    out += '-';
    out.append(e164.substr(8, 4));
    return out;
  }
  return std::string{e164};
}

std::string format_relay(std::int32_t ref, std::string_view customer,
                         std::string_view body, std::size_t max_chars) {
  std::string out = "[#" + std::to_string(ref) + " " + display_phone(customer)
                    + "] " + trim(body);
  return cut(std::move(out), max_chars);
}

std::string format_summary(const conversation_record& c,
                           const std::vector<conversation_message>& transcript,
                           epoch_ms now, std::size_t max_chars) {
  int customer = 0;
  int owner = 0;
  int ai = 0;
  std::string last;
  for (const auto& m : transcript) {
    if (m.at < c.opened_at)
      continue;
    if (m.author == "customer") {
      ++customer;
      last = m.body;
    } else if (m.author == "owner") {
      ++owner;
    } else if (m.author == "ai") {
      ++ai;
    }
  }
  auto plural = [](int n, const char* what) {
    return std::to_string(n) + " " + what;
  };
  std::string out = "[#" + std::to_string(c.ref) + " "
                    + display_phone(c.customer) + "] closed after "
                    + format_duration(std::chrono::milliseconds{
                      std::max<epoch_ms>(0, now - c.opened_at)})
                    + ": " + plural(customer, "from the customer") + ", "
                    + plural(owner, "from you") + ", " + plural(ai, "from the AI")
                    + ".";
  if (!last.empty())
    out += " Last: \"" + cut(trim(last), 80) + "\"";
  return cut(std::move(out), max_chars);
}

} // namespace ringback::engine
