#include "histogram.hpp"

#include <algorithm>
#include <cmath>

namespace ringback::sim {

std::size_t histogram::index_of(std::uint64_t value) noexcept {
  if (value < sub_count) {
    return static_cast<std::size_t>(value);
  }
  const int msb = 63 - __builtin_clzll(value); // >= sub_bits
  const int shift = msb - (sub_bits - 1);      // value >> shift in [64, 128)
  return static_cast<std::size_t>(sub_count + (shift - 1) * half
                                  + ((value >> shift) - half));
}

std::uint64_t histogram::highest_of(std::size_t index) noexcept {
  if (index < sub_count) {
    return index;
  }
  const auto rest = index - sub_count;
  const auto shift = static_cast<int>(rest / half) + 1;
  const auto mantissa = half + rest % half;
  return ((mantissa + 1) << shift) - 1;
}

void histogram::record(std::uint64_t value) noexcept {
  ++buckets_[index_of(value)];
  if (count_ == 0 || value < min_) {
    min_ = value;
  }
  max_ = std::max(max_, value);
  ++count_;
  sum_ += value;
}

void histogram::merge(const histogram& other) noexcept {
  if (other.count_ == 0) {
    return;
  }
  for (std::size_t i = 0; i < bucket_count; ++i) {
    buckets_[i] += other.buckets_[i];
  }
  if (count_ == 0 || other.min_ < min_) {
    min_ = other.min_;
  }
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

std::uint64_t histogram::percentile(double percent) const noexcept {
  if (count_ == 0) {
    return 0;
  }
  percent = std::clamp(percent, 0.0, 100.0);
  auto wanted = static_cast<std::uint64_t>(
    std::ceil(percent / 100.0 * static_cast<double>(count_)));
  wanted = std::max<std::uint64_t>(wanted, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += buckets_[i];
    if (seen >= wanted) {
      return std::min(highest_of(i), max_);
    }
  }
  return max_;
}

void histogram::reset() noexcept {
  *this = histogram{};
}

} // namespace ringback::sim
