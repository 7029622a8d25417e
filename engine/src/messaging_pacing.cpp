// Pacing: GCRA in C++ and as a Redis Lua script with the same semantics.

#include "ringback/engine/messaging.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ringback::engine {

namespace {

constexpr epoch_ms max_interval_ms = 365LL * 24 * 3'600'000;
constexpr int max_burst = 1'000'000;
constexpr epoch_ms invalid_rate_retry_ms = 1'000;

// Saturating: a stored time written by a wildly wrong clock must not
// overflow (max_interval_ms * max_burst fits easily in 63 bits).
epoch_ms add_sat(epoch_ms a, epoch_ms b) {
  if (b > 0 && a > std::numeric_limits<epoch_ms>::max() - b) {
    return std::numeric_limits<epoch_ms>::max();
  }
  if (b < 0 && a < std::numeric_limits<epoch_ms>::min() - b) {
    return std::numeric_limits<epoch_ms>::min();
  }
  return a + b;
}

} // namespace

pace default_pace(number_kind kind) {
  switch (kind) {
    case number_kind::long_code:
      return {1.0, 1};
    case number_kind::toll_free:
      return {3.0, 1};
    case number_kind::short_code:
      return {100.0, 1};
  }
  return {1.0, 1};
}

epoch_ms emission_interval_ms(double rate_per_s) {
  if (!std::isfinite(rate_per_s) || rate_per_s <= 0) {
    return 0;
  }
  // The epsilon keeps an exact quotient (1000 / 0.1) from rounding up to one
  // more millisecond through floating-point noise; the Lua script does the
  // same operations on the same doubles.
  double t = std::ceil(1000.0 / rate_per_s - 1e-6);
  if (!(t >= 1)) {
    return 1;
  }
  if (t > static_cast<double>(max_interval_ms)) {
    return max_interval_ms;
  }
  return static_cast<epoch_ms>(t);
}

gcra_result gcra(epoch_ms tat, epoch_ms now, double rate_per_s, int burst) {
  auto t = emission_interval_ms(rate_per_s);
  if (t == 0) {
    return {false, invalid_rate_retry_ms, tat};
  }
  epoch_ms b = std::clamp(burst, 1, max_burst);
  auto new_tat = add_sat(std::max(tat, now), t);
  auto allow_at = add_sat(new_tat, -b * t);
  if (now < allow_at) {
    return {false, add_sat(allow_at, -now), tat};
  }
  return {true, 0, new_tat};
}

paced_result gcra_pair(epoch_ms number_tat, epoch_ms tenant_tat, epoch_ms now,
                       const pace& number, const std::optional<pace>& tenant) {
  auto n = gcra(number_tat, now, number.rate_per_s, number.burst);
  gcra_result t{true, 0, tenant_tat};
  if (tenant) {
    t = gcra(tenant_tat, now, tenant->rate_per_s, tenant->burst);
  }
  if (n.allowed && t.allowed) {
    return {true, 0, n.tat, t.tat};
  }
  return {false, std::max(n.retry_after_ms, t.retry_after_ms), number_tat,
          tenant_tat};
}

std::string pace_key_for_number(std::string_view tenant_id,
                                std::string_view number) {
  std::string key = "ringback:pace:{";
  key += tenant_id;
  key += "}:number:";
  key += number;
  return key;
}

std::string pace_key_for_tenant(std::string_view tenant_id) {
  std::string key = "ringback:pace:{";
  key += tenant_id;
  key += "}:tenant";
  return key;
}

// Lua 5.1 (Redis): numbers are doubles, exact for integers up to 2^53, which
// epoch milliseconds are far below. What both scripts share: the limits, the
// emission interval of a rate and the burst, as `gcra` computes them.
namespace {

const char* const gcra_lua_prelude = R"lua(
local max_interval = 31536000000
local max_burst = 1000000
local function interval(rate)
  if rate == nil or rate ~= rate or rate <= 0 or rate == math.huge then
    return 0
  end
  local t = math.ceil(1000 / rate - 1e-6)
  if not (t >= 1) then return 1 end
  if t > max_interval then return max_interval end
  return t
end
local function clamp_burst(burst)
  if burst == nil or burst ~= burst then burst = 1 end
  burst = math.floor(burst)
  if burst < 1 then burst = 1 end
  if burst > max_burst then burst = max_burst end
  return burst
end
)lua";

} // namespace

