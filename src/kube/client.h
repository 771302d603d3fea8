#pragma once
// A Kubernetes API client over the project's HTTP stack (http::Client, TLS through OpenSSL).
//
// What it does, as client-go's rest client does (semantics: https://kubernetes.io/docs/reference/
// using-api/api-concepts/):
//   get, list (label and field selectors), create, update (PUT, optimistic concurrency through
//   metadata.resourceVersion), patch (merge, strategic-merge and JSON patches), remove, the
//   /scale and /status subresources (they are paths), and watch (a chunked stream of JSON
//   events, one per line: ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).
//   modify(): GET, change, PUT; a 409 Conflict re-reads and tries again.
//   Client-side rate limiting: a token bucket (qps, burst), as client-go's flowcontrol.
//   Retries with exponential backoff and full jitter: 429 and 503 for every verb (the server did
//   not act; Retry-After is honoured), 500/502/504 and transport failures only for idempotent
//   verbs (GET, PUT, PATCH, DELETE) — a POST that may have been applied is not sent twice.
//   Bound service-account tokens rotate: a token file is re-read every minute.
// Failures are ApiError values (the HTTP code, and the Status object's reason and message, e.g.
// 403 Forbidden with the RBAC rule that is missing), never exceptions.
//
// Threads: a Client belongs to the executor it was made with; its coroutines run there. Several
// requests may be in flight at once (each borrows a connection from a small pool); every watch
// holds a connection of its own.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "kube/config.h"

namespace tidegate {
class Clock;
}

namespace tidegate::kube {

namespace bj = boost::json;

struct ApiError {
  int code = 0;         // HTTP status; 0: no response (connect, TLS, timeout, reset)
  std::string reason;   // the Status object's reason: NotFound, Conflict, Forbidden, Expired, ...
  std::string message;  // what to log: verb, path and the server's (or the transport's) words
};
template <class T>
using ApiResult = Result<T, ApiError>;

// A kind of resource: where its objects live in the API.
struct Resource {
  std::string group;  // "" for the core group
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  // The collection (`name` empty) or one object's path, with an optional subresource. `ns`
  // empty on a namespaced kind: every namespace (lists and watches).
  std::string path(const std::string& ns = "", const std::string& name = "",
                   const std::string& subresource = "") const;
};

namespace resources {
extern const Resource kPods, kNodes, kSecrets, kEvents, kDeployments, kLeases;
extern const Resource kInferenceServices;  // tidegate.io/v1alpha1
}  // namespace resources

struct ListOptions {
  std::string label_selector;  // e.g. "app=qwen,tier in (a,b)"
  std::string field_selector;  // e.g. "spec.nodeName=n1"
};

enum class PatchType { kMerge, kStrategicMerge, kJson };

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError } type = Type::kAdded;
  bj::object object;
};
// How a watch ended. kClosed: the server ended it (timeoutSeconds) — watch again from the last
// resourceVersion; kGone: 410, the version is too old — list again; kFailed: a transport or HTTP
// error — back off, then watch again.
struct WatchEnd {
  enum class Kind { kClosed, kGone, kFailed } kind = Kind::kClosed;
  ApiError error;  // kGone, kFailed
};

struct ClientOptions {
  double qps = 20;               // default 20 requests/s sustained (client-go's default is 5)
  int burst = 40;                // default 40
  double timeout_s = 30;         // default 30 s per request
  int max_retries = 5;           // default 5 retries after the first attempt
  double backoff_base_s = 0.2;   // default 200 ms, doubling per attempt...
  double backoff_cap_s = 10;     // ...up to 10 s
  double watch_timeout_s = 300;  // default 5 min; each watch asks for 1 to 2 times this, so
                                 // watches of many clients do not end together (client-go)
  std::string user_agent = "tidegate";
  const Clock* clock = nullptr;  // default: the process's monotonic clock
  std::uint64_t seed = 0;        // default 0: random; the jitter's RNG seed
};

