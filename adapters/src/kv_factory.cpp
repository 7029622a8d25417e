#include "ringback/adapters/kv/kv_factory.hpp"

#include <stdexcept>

namespace ringback::adapters {

namespace {

/// `url` with whatever sits between the scheme's `//` and the last `@`
/// after the first `:` replaced by `***`, so a password never reaches a log.
std::string mask_password(std::string_view url) {
  auto start = url.find("://");
  if (start == std::string_view::npos) {
    return std::string{url};
  }
  start += 3;
  auto end = url.find_first_of("/?#", start);
  auto authority = url.substr(start, end == std::string_view::npos
                                       ? std::string_view::npos
                                       : end - start);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return std::string{url};
  }
  auto colon = authority.find(':');
  if (colon == std::string_view::npos || colon > at) {
    return std::string{url};
  }
  std::string out{url.substr(0, start + colon + 1)};
  out += "***";
  out += url.substr(start + at);
  return out;
}

} // namespace

kv_factory::kv_factory(std::string_view url, redis_kv_options options)
  : options_(std::move(options)) {
  if (url == "memory") {
    memory_ = std::make_shared<memory_kv_state>();
    display_url_ = "memory";
    return;
  }
  if (url.substr(0, 8) != "redis://") {
    throw std::invalid_argument("unsupported kv URL '" + mask_password(url)
                                + "': expected memory or redis://host:port/db");
  }
  std::string error;
  redis_ = parse_redis_url(url, &error);
  if (!redis_) {
    throw std::invalid_argument("invalid kv URL '" + mask_password(url)
                                + "': " + error);
  }
  display_url_ = redis_->display();
}

std::unique_ptr<engine::kv> kv_factory::make_kv() const {
  if (memory_) {
    return std::make_unique<memory_kv>(memory_);
  }
  return std::make_unique<redis_kv>(*redis_, options_);
}

} // namespace ringback::adapters
