#pragma once
// What a reload may and may not do: a reload is a transaction, validated whole (this review,
// after the loader's own validation) and then applied whole, or not at all.
//
// Refused unless the new file says so explicitly:
// - changing the authentication mode (spec.auth.apiKeys) — the new file must state the mode;
//   an implied mode cannot change, so a file cut short cannot switch authentication off;
// - dropping more than half of the file's API keys or of its usage plans — the new file must
//   set spec.auth.allowKeyRemoval: true;
// and refused outright: removing spec.tls.clientCAFile (mutual TLS off takes a restart).
// Settings that only apply at start-up (addresses, workers, ledger, limiter backend, TLS on or
// off — its certificates do reload) are applied at the next restart; the review names each one
// so the log and /admin/state can say so.
// Pure: no I/O, no clock.

#include <string>
#include <vector>

#include "api/resources.h"

namespace tidegate::api {

struct RestartSetting {
  std::string field;       // e.g. "spec.listen"
  std::string running;     // the value in effect
  std::string configured;  // the value the file now has
};

struct ReloadReview {
  std::vector<std::string> refusals;           // empty: the reload may be applied
  std::vector<RestartSetting> restart_needed;  // changed settings that wait for a restart
  std::string changes;                         // e.g. "keys 3 -> 2, plans 2, routes 1"
  bool allowed() const { return refusals.empty(); }
};

// `started`: the configuration the process started with (start-up-only settings are compared to
// it); `running`: the one in effect now; `next`: the candidate.
ReloadReview reviewReload(const Config& started, const Config& running, const Config& next);

// Start-up-only settings of `next` that differ from `started`.
std::vector<RestartSetting> restartSettings(const Config& started, const Config& next);

}  // namespace tidegate::api
