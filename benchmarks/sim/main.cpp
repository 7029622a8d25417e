// ringback_sim: a carrier (Twilio) simulator and load generator for
// ringback. See `ringback_sim --help` and docs/benchmarks.md.

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/http.hpp>

#include "mini_server.hpp"
#include "options.hpp"
#include "simulator.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using namespace ringback::sim;

/// The yardstick: a bare Beast server that answers every request with the
/// same TwiML <Dial>, on `threads` threads. What ringback's figures are
/// divided by.
int bare_server(int argc, char** argv) {
  bare_options o;
  bool help = false;
  if (auto err = parse(argc, argv, o, help)) {
    std::fprintf(stderr, "ringback_sim bare-server: %s\n", err->c_str());
    return 2;
  }
  if (help) {
    std::fputs(usage(), stdout);
    return 0;
  }
  const std::string body
    = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial "
      "timeout=\"20\" "
      "action=\""
      + o.public_url
      + "/webhooks/twilio/voice/dial-result\" method=\"POST\"><Number>"
      + o.owner + "</Number></Dial></Response>";
  asio::io_context io{o.threads};
  mini_server server{io, [&body](const server_request&, server_response& res,
                                 std::chrono::milliseconds&) {
                       res.set(http::field::content_type,
                               "text/xml; charset=utf-8");
                       res.body() = body;
                     }};
  auto hp = split_host_port(o.listen);
  if (auto err = server.start(hp->first, hp->second)) {
    std::fprintf(stderr, "ringback_sim bare-server: %s\n", err->c_str());
    return 2;
  }
  asio::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
  std::fprintf(stderr,
               "ringback_sim bare-server: listening on %s:%u, %d threads\n",
               hp->first.c_str(), server.port(), o.threads);
  std::vector<std::thread> threads;
  for (int i = 1; i < o.threads; ++i) {
    threads.emplace_back([&io] { io.run(); });
  }
  io.run();
  for (auto& t : threads) {
    t.join();
  }
  std::fprintf(stderr, "ringback_sim bare-server: %llu requests\n",
               static_cast<unsigned long long>(server.requests()));
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "bare-server") == 0) {
    return bare_server(argc - 2, argv + 2);
  }
  options o;
  bool help = false;
  if (auto err = parse(argc - 1, argv + 1, o, help)) {
    std::fprintf(stderr, "ringback_sim: %s\n", err->c_str());
    return 2;
  }
  if (help) {
    std::fputs(usage(), stdout);
    return 0;
  }
  simulator sim{std::move(o)};
  return sim.run();
}
