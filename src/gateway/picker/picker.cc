#include "gateway/picker/picker.h"

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <cmath>

namespace tidegate::gateway {

bool isSaturated(const EndpointMetrics& m, const PickConfig& c, double now) {
  return now - m.scraped_at > c.stale_after_s || m.waiting > c.queue_threshold ||
         m.kv > c.kv_threshold;
}

namespace {

// Pools rarely have more replicas than this: the picker's scratch space stays on the stack.
template <class T>
using Small = boost::container::small_vector<T, 16>;

bool ready(const Candidate& c) { return c.metrics && c.metrics->up && c.metrics->scraped_at >= 0; }

double loraScore(const EndpointMetrics& m, const std::string& model) {
  if (!m.isAdapter(model)) return 1;  // base model: every replica is equal here
  if (std::find(m.running_loras.begin(), m.running_loras.end(), model) != m.running_loras.end())
    return 1;
  if (m.max_lora < 0 || static_cast<int>(m.running_loras.size()) < m.max_lora) return 0.5;
  return 0;
}

// Min-max normalised "lower is better" score.
template <class Get>
Small<double> lowerIsBetter(const Small<const Candidate*>& cs, Get get) {
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (const auto* c : cs) {
    lo = std::min(lo, get(*c));
    hi = std::max(hi, get(*c));
  }
  Small<double> out;
  for (const auto* c : cs) out.push_back(hi > lo ? (hi - get(*c)) / (hi - lo) : 1.0);
  return out;
}

}  // namespace

Pick pick(std::span<const Candidate> candidates, const PickRequest& req, const PickConfig& cfg,
          double now, std::uint64_t random) {
  Pick out;
  const bool listed = std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& c) {
    return ready(c) && c.metrics->lists(req.model);
  });
  Small<const Candidate*> cs;
  for (const auto& c : candidates)
    if (ready(c) && !c.tried && (!listed || c.metrics->lists(req.model))) cs.push_back(&c);
  if (cs.empty()) {
    out.no_ready = true;
    return out;
  }
  Small<const Candidate*> open;
  for (const auto* c : cs)
    if (!isSaturated(*c->metrics, cfg, now)) open.push_back(c);
  if (open.empty()) {
    out.saturated = true;
    if (req.criticality == api::Criticality::kSheddable) {
      out.shed = true;
      return out;
    }
  } else {
    cs = std::move(open);
  }

  const auto& w = cfg.weights;
  const std::array<double, 5> weights = {w.queue, w.kv_cache, w.lora, w.prefix, w.inflight};
  Small<std::array<double, 5>> s(cs.size());
  auto queue = lowerIsBetter(cs, [](const Candidate& c) { return c.metrics->waiting; });
  auto inflight = lowerIsBetter(cs, [](const Candidate& c) { return double(c.inflight); });
  Small<double> total(cs.size());
  for (std::size_t i = 0; i < cs.size(); ++i) {
    s[i] = {queue[i], 1.0 - cs[i]->metrics->kv, loraScore(*cs[i]->metrics, req.model),
            cs[i]->prefix_match, inflight[i]};
    for (std::size_t k = 0; k < 5; ++k) total[i] += weights[k] * s[i][k];
  }
  const double best = *std::max_element(total.begin(), total.end());
  Small<std::size_t> ties;
  for (std::size_t i = 0; i < cs.size(); ++i)
    if (total[i] >= best - 1e-9) ties.push_back(i);
  const std::size_t chosen = ties[random % ties.size()];

  // The runner-up by total, to name the scorer that decided.
  std::size_t second = chosen;
  for (std::size_t i = 0; i < cs.size(); ++i)
    if (i != chosen && (second == chosen || total[i] > total[second])) second = i;
  if (second == chosen) {
    out.winner = "single";
  } else {
    double margin = 0;
    out.winner = "tie";
    for (std::size_t k = 0; k < 5; ++k) {
      const double d = weights[k] * (s[chosen][k] - s[second][k]);
      if (d > margin + 1e-12) {
        margin = d;
        out.winner = kScorerNames[k];
      }
    }
  }
  out.index = static_cast<int>(cs[chosen] - candidates.data());
  out.scores = s[chosen];
  out.total = total[chosen];
  return out;
}

}  // namespace tidegate::gateway
