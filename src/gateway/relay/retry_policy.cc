#include "gateway/relay/retry_policy.h"

namespace tidegate::gateway::relay {

std::string_view outcomeKind(Outcome o) {
  switch (o) {
    case Outcome::kConnect:
      return "connect";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kReset:
      return "reset";
    case Outcome::kIo:
      return "io";
    case Outcome::kHttp5xx:
      return "http_5xx";
    case Outcome::kHttp429:
      return "http_429";
    case Outcome::kBadResponse:
      return "bad_response";
    case Outcome::kNoEndpoint:
      return "no_endpoint";
    case Outcome::kClientGone:
      return "client_gone";
    case Outcome::kMidStream:
      return "mid_stream";
    case Outcome::kServed:
      return "served";
  }
  return "io";
}

Next decide(Outcome o, int attempt, int retries) {
  switch (o) {
    case Outcome::kServed:
    case Outcome::kClientGone:
    case Outcome::kMidStream:
      return Next::kDone;
    case Outcome::kNoEndpoint:
      return Next::kGiveUp;  // nothing left to try
    case Outcome::kConnect:
    case Outcome::kTimeout:
    case Outcome::kReset:
    case Outcome::kIo:
    case Outcome::kHttp5xx:
    case Outcome::kHttp429:
    case Outcome::kBadResponse:
      return attempt < retries ? Next::kRetry : Next::kGiveUp;
  }
  return Next::kGiveUp;
}

unsigned giveUpStatus(Outcome last) {
  switch (last) {
    case Outcome::kNoEndpoint:
      return 503;
    case Outcome::kTimeout:
      return 504;
    default:
      return 502;
  }
}

}  // namespace tidegate::gateway::relay
