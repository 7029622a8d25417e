#include "ringback/adapters/ai/openai_responder.hpp"
#include "ringback/adapters/integration/http_fetcher.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace ringback::adapters::ai {

namespace json = boost::json;

namespace {

constexpr std::string_view error_prefix = "chat completions: ";

/// Bytes of an error body quoted in `ai_reply::error`.
constexpr std::size_t quoted_body_bytes = 200;

/// Bytes of the owner's free-text notes sent to the model.
constexpr std::size_t max_notes_bytes = 2000;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
         || c == '\f';
}

/// `s` on one line: control characters become spaces, runs collapse, ends
/// are trimmed; at most `limit` bytes, never splitting a UTF-8 sequence.
std::string
one_line(std::string_view s,
         std::size_t limit = std::numeric_limits<std::size_t>::max()) {
  std::string out;
  bool space = false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) {
      out.push_back(' ');
      space = false;
    }
    out.push_back(c);
  }
  if (out.size() > limit) {
    auto cut = limit;
    for (int k = 0; k < 3 && cut > 0
                    && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80;
         ++k) {
      --cut;
    }
    out.resize(cut);
    while (!out.empty() && out.back() == ' ') {
      out.pop_back();
    }
  }
  return out;
}

/// Hides the API key wherever it shows up (an echoing proxy, a server that
/// quotes the header back). Keys shorter than 6 bytes are not real keys and
/// would mangle the message.
std::string scrub(std::string text, const std::string& key) {
  if (key.size() < 6) {
    return text;
  }
  for (auto pos = text.find(key); pos != std::string::npos;
       pos = text.find(key, pos + 3)) {
    text.replace(pos, key.size(), "***");
  }
  return text;
}

std::int32_t token_count(const json::object& usage, std::string_view key) {
  const auto* v = usage.if_contains(key);
  if (v == nullptr) {
    return 0;
  }
  double x = 0;
  if (const auto* i = v->if_int64()) {
    x = static_cast<double>(*i);
  } else if (const auto* u = v->if_uint64()) {
    x = static_cast<double>(*u);
  } else if (const auto* d = v->if_double()) {
    x = *d;
  } else {
    return 0;
  }
  if (!(x > 0)) {
    return 0;
  }
  return static_cast<std::int32_t>(
    std::min(x, static_cast<double>(std::numeric_limits<std::int32_t>::max())));
}

/// `choices[0].message.content` when it is a non-blank string.
std::optional<std::string> content_of(const json::value& root) {
  const auto* obj = root.if_object();
  if (obj == nullptr) {
    return std::nullopt;
  }
  const auto* choices = obj->if_contains("choices");
  if (choices == nullptr || !choices->is_array()
      || choices->get_array().empty()) {
    return std::nullopt;
  }
  const auto* choice = choices->get_array().front().if_object();
  if (choice == nullptr) {
    return std::nullopt;
  }
  const auto* message = choice->if_contains("message");
  if (message == nullptr || !message->is_object()) {
    return std::nullopt;
  }
  const auto* content = message->get_object().if_contains("content");
  if (content == nullptr || !content->is_string()) {
    return std::nullopt;
  }
  std::string text{content->get_string()};
  if (std::all_of(text.begin(), text.end(), is_space)) {
    return std::nullopt;
  }
  return text;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    auto x = one_line(item);
    if (x.empty()) {
      continue;
    }
    if (!out.empty()) {
      out += ", ";
    }
    out += x;
  }
  return out;
}

const char* role_of(engine::ai_turn::speaker who) {
  return who == engine::ai_turn::speaker::customer ? "user" : "assistant";
}

} // namespace

// -- the request --------------------------------------------------------------

