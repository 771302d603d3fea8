#include "gateway/admission/limiter.h"

#include <algorithm>
#include <cmath>

namespace tidegate::gateway::admission {
namespace {
double burstOf(const Limit& l) { return l.burst > 0 ? l.burst : l.limit; }
double interval(const Limit& l) { return l.period_s / l.limit; }  // time per unit
}  // namespace

Verdict peek(const Limit& l, double tat, double now) {
  Verdict v;
  if (l.limit <= 0) {
    v.remaining = HUGE_VAL;
    return v;
  }
  const double t = interval(l);
  const double window = burstOf(l) * t;  // how far ahead of now the TAT may run
  const double ahead = std::max(tat, now) - now;
  v.remaining = std::max(0.0, std::floor((window - ahead) / t + 1e-9));
  v.reset_s = ahead;
  return v;
}

Verdict take(const Limit& l, double& tat, double n, double now) {
  if (l.limit <= 0) return peek(l, tat, now);
  const double t = interval(l);
  const double window = burstOf(l) * t;
  const double next = std::max(tat, now) + n * t;
  Verdict v;
  if (next - now > window + 1e-9) {
    v = peek(l, tat, now);
    v.allowed = false;
    v.retry_after_s = next - now - window;
    return v;
  }
  tat = next;
  v = peek(l, tat, now);
  v.allowed = true;
  return v;
}

void settle(const Limit& l, double& tat, double reserved, double actual, double now) {
  if (l.limit <= 0) return;
  // A refund never moves the TAT into the past: unused capacity does not accumulate.
  tat = std::max(now, tat + (actual - reserved) * interval(l));
}

}  // namespace tidegate::gateway::admission
