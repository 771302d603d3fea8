#pragma once
// Rate limiting for API keys, as pure code (time is an argument): the Generic Cell Rate
// Algorithm (GCRA), the algorithm of Redis-cell and of many API gateways. A limit of `limit`
// units per `period` is one "theoretical arrival time" (TAT) per key: each unit moves it forward
// by period/limit; a request fits if the TAT it would leave stays within `burst` units of now.
// Why GCRA rather than a token bucket: the same behaviour (a steady rate with a burst) in one
// number per key, which makes the shared Redis version one atomic compare-and-set, and exact
// Retry-After and reset times come for free.
//
// Token limits reserve an estimate at admission (prompt tokens + max_tokens) and settle with the
// real usage when the response ends: settle() moves the TAT by the difference (a refund when the
// estimate was too high, a debt the next requests pay when it was too low), so limits hold on
// real usage without waiting for it before admitting.

namespace tidegate::gateway::admission {

struct Limit {
  double limit = 0;  // units per period; <= 0: unlimited
  double period_s = 60;
  double burst = 0;  // units that may be taken at once; <= 0: `limit`
};

struct Verdict {
  bool allowed = true;
  double remaining = 0;      // units that could still be taken now
  double retry_after_s = 0;  // when denied: wait this long for the request to fit
  double reset_s = 0;        // time until the full burst is available again
};

// Tries to take `n` units at `now` from the limit whose state is `tat` (0 for a new key).
// On success `tat` advances; on denial it is unchanged.
Verdict take(const Limit& l, double& tat, double n, double now);

// Moves a past reservation of `reserved` units to `actual` units.
void settle(const Limit& l, double& tat, double reserved, double actual, double now);

// Read-only view of a key's state (for x-ratelimit-remaining-* headers and gauges).
Verdict peek(const Limit& l, double tat, double now);

}  // namespace tidegate::gateway::admission