std::string system_prompt(const engine::ai_request& req) {
  const auto& p = req.profile;
  const auto name = one_line(p.name);
  const auto link = one_line(p.booking_link);
  const auto phone = one_line(p.phone);
  std::string out;
  out += "You answer text messages (SMS) for ";
  out += name.empty() ? "a local service business" : name;
  out += " while the owner is busy. Write as the business (\"we\"), in "
         "plain, friendly English.\n";
  out += "Rules:\n";
  out += "- Keep each reply short: one to three sentences, at most "
         + std::to_string(req.max_chars)
         + " characters. No lists, no markdown, no emoji.\n";
  out += "- Never give a price, a price range or an estimate; say the owner "
         "will confirm the cost.\n";
  out += "- Never promise an arrival time, a date or how soon someone will "
         "come; say we will get back to them.\n";
  out += "- Only state facts given below; if you do not know something, say "
         "we will get back to them.\n";
  if (!link.empty()) {
    out += "- If they want to book or want someone to come out, give the "
           "booking link: "
           + link + "\n";
  } else {
    out += "- If they want to book or want someone to come out, say we will "
           "get back to them to find a time.\n";
  }
  out += "- If it sounds like an emergency (flooding, a burst pipe, a gas "
         "smell, no heat, sparks, sewage), say the owner is being paged right "
         "now";
  if (!phone.empty()) {
    out += " and that they can also call " + phone;
  }
  out += ". If they smell gas or see sparks, smoke or fire, tell them to get "
         "everyone out and call 911.\n";
  out += "- If they ask not to be texted, tell them to reply STOP.\n";
  out += "- Messages starting with \"(owner)\" were written by the owner: do "
         "not contradict them.\n";
  out += "- Do not claim to be the owner or a person.\n";
  std::string facts;
  auto fact = [&](const char* label, const std::string& value) {
    if (!value.empty()) {
      facts += "- ";
      facts += label;
      facts += ": ";
      facts += value;
      facts += "\n";
    }
  };
  fact("Name", name);
  fact("Services", join(p.services));
  fact("Hours", one_line(p.hours));
  fact("Service area", one_line(p.service_area));
  fact("Booking link", link);
  fact("Phone", phone);
  fact("Notes from the owner", one_line(p.notes, max_notes_bytes));
  if (!facts.empty()) {
    out += "The business:\n" + facts;
  } else {
    out += "Nothing else is known about the business.\n";
  }
  const auto about = engine::offline_reply(req).about;
  if (about == engine::intent::emergency) {
    out += "The customer's latest message looks like an emergency: say the "
           "owner is being paged right now.\n";
  } else if (about == engine::intent::opt_out) {
    out += "The customer seems to want no more texts: apologize and tell "
           "them to reply STOP.\n";
  }
  out.pop_back(); // the last '\n'
  return out;
}

std::string chat_completions_body(const openai_settings& settings,
                                  const engine::ai_request& req) {
  // Consecutive turns of one role are merged and the conversation starts
  // with the customer: chat templates of several local models (Mistral,
  // Gemma...) refuse anything but strict user/assistant alternation, and a
  // batch of customer texts is the normal case here.
  std::vector<std::pair<const char*, std::string>> turns;
  const auto& all = req.transcript;
  const auto first = all.size() > openai_responder::max_turns
                       ? all.size() - openai_responder::max_turns
                       : std::size_t{0};
  for (auto i = first; i < all.size(); ++i) {
    const auto& turn = all[i];
    if (std::all_of(turn.text.begin(), turn.text.end(), is_space)) {
      continue;
    }
    const char* role = role_of(turn.who);
    std::string content = turn.who == engine::ai_turn::speaker::owner
                            ? "(owner) " + turn.text
                            : turn.text;
    if (!turns.empty() && turns.back().first == role) {
      turns.back().second += "\n" + content;
    } else {
      turns.emplace_back(role, std::move(content));
    }
  }
  auto system = system_prompt(req);
  if (!turns.empty() && std::string_view{turns.front().first} == "assistant") {
    system += "\nBefore the conversation below, we texted the customer:\n"
              + turns.front().second;
    turns.erase(turns.begin());
  }
  json::array messages;
  messages.push_back(
    json::object{{"role", "system"}, {"content", std::move(system)}});
  for (auto& [role, content] : turns) {
    messages.push_back(
      json::object{{"role", role}, {"content", std::move(content)}});
  }
  json::object body;
  body["model"] = settings.model;
  body["messages"] = std::move(messages);
  body["max_tokens"] = settings.max_tokens;
  body["temperature"] = settings.temperature;
  return json::serialize(body);
}

// -- the responder ------------------------------------------------------------

openai_responder::openai_responder(openai_settings settings, std::string url,
                                   std::string host,
                                   engine::http_fetcher& fetcher)
  : settings_(std::move(settings)),
    url_(std::move(url)),
    host_(std::move(host)),
    fetcher_(fetcher),
    rng_(std::random_device{}()) {
  // Nothing to do.
}

std::string openai_responder::idempotency_key() {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 2; ++i) {
    auto x = rng_();
    for (int k = 0; k < 16; ++k) {
      out.push_back(hex[x & 0xF]);
      x >>= 4;
    }
  }
  return out;
}

