#include "ringback/adapters/store/migrations.hpp"

#include <gtest/gtest.h>

namespace ringback::adapters {
namespace {

TEST(StoreMigrations, versions_count_up_from_one_in_both_dialects) {
  const auto& lite = sqlite_migrations();
  const auto& pg = pg_migrations();
  ASSERT_FALSE(lite.empty());
  ASSERT_EQ(lite.size(), pg.size());
  for (std::size_t i = 0; i < lite.size(); ++i) {
    EXPECT_EQ(lite[i].version, static_cast<int>(i) + 1);
    EXPECT_EQ(pg[i].version, lite[i].version);
    EXPECT_EQ(pg[i].description, lite[i].description);
    EXPECT_FALSE(lite[i].sql.empty());
    EXPECT_FALSE(pg[i].sql.empty());
  }
  EXPECT_EQ(latest_schema_version(), lite.back().version);
}

TEST(StoreMigrations, both_dialects_create_the_same_tables) {
  auto tables = [](const std::vector<migration>& ms) {
    std::vector<std::string> names;
    for (const auto& m : ms) {
      std::string::size_type pos = 0;
      const std::string key = "CREATE TABLE ";
      while ((pos = m.sql.find(key, pos)) != std::string::npos) {
        pos += key.size();
        names.push_back(
          m.sql.substr(pos, m.sql.find_first_of(" (", pos) - pos));
      }
    }
    return names;
  };
  EXPECT_EQ(tables(sqlite_migrations()),
            (std::vector<std::string>{"tenants", "tenant_numbers", "calls",
                                      "webhooks", "messages",
                                      "inbound_messages", "contacts"}));
  EXPECT_EQ(tables(pg_migrations()), tables(sqlite_migrations()));
}

} // namespace
} // namespace ringback::adapters
