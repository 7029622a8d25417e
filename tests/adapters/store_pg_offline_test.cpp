#include "ringback/adapters/store/pg_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <gtest/gtest.h>

#include "store_conformance.hpp"

// pg_store without a server: connection failures and option handling. The
// behaviour against a real PostgreSQL is in
// tests/integration/store_pg_test.cpp.

namespace ringback::adapters {
namespace {

using store_conformance::error_of;
using store_conformance::make_call;

/// A local port nothing listens on (bound, then released).
unsigned short closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor{
    io, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  return acceptor.local_endpoint().port();
}

std::string dead_url() {
  return "postgresql://ringback@127.0.0.1:" + std::to_string(closed_port())
         + "/store_dev";
}

bool starts_with(const std::string& x, const std::string& prefix) {
  return x.rfind(prefix, 0) == 0;
}

TEST(PgStoreOffline, no_server_means_port_errors_and_a_false_ping) {
  pg_store s{dead_url()};
  EXPECT_FALSE(s.ping());
  auto what = error_of([&] { s.begin(); });
  EXPECT_TRUE(starts_with(what, "postgresql begin: cannot connect: ")) << what;
  EXPECT_NE(what.find("refused"), std::string::npos) << what;
  what = error_of([&] { s.migrate(); });
  EXPECT_TRUE(starts_with(what, "postgresql migrate: cannot connect: "))
    << what;
  what = error_of([&] { s.insert_call(make_call("CA1")); });
  EXPECT_TRUE(starts_with(what, "postgresql insert_call: cannot connect: "))
    << what;
  s.rollback(); // nothing open: no-op
  EXPECT_EQ(error_of([&] { s.commit(); }),
            "postgresql commit: no transaction is open");
  EXPECT_FALSE(s.ping()); // still no server, still no exception
}

TEST(PgStoreOffline, the_connection_string_carries_the_session_settings) {
  pg_store_options o;
  o.url = "postgresql://ringback@db:5432/x";
  o.schema = "rb_test_1";
  o.application_name = "ringback worker";
  o.connect_timeout = std::chrono::seconds{3};
  o.lock_timeout = std::chrono::milliseconds{250};
  EXPECT_EQ(pg_store{o}.connection_string(),
            "postgresql://ringback@db:5432/x?connect_timeout=3"
            "&application_name=ringback%20worker"
            "&options=-c%20lock_timeout%3D250%20-c%20client_min_messages%3D"
            "warning%20-c%20search_path%3Drb_test_1");
  o.url = "postgresql://db/x?sslmode=disable&connect_timeout=9";
  o.schema.clear();
  EXPECT_EQ(pg_store{o}.connection_string(),
            "postgresql://db/x?sslmode=disable&connect_timeout=9"
            "&application_name=ringback%20worker"
            "&options=-c%20lock_timeout%3D250%20-c%20client_min_messages%3D"
            "warning");
  o.url = "host=db dbname=x";
  EXPECT_EQ(pg_store{o}.connection_string(),
            "host=db dbname=x connect_timeout='3' "
            "application_name='ringback worker' "
            "options='-c lock_timeout=250 -c client_min_messages=warning'");
}

TEST(PgStoreOffline, bad_options_are_rejected_at_construction) {
  pg_store_options o;
  o.url = "postgresql://db/x";
  o.schema = "bad-name";
  EXPECT_EQ(error_of([&] { pg_store s{o}; }),
            "postgresql open: invalid schema name 'bad-name' (letters, digits "
            "and _ only, at most 63)");
  o.schema.clear();
  o.url = "postgresql://db/x?options=-cfoo%3Dbar";
  EXPECT_EQ(error_of([&] { pg_store s{o}; }),
            "postgresql open: the URL must not set 'options' (pg_store sets "
            "lock_timeout, client_min_messages and search_path there)");
}

} // namespace
} // namespace ringback::adapters
