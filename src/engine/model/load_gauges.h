#pragma once
// The names of the load gauges an engine exposes (vLLM's, and the seed's DCGM utilisation), in
// one place: `tidegate engine` serves them on /metrics, `tidegate simulate`'s scrapes fill them,
// and the simulation accepts exactly these as autoscaling metrics.

#include <array>
#include <string_view>

namespace tidegate::engine {

inline constexpr std::string_view kRunningGauge = "vllm:num_requests_running";
inline constexpr std::string_view kWaitingGauge = "vllm:num_requests_waiting";
inline constexpr std::string_view kKvUsageGauge = "vllm:kv_cache_usage_perc";
inline constexpr std::string_view kGpuCacheUsageGauge = "vllm:gpu_cache_usage_perc";  // older name
inline constexpr std::string_view kSmUtilGauge = "DCGM_CUSTOM_PROCESS_SM_UTIL";

inline constexpr std::array<std::string_view, 5> kLoadGauges = {
    kRunningGauge, kWaitingGauge, kKvUsageGauge, kGpuCacheUsageGauge, kSmUtilGauge};

}  // namespace tidegate::engine
