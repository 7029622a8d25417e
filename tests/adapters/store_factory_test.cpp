#include "ringback/adapters/store/make_store.hpp"
#include "ringback/adapters/store/memory_store.hpp"
#include "ringback/adapters/store/pg_store.hpp"
#include "ringback/adapters/store/sqlite_store.hpp"

#include <gtest/gtest.h>

#include "store_conformance.hpp"

namespace ringback::adapters {
namespace {

using store_conformance::error_of;
using store_conformance::make_call;
using store_conformance::ScratchDir;

template <class T>
bool is(const std::unique_ptr<engine::store>& s) {
  return dynamic_cast<T*>(s.get()) != nullptr;
}

TEST(StoreFactory, memory_url_gives_the_fake) {
  auto s = make_store("memory:", "/nonexistent");
  EXPECT_TRUE(is<memory_store>(s));
  s->migrate();
  EXPECT_TRUE(s->insert_call(make_call("CA1")));
}

TEST(StoreFactory, sqlite_memory_url_gives_a_private_sqlite_database) {
  auto s = make_store("sqlite::memory:", "/nonexistent");
  EXPECT_TRUE(is<sqlite_store>(s));
  s->migrate();
  EXPECT_TRUE(s->insert_call(make_call("CA1")));
}

TEST(StoreFactory, a_relative_sqlite_path_is_resolved_against_base_dir) {
  ScratchDir dir;
  std::filesystem::create_directory(dir.path() / "data");
  auto s = make_store("sqlite:data/ringback.db", dir.path().string());
  EXPECT_TRUE(is<sqlite_store>(s));
  s->migrate();
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "data" / "ringback.db"));
}

TEST(StoreFactory, an_absolute_sqlite_path_is_kept) {
  ScratchDir dir;
  auto file = (dir.path() / "abs.db").string();
  make_store("sqlite:" + file, "/elsewhere")->migrate();
  EXPECT_TRUE(std::filesystem::exists(file));
  auto other = (dir.path() / "abs2.db").string();
  make_store("sqlite://" + other, "/elsewhere")->migrate();
  EXPECT_TRUE(std::filesystem::exists(other));
}

TEST(StoreFactory, a_sqlite_path_in_a_missing_directory_fails_clearly) {
  ScratchDir dir;
  auto what
    = error_of([&] { make_store("sqlite:nope/x.db", dir.path().string()); });
  EXPECT_EQ(what, "sqlite open: cannot open '"
                    + (dir.path() / "nope/x.db").string() + "': directory '"
                    + (dir.path() / "nope").string() + "' does not exist");
}

TEST(StoreFactory, postgresql_urls_give_a_lazy_pg_store) {
  // Construction does not connect: nothing listens on port 1.
  auto a = make_store("postgresql://ringback:pw@127.0.0.1:1/db", "");
  EXPECT_TRUE(is<pg_store>(a));
  auto b = make_store("postgres://ringback@127.0.0.1:1/db", "");
  EXPECT_TRUE(is<pg_store>(b));
  EXPECT_FALSE(b->ping());
}

TEST(StoreFactory, other_urls_are_rejected_with_a_clear_message) {
  auto expected = [](const std::string& shown) {
    return "unsupported store URL '" + shown
           + "': expected sqlite:PATH or postgresql://...";
  };
  EXPECT_EQ(error_of([] { make_store("mysql://u:secret@db:3306/x", "."); }),
            expected("mysql://u:***@db:3306/x"));
  EXPECT_EQ(error_of([] { make_store("", "."); }), expected(""));
  EXPECT_EQ(error_of([] { make_store("sqlite:", "."); }), expected("sqlite:"));
  EXPECT_EQ(error_of([] { make_store("ringback.db", "."); }),
            expected("ringback.db"));
  EXPECT_EQ(error_of([] { make_store("SQLITE:x.db", "."); }),
            expected("SQLITE:x.db"));
  EXPECT_EQ(error_of([] { make_store("memory:x", "."); }),
            expected("memory:x"));
}

TEST(StoreFactory, redact_url_hides_only_the_password) {
  EXPECT_EQ(redact_url(
              "postgresql://ringback:s3cr%40t@db:5432/x?sslmode=require"),
            "postgresql://ringback:***@db:5432/x?sslmode=require");
  EXPECT_EQ(redact_url("postgresql://ringback@db/x"),
            "postgresql://ringback@db/x");
  EXPECT_EQ(redact_url("postgresql://db:5432/x"), "postgresql://db:5432/x");
  EXPECT_EQ(redact_url("postgresql://db/x?user=a@b"),
            "postgresql://db/x?user=a@b");
  EXPECT_EQ(redact_url("sqlite:/a:b@c"), "sqlite:/a:b@c");
}

} // namespace
} // namespace ringback::adapters
