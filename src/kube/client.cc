#include "kube/client.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "common/clock.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/url.h"

namespace tidegate::kube {

namespace asio = boost::asio;

namespace resources {
const Resource kPods{"", "v1", "pods", "Pod", true};
const Resource kNodes{"", "v1", "nodes", "Node", false};
const Resource kSecrets{"", "v1", "secrets", "Secret", true};
const Resource kEvents{"", "v1", "events", "Event", true};
const Resource kDeployments{"apps", "v1", "deployments", "Deployment", true};
const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
const Resource kInferenceServices{"tidegate.io", "v1alpha1", "inferenceservices",
                                  "InferenceService", true};
}  // namespace resources

std::string Resource::path(const std::string& ns, const std::string& name,
                           const std::string& subresource) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) p += "/namespaces/" + ns;
  p += "/" + plural;
  if (!name.empty()) p += "/" + name;
  if (!name.empty() && !subresource.empty()) p += "/" + subresource;
  return p;
}

TokenBucket::TokenBucket(double qps, int burst)
    : qps_(qps > 0 ? qps : 1e9), burst_(std::max(1, burst)), tokens_(std::max(1, burst)) {}

double TokenBucket::reserve(double now) {
  if (last_ >= 0 && now > last_) tokens_ = std::min(burst_, tokens_ + (now - last_) * qps_);
  if (last_ < 0 || now > last_) last_ = now;
  tokens_ -= 1;
  return tokens_ >= 0 ? 0 : -tokens_ / qps_;
}

std::optional<double> retryDelay(int attempt, const ApiError& e, bool idempotent,
                                 double retry_after_s, const ClientOptions& o, double jitter) {
  if (attempt >= o.max_retries) return std::nullopt;
  // 429 and 503 mean the server did not act (overload, priority and fairness): any verb.
  const bool not_acted = e.code == 429 || e.code == 503;
  const bool transient = e.code == 0 || e.code == 500 || e.code == 502 || e.code == 504;
  if (!not_acted && !(transient && idempotent)) return std::nullopt;
  // Full jitter (a random point up to the exponential bound) keeps many clients from retrying
  // in step; Retry-After is a floor.
  const double bound = std::min(o.backoff_cap_s, o.backoff_base_s * std::pow(2.0, attempt));
  return std::max(bound * jitter, retry_after_s);
}

bool LineSplitter::feed(std::string_view bytes) {
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes);
  const auto nl = buffer_.find('\n', start_);
  const auto pending = (nl == std::string::npos ? buffer_.size() : nl) - start_;
  return pending <= max_line_;
}

std::optional<std::string> LineSplitter::next() {
  const auto nl = buffer_.find('\n', start_);
  if (nl == std::string::npos) return std::nullopt;
  std::string line = buffer_.substr(start_, nl - start_);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  start_ = nl + 1;
  return line;
}

Result<WatchEvent> parseWatchEvent(std::string_view line) {
  boost::system::error_code ec;
  auto v = bj::parse(line, ec);
  if (ec || !v.is_object()) return Error{"watch event is not a JSON object"};
  const auto& o = v.get_object();
  const auto* type = o.if_contains("type");
  const auto* object = o.if_contains("object");
  if (!type || !type->is_string()) return Error{"watch event without a type"};
  if (!object || !object->is_object()) return Error{"watch event without an object"};
  WatchEvent e;
  const auto t = type->get_string();
  if (t == "ADDED") {
    e.type = WatchEvent::Type::kAdded;
  } else if (t == "MODIFIED") {
    e.type = WatchEvent::Type::kModified;
  } else if (t == "DELETED") {
    e.type = WatchEvent::Type::kDeleted;
  } else if (t == "BOOKMARK") {
    e.type = WatchEvent::Type::kBookmark;
  } else if (t == "ERROR") {
    e.type = WatchEvent::Type::kError;
  } else {
    return Error{"watch event of unknown type \"" + std::string(t) + "\""};
  }
  e.object = object->get_object();
  return e;
}