// Client-go's token bucket: `burst` tokens, refilled at `qps`. Pure (time is passed in).
class TokenBucket {
 public:
  TokenBucket(double qps, int burst);
  // Takes a token and returns how long to wait before using it (0 when one was available).
  double reserve(double now);

 private:
  double qps_, burst_, tokens_, last_ = -1;
};

// Whether to retry a failed attempt and after how long; nullopt: give up. Pure.
// `attempt` counts from 0; `retry_after_s` is the Retry-After header (negative when absent);
// `jitter` is uniform in [0, 1).
std::optional<double> retryDelay(int attempt, const ApiError& e, bool idempotent,
                                 double retry_after_s, const ClientOptions& o, double jitter);

// Splits a watch stream into JSON lines: feed() bytes as they come, take complete lines. A line
// over `max_line` bytes is an error (a watch event is one object; 16 MiB is far past any real
// one). Pure.
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line = 16 << 20) : max_line_(max_line) {}
  // Appends bytes; false when the current line passed the limit.
  bool feed(std::string_view bytes);
  // The next complete line (without its newline), or nullopt.
  std::optional<std::string> next();

 private:
  std::size_t max_line_;
  std::string buffer_;
  std::size_t start_ = 0;
};
// Parses one watch line; an error names what is wrong with it.
Result<WatchEvent> parseWatchEvent(std::string_view line);

// The ApiError of a non-2xx response: its Status object's reason and message when the body is
// one, else the status line. `what` is "VERB PATH". Pure.
ApiError statusError(unsigned code, std::string_view body, const std::string& what);

class Client {
 public:
  Client(boost::asio::any_io_executor ex, ClusterConfig config, ClientOptions options = {});
  ~Client();

  using Object = ApiResult<bj::object>;
  boost::asio::awaitable<Object> get(const std::string& path);
  // A list: {"metadata": {"resourceVersion": ...}, "items": [...]}. (No default for `options`:
  // GCC 12 destroys a default-argument temporary of a co_await expression twice.)
  boost::asio::awaitable<Object> list(const std::string& path, const ListOptions& options);
  boost::asio::awaitable<Object> create(const std::string& path, const bj::object& object);
  // PUT: a stale metadata.resourceVersion is a 409 Conflict.
  boost::asio::awaitable<Object> update(const std::string& path, const bj::object& object);
  boost::asio::awaitable<Object> patch(const std::string& path, const bj::value& patch,
                                       PatchType type = PatchType::kMerge);
  boost::asio::awaitable<Object> remove(const std::string& path);
  // GET, mutate, PUT; on 409 Conflict, again from a fresh GET (up to 5 times). `mutate` returns
  // false when there is nothing to change (no PUT; the object read is returned).
  boost::asio::awaitable<Object> modify(const std::string& path,
                                        std::function<bool(bj::object&)> mutate);
  // Watches `path` from `resource_version` ("" or "0": the current state as ADDED events
  // first), with bookmarks, calling `on_event` for every event until the watch ends or
  // `on_event` returns false.
  boost::asio::awaitable<WatchEnd> watch(const std::string& path, const ListOptions& options,
                                         const std::string& resource_version,
                                         std::function<bool(const WatchEvent&)> on_event);
  // Closes every connection (pending requests and watches fail). Callable from any thread.
  void cancel();

  const ClusterConfig& config() const { return config_; }
  // Counters for /admin/state and metrics.
  struct Stats {
    std::uint64_t requests = 0, retries = 0, failures = 0;
    double throttled_s = 0;  // time spent waiting for the rate limiter
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Pool;
  boost::asio::awaitable<Object> request(std::string method, std::string target, std::string body,
                                         std::string content_type);
  // Waits for the rate limiter's token (counted in Stats::throttled_s).
  boost::asio::awaitable<void> throttle();
  std::string bearer();
  double now() const;

  boost::asio::any_io_executor ex_;
  ClusterConfig config_;
  ClientOptions options_;
  std::unique_ptr<Pool> pool_;
  TokenBucket bucket_;
  std::mt19937_64 rng_;
  double token_read_at_ = 0;
  Stats stats_;
};

}  // namespace tidegate::kube
