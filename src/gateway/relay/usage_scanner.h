#pragma once
// What the relay needs from an upstream response, found without a DOM: the token usage an
// engine reports (in a non-streamed body, or in stream events when asked for with
// stream_options), whether a stream event carries a token, and the byte range of its `usage`
// member so the relay can give a client exactly the stream it asked for. Pure; any thread.
//
// The gateway always asks engines for usage (include_usage, and vLLM's continuous_usage_stats
// for per-chunk counts, so a stream the client drops midway is still accounted), then gives
// each client what it asked for — see UsageEdit below.

#include <string>
#include <string_view>

#include "gateway/body.h"

namespace tidegate::gateway::relay {

struct Usage {
  long prompt = -1, completion = -1;  // -1: not reported
};

// One JSON object: a stream event's data or a whole response body.
struct ObjectScan {
  bool object = false;         // well-formed JSON whose top level is an object
  bool error = false;          // a top-level "error" member (an engine's error event)
  bool choices_empty = false;  // "choices": [] (a usage-only final chunk)
  bool role_only = false;      // choices[0].delta announces a role with no content
  bool usage_object = false;   // "usage" is an object; `usage` holds its counts
  Usage usage;
  Span usage_member;  // `"usage": value` plus one adjacent comma; empty if no usage member
  Span usage_value;
};
ObjectScan scanObject(std::string_view json);

// What the client asked for in stream_options.
struct ClientUsage {
  bool include = false;     // include_usage
  bool continuous = false;  // continuous_usage_stats (vLLM)
};

// How to pass one stream event's data to the client, given what it asked for.
enum class UsageEdit {
  kPass,         // unchanged
  kDrop,         // a usage-only chunk the client did not ask for
  kDeleteUsage,  // remove the usage member (the client asked for no usage)
  kNullUsage,    // usage: null (the client asked for the final usage only)
};
UsageEdit usageEdit(const ObjectScan& s, ClientUsage client);
// Applies kDeleteUsage / kNullUsage to `json` (kPass/kDrop: returns it unchanged).
std::string applyUsageEdit(std::string_view json, const ObjectScan& s, UsageEdit edit);

}  // namespace tidegate::gateway::relay
