#include "ringback/adapters/store/detail.hpp"

namespace ringback::adapters::store_detail {

void fail(std::string_view backend, std::string_view op,
          std::string_view detail) {
  std::string msg;
  msg.reserve(backend.size() + op.size() + detail.size() + 3);
  msg.append(backend).append(" ").append(op).append(": ").append(detail);
  throw engine::port_error(msg);
}

engine::epoch_ms now_ms() {
  return engine::system_clock{}.now();
}

} // namespace ringback::adapters::store_detail