engine::ai_reply openai_responder::respond(const engine::ai_request& req) {
  const auto start = std::chrono::steady_clock::now();
  auto offline = engine::offline_reply(req);
  auto finish = [&](engine::ai_reply reply) {
    reply.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
    return reply;
  };
  // Nothing to answer (no customer text in the window sent): the model
  // would only be asked to talk to itself.
  const auto& turns = req.transcript;
  const auto first = turns.size() > max_turns ? turns.size() - max_turns
                                              : std::size_t{0};
  if (std::none_of(turns.begin() + static_cast<std::ptrdiff_t>(first),
                   turns.end(), [](const engine::ai_turn& t) {
                     return t.who == engine::ai_turn::speaker::customer
                            && !std::all_of(t.text.begin(), t.text.end(),
                                            is_space);
                   })) {
    return finish(std::move(offline));
  }
  engine::outbound_http_request http;
  http.method = "POST";
  http.url = url_;
  http.headers.emplace_back("Content-Type", "application/json");
  http.headers.emplace_back("Accept", "application/json");
  if (!settings_.api_key.empty()) {
    http.headers.emplace_back("Authorization", "Bearer " + settings_.api_key);
  }
  http.headers.emplace_back("Idempotency-Key", idempotency_key());
  http.body = chat_completions_body(settings_, req);
  http.timeout = settings_.timeout;
  http.max_attempts = settings_.max_attempts;
  http.allowed_hosts = {host_};
  auto res = fetcher_.fetch(http);
  auto fail = [&](std::string why, std::int32_t prompt = 0,
                  std::int32_t completion = 0) {
    auto reply = offline;
    reply.error = scrub(std::string{error_prefix} + why, settings_.api_key);
    reply.attempts = res.attempts;
    reply.prompt_tokens = prompt;
    reply.completion_tokens = completion;
    reply.cost_usd = prompt / 1000.0 * settings_.usd_per_1k_prompt
                     + completion / 1000.0 * settings_.usd_per_1k_completion;
    return finish(std::move(reply));
  };
  if (!res.error.empty()) {
    if (res.error_kind == "timeout") {
      return fail("timed out after " + std::to_string(settings_.timeout.count())
                  + " ms");
    }
    return fail(one_line(res.error));
  }
  if (res.status < 200 || res.status >= 300) {
    auto quoted = one_line(res.body, quoted_body_bytes);
    return fail("HTTP " + std::to_string(res.status)
                + (quoted.empty() ? std::string{} : ": " + quoted));
  }
  json::error_code ec;
  auto root = json::parse(res.body, ec);
  if (ec) {
    return fail("malformed JSON in the response");
  }
  std::int32_t prompt = 0;
  std::int32_t completion = 0;
  if (const auto* obj = root.if_object()) {
    if (const auto* usage = obj->if_contains("usage");
        usage != nullptr && usage->is_object()) {
      prompt = token_count(usage->get_object(), "prompt_tokens");
      completion = token_count(usage->get_object(), "completion_tokens");
    }
  }
  auto content = content_of(root);
  std::string text;
  if (content) {
    text = engine::cap_reply(*content, req.max_chars);
  }
  if (text.empty()) {
    return fail("no content in the response", prompt, completion);
  }
  engine::ai_reply reply;
  reply.text = std::move(text);
  reply.about = offline.about;
  reply.provider = "openai";
  reply.model = settings_.model;
  reply.prompt_tokens = prompt;
  reply.completion_tokens = completion;
  reply.cost_usd = prompt / 1000.0 * settings_.usd_per_1k_prompt
                   + completion / 1000.0 * settings_.usd_per_1k_completion;
  reply.attempts = res.attempts;
  return finish(std::move(reply));
}

// -- the factory --------------------------------------------------------------

openai_responder_result make_openai_responder(openai_settings settings,
                                              engine::http_fetcher& fetcher) {
  auto fail = [](std::string what) {
    return openai_responder_result{nullptr, "openai: " + std::move(what)};
  };
  std::string base = settings.base_url;
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  if (base.empty()) {
    return fail("base_url is empty");
  }
  if (base.find_first_of("?#") != std::string::npos) {
    return fail("base_url '" + one_line(base, 200)
                + "' must not have a query or fragment");
  }
  auto parsed = integration::parse_url(base);
  if (!parsed.target) {
    return fail(std::move(parsed.error));
  }
  if (std::all_of(settings.model.begin(), settings.model.end(), is_space)) {
    return fail("model is empty");
  }
  if (std::any_of(settings.api_key.begin(), settings.api_key.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      })) {
    return fail("api_key contains a control character");
  }
  if (settings.timeout.count() <= 0) {
    return fail("timeout must be positive, got "
                + std::to_string(settings.timeout.count()) + " ms");
  }
  if (settings.max_attempts < 1 || settings.max_attempts > 10) {
    return fail("max_attempts must be between 1 and 10, got "
                + std::to_string(settings.max_attempts));
  }
  if (settings.max_tokens < 1) {
    return fail("max_tokens must be positive, got "
                + std::to_string(settings.max_tokens));
  }
  if (!(settings.temperature >= 0 && settings.temperature <= 2)) {
    return fail("temperature must be between 0 and 2");
  }
  if (!(settings.usd_per_1k_prompt >= 0)
      || !std::isfinite(settings.usd_per_1k_prompt)) {
    return fail("usd_per_1k_prompt must be a non-negative number");
  }
  if (!(settings.usd_per_1k_completion >= 0)
      || !std::isfinite(settings.usd_per_1k_completion)) {
    return fail("usd_per_1k_completion must be a non-negative number");
  }
  auto url = base + "/chat/completions";
  auto host = parsed.target->host;
  settings.base_url = std::move(base);
  return {std::unique_ptr<openai_responder>{new openai_responder{
            std::move(settings), std::move(url), std::move(host), fetcher}},
          {}};
}

} // namespace ringback::adapters::ai
