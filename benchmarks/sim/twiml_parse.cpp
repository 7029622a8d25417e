#include "twiml_parse.hpp"

#include <cstdlib>

namespace ringback::sim {

std::string xml_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    auto semi = text.find(';', i);
    if (semi == std::string_view::npos) {
      out += text[i];
      continue;
    }
    auto name = text.substr(i + 1, semi - i - 1);
    if (name == "amp") {
      out += '&';
    } else if (name == "lt") {
      out += '<';
    } else if (name == "gt") {
      out += '>';
    } else if (name == "quot") {
      out += '"';
    } else if (name == "apos") {
      out += '\'';
    } else if (!name.empty() && name[0] == '#') {
      std::string digits{name.substr(1)};
      long cp = digits.size() > 1 && (digits[0] == 'x' || digits[0] == 'X')
                  ? std::strtol(digits.c_str() + 1, nullptr, 16)
                  : std::strtol(digits.c_str(), nullptr, 10);
      if (cp > 0 && cp < 0x80) {
        out += static_cast<char>(cp);
      } else {
        out += '?';
      }
    } else {
      out.append(text.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

namespace {

/// The value of attribute `name` in a start tag's text, if present.
std::optional<std::string> attribute(std::string_view tag,
                                     std::string_view name) {
  std::size_t pos = 0;
  while ((pos = tag.find(name, pos)) != std::string_view::npos) {
    bool starts = pos > 0
                  && (tag[pos - 1] == ' ' || tag[pos - 1] == '\t'
                      || tag[pos - 1] == '\n');
    auto after = pos + name.size();
    if (starts && after + 1 < tag.size() && tag[after] == '='
        && (tag[after + 1] == '"' || tag[after + 1] == '\'')) {
      char quote = tag[after + 1];
      auto end = tag.find(quote, after + 2);
      if (end == std::string_view::npos) {
        return std::nullopt;
      }
      return xml_unescape(tag.substr(after + 2, end - after - 2));
    }
    pos = after;
  }
  return std::nullopt;
}

} // namespace

std::optional<dial_instruction> parse_dial(std::string_view twiml,
                                           std::string& why) {
  auto open = twiml.find("<Dial");
  if (open == std::string_view::npos
      || (open + 5 < twiml.size() && twiml[open + 5] != '>'
          && twiml[open + 5] != ' ')) {
    if (twiml.find("<Reject") != std::string_view::npos) {
      why = "reject";
    } else if (twiml.find("<Hangup") != std::string_view::npos) {
      why = "hangup";
    } else {
      why = "no <Dial>";
    }
    return std::nullopt;
  }
  auto tag_end = twiml.find('>', open);
  auto close = twiml.find("</Dial>", open);
  if (tag_end == std::string_view::npos || close == std::string_view::npos
      || close < tag_end) {
    why = "malformed <Dial>";
    return std::nullopt;
  }
  auto tag = twiml.substr(open, tag_end - open);
  dial_instruction d;
  if (auto t = attribute(tag, "timeout")) {
    char* end = nullptr;
    d.timeout_s = std::strtod(t->c_str(), &end);
    if (end == t->c_str() || d.timeout_s <= 0) {
      why = "malformed <Dial> timeout";
      return std::nullopt;
    }
  }
  if (auto a = attribute(tag, "action")) {
    d.action = *a;
  }
  if (auto m = attribute(tag, "method")) {
    d.method = *m;
  }
  auto inner = twiml.substr(tag_end + 1, close - tag_end - 1);
  std::size_t pos = 0;
  while ((pos = inner.find("<Number", pos)) != std::string_view::npos) {
    auto gt = inner.find('>', pos);
    auto end = inner.find("</Number>", pos);
    if (gt == std::string_view::npos || end == std::string_view::npos) {
      why = "malformed <Number>";
      return std::nullopt;
    }
    d.numbers.push_back(xml_unescape(inner.substr(gt + 1, end - gt - 1)));
    pos = end + 9;
  }
  return d;
}

} // namespace ringback::sim