namespace {
std::string str(const bj::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
}  // namespace

ApiError statusError(unsigned code, std::string_view body, const std::string& what) {
  ApiError e;
  e.code = static_cast<int>(code);
  boost::system::error_code ec;
  auto v = bj::parse(body, ec);
  if (!ec && v.is_object() && str(v.get_object(), "kind") == "Status") {
    e.reason = str(v.get_object(), "reason");
    e.message =
        what + ": " + std::to_string(code) + " " + e.reason + ": " + str(v.get_object(), "message");
  } else {
    e.message = what + ": HTTP " + std::to_string(code);
  }
  return e;
}

// The connections of a client: idle ones to borrow, and every live one for cancel().
struct Client::Pool {
  std::vector<std::unique_ptr<http::Client>> idle;
  std::set<http::Client*> live;
  http::ClientOptions options;
};

Client::Client(asio::any_io_executor ex, ClusterConfig config, ClientOptions options)
    : ex_(std::move(ex)),
      config_(std::move(config)),
      options_(std::move(options)),
      pool_(std::make_unique<Pool>()),
      bucket_(options_.qps, options_.burst),
      rng_(options_.seed ? options_.seed : std::random_device{}()) {
  pool_->options.clock = options_.clock;
  if (config_.https) {
    auto ctx = tls::makeClientContext(config_.tls);
    if (ctx) {
      pool_->options.tls = *ctx;
    } else {
      // Every request fails with this reason (see request()); the caller's check prints it.
      spdlog::error("kubernetes: {}", ctx.error().message);
    }
  }
  token_read_at_ = now();
}

Client::~Client() = default;

double Client::now() const { return options_.clock ? options_.clock->now() : monotonicSeconds(); }

std::string Client::bearer() {
  // Bound service-account tokens are rotated by the kubelet; client-go re-reads them too.
  if (!config_.token_file.empty() && now() - token_read_at_ >= 60) {
    token_read_at_ = now();
    std::ifstream in(config_.token_file);
    std::ostringstream s;
    if (in && (s << in.rdbuf())) {
      auto t = s.str();
      while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
      if (!t.empty()) config_.token = t;
    }
  }
  return config_.token.empty() ? std::string() : "Bearer " + config_.token;
}

void Client::cancel() {
  asio::post(ex_, [this] {
    for (auto* c : pool_->live) c->cancel();
    pool_->idle.clear();
  });
}

asio::awaitable<void> Client::throttle() {
  if (const double wait = bucket_.reserve(now()); wait > 0) {
    stats_.throttled_s += wait;
    asio::steady_timer timer(ex_);
    timer.expires_after(std::chrono::microseconds(static_cast<long>(wait * 1e6)));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<Client::Object> Client::request(std::string method, std::string target,
                                                std::string body, std::string content_type) {
  const std::string what = method + " " + target;
  if (config_.https && !pool_->options.tls)
    co_return ApiError{0, "", what + ": the TLS configuration could not be loaded"};
  const bool idempotent = method != "POST";
  asio::steady_timer timer(ex_);
  std::uniform_real_distribution<double> uniform(0, 1);
  for (int attempt = 0;; ++attempt) {
    co_await throttle();
    ++stats_.requests;
    std::unique_ptr<http::Client> conn;
    if (!pool_->idle.empty()) {
      conn = std::move(pool_->idle.back());
      pool_->idle.pop_back();
    } else {
      conn = std::make_unique<http::Client>(ex_, config_.host, config_.port, pool_->options);
      pool_->live.insert(conn.get());
    }
    http::ClientRequest req{
        .method = method,
        .target = target,
        .body = body,
        .headers = {{"Accept", "application/json"}, {"User-Agent", options_.user_agent}},
        .timeout_s = options_.timeout_s};
    if (auto b = bearer(); !b.empty()) req.headers.emplace_back("Authorization", b);
    if (!content_type.empty()) req.headers.emplace_back("Content-Type", content_type);
    auto r = co_await conn->send(req);
    ApiError err;
    double retry_after = -1;
    if (r) {
      if (r->status / 100 == 2) {
        boost::system::error_code ec;
        auto v = bj::parse(r->body, ec);
        if (conn->reusable()) {
          pool_->idle.push_back(std::move(conn));
        } else {
          pool_->live.erase(conn.get());
        }
        if (ec || !v.is_object()) {
          ++stats_.failures;
          co_return ApiError{static_cast<int>(r->status), "",
                             what + ": the response is not a JSON object"};
        }
        co_return std::move(v.get_object());
      }
      err = statusError(r->status, r->body, what);
      if (auto ra = r->header("Retry-After"); !ra.empty()) {
        try {
          retry_after = std::stod(std::string(ra));
        } catch (...) {
        }
      }
    } else {
      err = ApiError{0, "", what + ": " + r.error().message};
    }
    if (conn && conn->reusable()) {
      pool_->idle.push_back(std::move(conn));
    } else if (conn) {
      pool_->live.erase(conn.get());
    }
    auto delay = retryDelay(attempt, err, idempotent, retry_after, options_, uniform(rng_));
    if (!delay) {
      ++stats_.failures;
      co_return err;
    }
    ++stats_.retries;
    timer.expires_after(std::chrono::microseconds(static_cast<long>(*delay * 1e6)));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

namespace {
std::string withQuery(const std::string& path, const ListOptions& o) {
  std::string q;
  if (!o.label_selector.empty()) q += "&labelSelector=" + urlEncode(o.label_selector);
  if (!o.field_selector.empty()) q += "&fieldSelector=" + urlEncode(o.field_selector);
  if (q.empty()) return path;
  q[0] = '?';
  return path + q;
}
}  // namespace

asio::awaitable<Client::Object> Client::get(const std::string& path) {
  return request("GET", path, "", "");
}

asio::awaitable<Client::Object> Client::list(const std::string& path, const ListOptions& options) {
  return request("GET", withQuery(path, options), "", "");
}

asio::awaitable<Client::Object> Client::create(const std::string& path, const bj::object& object) {
  return request("POST", path, bj::serialize(object), "application/json");
}

asio::awaitable<Client::Object> Client::update(const std::string& path, const bj::object& object) {
  return request("PUT", path, bj::serialize(object), "application/json");
}

asio::awaitable<Client::Object> Client::patch(const std::string& path, const bj::value& patch,
                                              PatchType type) {
  const char* ct = type == PatchType::kMerge            ? "application/merge-patch+json"
                   : type == PatchType::kStrategicMerge ? "application/strategic-merge-patch+json"
                                                        : "application/json-patch+json";
  return request("PATCH", path, bj::serialize(patch), ct);
}

asio::awaitable<Client::Object> Client::remove(const std::string& path) {
  return request("DELETE", path, "", "");
}

asio::awaitable<Client::Object> Client::modify(const std::string& path,
                                               std::function<bool(bj::object&)> mutate) {
  for (int attempt = 0;; ++attempt) {
    auto current = co_await get(path);
    if (!current) co_return current;
    bj::object changed = *current;
    if (!mutate(changed)) co_return current;
    auto r = co_await update(path, changed);
    if (r || r.error().code != 409 || attempt >= 4) co_return r;
    spdlog::debug("kubernetes: {}: conflict, re-reading", path);
  }
}

asio::awaitable<WatchEnd> Client::watch(const std::string& path, const ListOptions& options,
                                        const std::string& resource_version,
                                        std::function<bool(const WatchEvent&)> on_event) {
  co_await throttle();
  std::uniform_real_distribution<double> uniform(1, 2);
  const long timeout = std::max(1L, std::lround(options_.watch_timeout_s * uniform(rng_)));
  std::string target = withQuery(path, options);
  target += (target.find('?') == std::string::npos ? "?" : "&");
  target += "watch=1&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout);
  if (!resource_version.empty()) target += "&resourceVersion=" + urlEncode(resource_version);
  const std::string what = "WATCH " + path;
  if (config_.https && !pool_->options.tls)
    co_return WatchEnd{WatchEnd::Kind::kFailed,
                       {0, "", what + ": the TLS configuration could not be loaded"}};

  ++stats_.requests;
  http::Client conn(ex_, config_.host, config_.port, pool_->options);
  pool_->live.insert(&conn);
  struct Unregister {
    Pool* pool;
    http::Client* c;
    ~Unregister() { pool->live.erase(c); }
  } unregister{pool_.get(), &conn};
  http::ClientRequest req{
      .method = "GET",
      .target = target,
      .headers = {{"Accept", "application/json"}, {"User-Agent", options_.user_agent}},
      .timeout_s = options_.timeout_s};
  if (auto b = bearer(); !b.empty()) req.headers.emplace_back("Authorization", b);
  auto r = co_await conn.start(req);
  if (!r) co_return WatchEnd{WatchEnd::Kind::kFailed, {0, "", what + ": " + r.error().message}};
  if (r->status != 200) {
    auto body = co_await conn.readAll(1 << 20, options_.timeout_s, options_.timeout_s);
    auto e = statusError(r->status, body ? *body : std::string(), what);
    co_return WatchEnd{e.code == 410 ? WatchEnd::Kind::kGone : WatchEnd::Kind::kFailed, e};
  }
  LineSplitter lines;
  for (;;) {
    // The server ends the watch after timeoutSeconds; silence well past that is a dead peer.
    auto chunk = co_await conn.next(static_cast<double>(timeout) + 30);
    if (!chunk)
      co_return WatchEnd{WatchEnd::Kind::kFailed, {0, "", what + ": " + chunk.error().message}};
    if (chunk->empty()) co_return WatchEnd{WatchEnd::Kind::kClosed, {}};
    if (!lines.feed(*chunk))
      co_return WatchEnd{WatchEnd::Kind::kFailed, {0, "", what + ": an event over 16 MiB"}};
    while (auto line = lines.next()) {
      if (line->empty()) continue;
      auto ev = parseWatchEvent(*line);
      if (!ev)
        co_return WatchEnd{WatchEnd::Kind::kFailed, {0, "", what + ": " + ev.error().message}};
      if (ev->type == WatchEvent::Type::kError) {
        // An ERROR event carries a Status: 410 Expired means "list again".
        const auto* code = ev->object.if_contains("code");
        const unsigned c = code && code->is_int64() ? static_cast<unsigned>(code->as_int64()) : 500;
        auto e = statusError(c, bj::serialize(ev->object), what);
        co_return WatchEnd{c == 410 ? WatchEnd::Kind::kGone : WatchEnd::Kind::kFailed, e};
      }
      if (!on_event(*ev)) {
        conn.cancel();
        co_return WatchEnd{WatchEnd::Kind::kClosed, {}};
      }
    }
  }
}

}  // namespace tidegate::kube
