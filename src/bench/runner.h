#pragma once
// Runner: sends a Workload to an OpenAI-compatible target and records every request.
//
// One io_context on the calling thread, one coroutine per in-flight request, keep-alive
// connections. Closed loop: `concurrency` workers, each sending its next request when the previous
// one ends, until the workload or the duration runs out. Open loop (rate, profile, trace): a
// dispatcher sends each request at its scheduled time on an idle connection (or a new one), never
// waiting for earlier responses; latencies are measured from the scheduled time, so a slow target
// cannot hide queueing (no coordinated omission).
//
// A target that fails mid-run is recorded as errors (by kind), never a crash or a hang: every
// request has a deadline (`timeout_s`).

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>
#include <vector>

#include "bench/spec.h"
#include "bench/stats.h"
#include "bench/workload.h"
#include "common/http_client.h"

namespace tidegate::bench {

struct RunnerConfig {
  Target target;
  std::string path = "/v1/chat/completions";
  http::Headers headers;   // sent with every request (Content-Type, Authorization, Host...)
  bool stream = true;      // parse SSE and time every token
  int concurrency = 1;     // closed loop only
  double duration_s = 0;   // closed loop: stop sending after this (0: until the workload ends)
  double timeout_s = 120;  // per request
  bool progress = false;   // a live line on stderr once a second
};

// Checks that the target accepts TCP connections (5 s deadline). Returns an error to report
// before any load is sent.
Status probe(const Target& target);

class Runner {
 public:
  Runner(RunnerConfig config, Workload& workload, Recorder& recorder);
  ~Runner();
  // Runs the whole workload; returns the wall time from the first send to the last response.
  double run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::bench
