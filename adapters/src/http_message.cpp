#include "ringback/adapters/http/http_message.hpp"

#include <utility>

namespace ringback::adapters {

namespace {

char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::optional<std::string_view> find_header(const std::vector<http_header>& xs,
                                            std::string_view name) {
  for (const auto& x : xs) {
    if (iequals(x.name, name)) {
      return std::string_view{x.value};
    }
  }
  return std::nullopt;
}

} // namespace

bool iequals(std::string_view x, std::string_view y) noexcept {
  if (x.size() != y.size()) {
    return false;
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (ascii_lower(x[i]) != ascii_lower(y[i])) {
      return false;
    }
  }
  return true;
}

void http_request::set_target(std::string raw) {
  target = std::move(raw);
  auto q = target.find('?');
  if (q == std::string::npos) {
    path = target;
    query.clear();
  } else {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
}

std::optional<std::string_view>
http_request::header(std::string_view name) const {
  return find_header(headers, name);
}

http_response http_response::text(int status, std::string body) {
  http_response result;
  result.status = status;
  result.body = std::move(body);
  return result;
}

std::optional<std::string_view>
http_response::header(std::string_view name) const {
  return find_header(headers, name);
}

} // namespace ringback::adapters
