#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ringback::sim {

using sim_clock = std::chrono::steady_clock;

/// Why a request got no HTTP answer.
enum class transport_error : std::uint8_t {
  none,
  connect,       // refused, unreachable
  timeout,       // no answer within the timeout (from the scheduled time)
  queue_timeout, // waited for a free connection past the timeout
  io,            // reset, EOF or a parse error mid-exchange
};

const char* to_string(transport_error x);

/// What came back.
struct http_result {
  int status = 0; // 0 when there was no HTTP answer
  transport_error error = transport_error::none;
  std::string body;
  sim_clock::time_point sent_at; // when the write began
  sim_clock::time_point done_at;
};

/// One POST to send.
struct http_job {
  std::string target; // path + query
  std::string body;   // form-encoded
  std::string signature;
  sim_clock::time_point scheduled;
  std::function<void(http_result&&)> done;
};

/// A pool of keep-alive HTTP/1.1 connections to one server, on one
/// single-threaded io_context. Requests are answered in submission order per
/// connection; beyond `max_connections` they wait in a FIFO (the wait counts
/// toward their latency). A connection idle for 15 s is replaced rather than
/// reused, so the server's idle timeout never kills a request.
class client_pool {
public:
  client_pool(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint to,
              std::string host_header, std::size_t max_connections,
              std::chrono::milliseconds timeout);
  ~client_pool();

  void submit(http_job job);

  std::size_t open() const noexcept {
    return open_;
  }
  std::size_t queued() const noexcept {
    return waiting_.size();
  }
  std::size_t in_flight() const noexcept {
    return in_flight_;
  }
  std::uint64_t connects() const noexcept {
    return connects_;
  }
  std::size_t peak_open() const noexcept {
    return peak_open_;
  }

  /// Closes idle connections (at the end of a run).
  void close_idle();

  struct connection;

private:
  friend struct connection;
  void run(const std::shared_ptr<connection>& c, http_job job);
  void finished(std::shared_ptr<connection> c, bool reusable);
  std::shared_ptr<connection> make();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::endpoint to_;
  std::string host_;
  std::size_t max_;
  std::chrono::milliseconds timeout_;
  std::vector<std::shared_ptr<connection>> idle_;
  std::deque<http_job> waiting_;
  std::size_t open_ = 0;
  std::size_t peak_open_ = 0;
  std::size_t in_flight_ = 0;
  std::uint64_t connects_ = 0;
};

} // namespace ringback::sim
