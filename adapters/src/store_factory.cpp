#include "ringback/adapters/store/make_store.hpp"
#include "ringback/adapters/store/memory_store.hpp"
#include "ringback/adapters/store/pg_store.hpp"
#include "ringback/adapters/store/sqlite_store.hpp"

#include <filesystem>

namespace ringback::adapters {

namespace {

bool starts_with(std::string_view x, std::string_view prefix) {
  return x.substr(0, prefix.size()) == prefix;
}

[[noreturn]] void unsupported(std::string_view url) {
  throw engine::port_error("unsupported store URL '" + redact_url(url)
                           + "': expected sqlite:PATH or postgresql://...");
}

} // namespace

std::string redact_url(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos)
    return std::string(url);
  auto authority = scheme + 3;
  auto end = url.find_first_of("/?#", authority);
  auto at = url.rfind('@', end == std::string_view::npos ? url.size() : end);
  if (at == std::string_view::npos || at < authority)
    return std::string(url);
  auto colon = url.find(':', authority);
  if (colon == std::string_view::npos || colon > at)
    return std::string(url);
  std::string result(url.substr(0, colon + 1));
  result += "***";
  result += url.substr(at);
  return result;
}

std::unique_ptr<engine::store> make_store(std::string_view url,
                                          const std::string& base_dir) {
  if (url == "memory:")
    return std::make_unique<memory_store>();
  if (url == "sqlite::memory:")
    return std::make_unique<sqlite_store>(":memory:");
  if (starts_with(url, "sqlite:")) {
    auto path = url.substr(7);
    if (starts_with(path, "//"))
      path.remove_prefix(2);
    if (path.empty())
      unsupported(url);
    std::filesystem::path p{std::string(path)};
    if (p.is_relative() && !base_dir.empty())
      p = std::filesystem::path(base_dir) / p;
    return std::make_unique<sqlite_store>(p.lexically_normal().string());
  }
  if (store_runs_concurrent_writers(url))
    return std::make_unique<pg_store>(std::string(url));
  unsupported(url);
}

bool store_runs_concurrent_writers(std::string_view url) {
  return starts_with(url, "postgresql://") || starts_with(url, "postgres://");
}

} // namespace ringback::adapters