// Each step mirrors `gcra` line by line.
const std::string gcra_lua_script = std::string{gcra_lua_prelude} + R"lua(local function step(key, now, rate, burst)
  local t = interval(rate)
  if t == 0 then return false, 1000, nil end
  burst = clamp_burst(burst)
  local tat = tonumber(redis.call('GET', key)) or 0
  local new_tat = math.max(tat, now) + t
  local allow_at = new_tat - burst * t
  if now < allow_at then return false, allow_at - now, nil end
  return true, 0, new_tat
end
local now = tonumber(ARGV[1])
if now == nil or now ~= now then
  return redis.error_reply('gcra: ARGV[1] (now, epoch ms) is not a number')
end
now = math.floor(now)
local ok1, wait1, tat1 = step(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]))
local ok2, wait2, tat2 = true, 0, nil
if #KEYS >= 2 then
  ok2, wait2, tat2 = step(KEYS[2], now, tonumber(ARGV[4]), tonumber(ARGV[5]))
end
if ok1 and ok2 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat1), 'PX',
             string.format('%.0f', tat1 - now + 1000))
  if tat2 then
    redis.call('SET', KEYS[2], string.format('%.0f', tat2), 'PX',
               string.format('%.0f', tat2 - now + 1000))
  end
  return {1, 0}
end
return {0, math.max(wait1, wait2)}
)lua";

// `kv::pace_slots` in one script: the decisions of
// `pace_slots_by_asking` over `gcra_pair`, step by step
// (`decide` mirrors `gcra` and the `step` of `gcra_lua_script`).
// KEYS[1]: the number's key, optionally KEYS[2]: the tenant's. ARGV[1]: now,
// ARGV[2]: count, ARGV[3]: horizon (ms), ARGV[4], ARGV[5]: the number's rate
// and burst, ARGV[6], ARGV[7]: the tenant's. Returns {granted, retry after
// (ms, when none), start 1, start 2, ...}.
const std::string gcra_slots_lua_script = std::string{gcra_lua_prelude} + R"lua(local function decide(tat, at, rate, burst)
  local t = interval(rate)
  if t == 0 then return false, 1000, tat end
  burst = clamp_burst(burst)
  local new_tat = math.max(tat, at) + t
  local allow_at = new_tat - burst * t
  if at < allow_at then return false, allow_at - at, tat end
  return true, 0, new_tat
end
local now = tonumber(ARGV[1])
if now == nil or now ~= now then
  return redis.error_reply('gcra: ARGV[1] (now, epoch ms) is not a number')
end
now = math.floor(now)
local count = math.floor(tonumber(ARGV[2]) or 0)
local horizon = math.floor(tonumber(ARGV[3]) or 0)
if horizon < 0 then horizon = 0 end
local two = #KEYS >= 2
local tat1 = tonumber(redis.call('GET', KEYS[1])) or 0
local tat2 = 0
if two then tat2 = tonumber(redis.call('GET', KEYS[2])) or 0 end
local rate1, burst1 = tonumber(ARGV[4]), tonumber(ARGV[5])
local rate2, burst2 = tonumber(ARGV[6]), tonumber(ARGV[7])
local starts = {}
local at = now
local retry = 0
while #starts < count do
  local ok1, wait1, next1 = decide(tat1, at, rate1, burst1)
  local ok2, wait2, next2 = true, 0, tat2
  if two then ok2, wait2, next2 = decide(tat2, at, rate2, burst2) end
  if ok1 and ok2 then
    tat1 = next1
    tat2 = next2
    starts[#starts + 1] = at
  else
    local wait = math.max(wait1, wait2)
    if wait < 1 then wait = 1 end
    local later = at + wait
    if later - now > horizon or wait > max_interval then
      if #starts == 0 then retry = math.max(1, later - now) end
      break
    end
    at = later
  end
end
if #starts > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat1), 'PX',
             string.format('%.0f', tat1 - now + 1000))
  if two then
    redis.call('SET', KEYS[2], string.format('%.0f', tat2), 'PX',
               string.format('%.0f', tat2 - now + 1000))
  end
end
local out = {#starts, retry}
for i = 1, #starts do out[#out + 1] = starts[i] end
return out
)lua";

} // namespace ringback::engine
