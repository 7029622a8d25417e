#include "ringback/engine/log.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace ringback;
using namespace std::chrono_literals;

/// Restores the default (one write per line, info) whatever a test did.
class Log : public ::testing::Test {
protected:
  ~Log() override {
    engine::set_log_buffering(0ms);
    engine::set_log_level(engine::log_level::info);
  }
};

TEST_F(Log, ALineIsWrittenWholeAtOnceByDefault) {
  ::testing::internal::CaptureStderr();
  engine::log_info("call", "CA1: dial result busy");
  engine::log(engine::log_level::debug, "call", "not shown at info");
  auto err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(std::regex_match(
    err,
    std::regex{
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO call: CA1: dial result busy\n)"}))
    << err;
}

TEST_F(Log, BufferedInfoLinesWaitAndAWarningWritesThemInOrder) {
  ::testing::internal::CaptureStderr();
  engine::set_log_buffering(1h); // only a warning, a flush or the size
  engine::log_info("call", "one");
  engine::log_info("call", "two");
  engine::log_warn("ingress", "three");
  engine::log_info("call", "four");
  engine::flush_log();
  engine::log_error("http", "five");
  auto err = ::testing::internal::GetCapturedStderr();
  std::regex line{
    R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR) [a-z]+: ([a-z]+)\n)"};
  std::vector<std::string> got;
  for (std::sregex_iterator i{err.begin(), err.end(), line}, end; i != end; ++i)
    got.push_back((*i)[2]);
  EXPECT_EQ(got,
            (std::vector<std::string>{"one", "two", "three", "four", "five"}))
    << err;
}

TEST_F(Log, BufferedLinesGoOutAfterTheDelayOrAtTheSizeLimit) {
  ::testing::internal::CaptureStderr();
  engine::set_log_buffering(20ms);
  engine::log_info("call", "soon");
  // The background write comes ~20 ms later; give it ample time.
  std::this_thread::sleep_for(1s);
  auto err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("INFO call: soon\n"), std::string::npos) << err;
  engine::set_log_buffering(1h); // only the size limit writes now
  ::testing::internal::CaptureStderr();
  const std::string big(1000, 'x');
  for (int i = 0; i < 40; ++i) // > 32 KiB
    engine::log_info("call", big);
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_GE(err.size(), 32u * 1024u) << "written without a flush";
  ::testing::internal::CaptureStderr();
  engine::flush_log();
  err += ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.size() % (big.size() + 37), 0u); // whole lines, 40 of them
  EXPECT_EQ(err.size() / (big.size() + 37), 40u);
}

} // namespace
