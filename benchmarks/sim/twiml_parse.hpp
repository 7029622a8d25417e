#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::sim {

/// The `<Dial>` of a TwiML answer, as a carrier reads it.
struct dial_instruction {
  double timeout_s = 30; // Twilio's default
  std::string action;    // absolute or relative URL, unescaped; may be empty
  std::string method = "POST";
  std::vector<std::string> numbers;
};

/// The first `<Dial>` in `twiml`, or nullopt (then `why` says what was
/// there instead: "reject", "hangup", "no <Dial>", "malformed <Dial>").
std::optional<dial_instruction> parse_dial(std::string_view twiml,
                                           std::string& why);

/// XML entity decoding (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;).
std::string xml_unescape(std::string_view text);

} // namespace ringback::sim
