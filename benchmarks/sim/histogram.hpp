#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

/// The load simulator (`ringback_sim`): a carrier that behaves like Twilio
/// towards ringback. See docs/benchmarks.md, "Load scenarios".
namespace ringback::sim {

/// An HDR-style log-linear histogram of non-negative integer values
/// (microseconds here). Values below 128 are exact; above, each power of
/// two is split into 64 equal buckets, so a reported percentile is at most
/// 1/64 (1.6 %) above the true value. Fixed size (about 30 KiB), no
/// allocation, O(1) record. Not thread-safe.
class histogram {
public:
  void record(std::uint64_t value) noexcept;

  /// Adds every value of `other`.
  void merge(const histogram& other) noexcept;

  std::uint64_t count() const noexcept {
    return count_;
  }
  std::uint64_t min() const noexcept {
    return count_ == 0 ? 0 : min_;
  }
  std::uint64_t max() const noexcept {
    return max_;
  }
  double mean() const noexcept {
    return count_ == 0
             ? 0.0
             : static_cast<double>(sum_) / static_cast<double>(count_);
  }

  /// The smallest bucket bound below which `percent` % of the values lie
  /// (the highest value equivalent to the bucket, never above `max()`);
  /// 0 when empty. `percent` in [0, 100].
  std::uint64_t percentile(double percent) const noexcept;

  /// Forgets every value.
  void reset() noexcept;

private:
  static constexpr int sub_bits = 7;
  static constexpr std::uint64_t sub_count = std::uint64_t{1} << sub_bits;
  static constexpr std::uint64_t half = sub_count / 2;
  static constexpr std::size_t bucket_count = sub_count + 57 * half;

  static std::size_t index_of(std::uint64_t value) noexcept;
  static std::uint64_t highest_of(std::size_t index) noexcept;

  std::array<std::uint64_t, bucket_count> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
};

} // namespace ringback::sim
