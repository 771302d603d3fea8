#include "bench/runner.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <deque>

#include "common/sse.h"

namespace tidegate::bench {

namespace asio = boost::asio;
namespace bj = boost::json;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

Status probe(const Target& target) {
  asio::io_context ioc;
  http::tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  auto results = resolver.resolve(target.host, std::to_string(target.port), ec);
  if (ec) return Error{"cannot resolve " + target.host + ": " + ec.message()};
  boost::beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(5));
  std::string failure;
  stream.async_connect(results, [&](const boost::system::error_code& e, const auto&) {
    if (e) failure = e.message();
  });
  ioc.run();
  if (!failure.empty())
    return Error{"cannot connect to " + target.host + ":" + std::to_string(target.port) + ": " +
                 failure};
  return Status::Ok();
}

namespace {

// What one streamed response told us, event by event.
struct StreamState {
  SseParser parser{4 << 20};
  std::vector<std::string> events;
  double first = -1, last = -1;
  int tokens_seen = 0;
  int usage_prompt = -1, usage_completion = -1;
  bool done = false;
  bool error_event = false;
  bool oversized = false;
  std::string model;
};

// Reads `model` and `usage` from a response object (streamed chunk or whole body).
void readCommon(const bj::object& o, StreamState& st) {
  if (st.model.empty()) {
    if (const auto* m = o.if_contains("model"); m && m->is_string()) st.model = m->get_string();
  }
  if (const auto* u = o.if_contains("usage"); u && u->is_object()) {
    const auto& uo = u->get_object();
    if (const auto* p = uo.if_contains("prompt_tokens"); p && p->is_int64())
      st.usage_prompt = static_cast<int>(p->get_int64());
    if (const auto* c = uo.if_contains("completion_tokens"); c && c->is_int64())
      st.usage_completion = static_cast<int>(c->get_int64());
  }
}

// The text a chunk carries: choices[0].delta.content (chat) or choices[0].text (completions).
std::string_view chunkText(const bj::object& o) {
  const auto* choices = o.if_contains("choices");
  if (!choices || !choices->is_array() || choices->get_array().empty()) return {};
  const auto* c = choices->get_array()[0].if_object();
  if (!c) return {};
  if (const auto* d = c->if_contains("delta"); d && d->is_object()) {
    if (const auto* t = d->get_object().if_contains("content"); t && t->is_string())
      return t->get_string();
    return {};
  }
  if (const auto* t = c->if_contains("text"); t && t->is_string()) return t->get_string();
  return {};
}

}  // namespace

struct Runner::Impl {
  Impl(RunnerConfig c, Workload& w, Recorder& r)
      : cfg(std::move(c)), workload(w), recorder(r), start(std::chrono::steady_clock::now()) {}

  RunnerConfig cfg;
  Workload& workload;
  Recorder& recorder;
  asio::io_context ioc{1};
  std::chrono::steady_clock::time_point start;
  std::vector<std::unique_ptr<http::Client>> idle;  // open loop: reusable connections
  std::size_t inflight = 0;
  bool dispatching = true;
  asio::steady_timer* progress_timer = nullptr;  // cancelled when the last request ends
  double last_end = 0;
  // Progress window.
  std::vector<double> window_ttft;
  std::size_t window_done = 0;

  double now() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  std::unique_ptr<http::Client> takeClient() {
    if (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      return c;
    }
    return std::make_unique<http::Client>(ioc.get_executor(), cfg.target.host, cfg.target.port);
  }

  asio::awaitable<void> execute(http::Client& client, const Planned& p, double scheduled) {
    Record r;
    r.index = p.index;
    r.scheduled = scheduled;
    r.sent = now();
    StreamState st;
    std::vector<double> itl;
    http::ClientRequest req{.method = "POST",
                            .target = cfg.path,
                            .body = p.body,
                            .headers = cfg.headers,
                            .timeout_s = cfg.timeout_s};
    http::DataFn on_data;
    if (cfg.stream) {
      on_data = [&](std::string_view data) {
        const double t = now();
        st.events.clear();
        if (!st.parser.feed(data, st.events)) {
          st.oversized = true;
          return false;
        }
        for (const auto& ev : st.events) {
          if (ev == "[DONE]") {
            st.done = true;
            continue;
          }
          boost::system::error_code ec;
          auto v = bj::parse(ev, ec);
          if (ec || !v.is_object()) continue;
          const auto& o = v.get_object();
          if (o.contains("error")) st.error_event = true;
          readCommon(o, st);
          if (chunkText(o).empty()) continue;
          if (st.first < 0) {
            st.first = t;
          } else {
            itl.push_back(t - st.last);
          }
          st.last = t;
          ++st.tokens_seen;
        }
        return true;
      };
    }
    auto result = co_await client.send(req, std::move(on_data));
    const double end = now();
    last_end = std::max(last_end, end);
    if (!result) {
      r.error = std::string(http::failureName(result.error().kind));
    } else {
      r.status = result->status;
      if (r.status != 200) {
        r.error = "http_" + std::to_string(r.status);
      } else if (cfg.stream) {
        if (st.oversized) {
          r.error = "oversized_event";
        } else if (st.error_event) {
          r.error = "stream_error";
        } else if (!st.done) {
          r.error = "incomplete_stream";
        }
        if (st.first >= 0) r.ttft = st.first - scheduled;
      } else {
        boost::system::error_code ec;
        auto v = bj::parse(result->body, ec);
        if (ec || !v.is_object()) {
          r.error = "bad_json";
        } else {
          readCommon(v.get_object(), st);
        }
        r.ttft = end - scheduled;  // the first token arrives with the whole body
      }
      r.e2e = end - scheduled;
    }
    r.model = std::move(st.model);
    r.prompt_tokens = st.usage_prompt >= 0 ? st.usage_prompt : p.prompt_tokens;
    r.output_tokens = st.usage_completion >= 0 ? st.usage_completion : st.tokens_seen;
    if (!itl.empty()) {
      double sum = 0;
      for (double x : itl) sum += x;
      r.itl_mean = sum / static_cast<double>(itl.size());
    }
    if (r.ok()) {
      ++window_done;
      if (r.ttft >= 0) window_ttft.push_back(r.ttft);
    }
    recorder.add(std::move(r), itl);
  }

  asio::awaitable<void> closedWorker() {
    http::Client client(ioc.get_executor(), cfg.target.host, cfg.target.port);
    ++inflight;
    while (true) {
      if (cfg.duration_s > 0 && now() >= cfg.duration_s) break;
      auto p = workload.next();
      if (!p) break;
      co_await execute(client, *p, now());
    }
    client.close();
    --inflight;
    requestEnded();
  }

  asio::awaitable<void> openRequest(Planned p) {
    auto client = takeClient();
    co_await execute(*client, p, p.at);
    idle.push_back(std::move(client));
    --inflight;
    requestEnded();
  }

  asio::awaitable<void> dispatcher() {
    asio::steady_timer timer(ioc);
    while (auto p = workload.next()) {
      const double wait = p->at - now();
      if (wait > 0) {
        timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(wait)));
        co_await timer.async_wait(kTuple);
      }
      ++inflight;
      asio::co_spawn(ioc, openRequest(std::move(*p)), asio::detached);
    }
    dispatching = false;
    requestEnded();
  }

  // Called whenever a request ends: lets the progress loop finish with the run.
  void requestEnded() {
    if (!dispatching && inflight == 0 && progress_timer) progress_timer->cancel();
  }

  asio::awaitable<void> progressLoop() {
    asio::steady_timer timer(ioc);
    progress_timer = &timer;
    while (dispatching || inflight > 0) {
      timer.expires_after(std::chrono::seconds(1));
      co_await timer.async_wait(kTuple);
      std::sort(window_ttft.begin(), window_ttft.end());
      const double p50 = window_ttft.empty() ? 0 : quantile(window_ttft, 0.5);
      std::fprintf(
          stderr,
          "\r\033[K%6.1fs  done %zu  errors %zu  in flight %zu  %zu req/s  p50 TTFT %.1f ms", now(),
          recorder.completed(), recorder.failed(), inflight, window_done, p50 * 1e3);
      window_ttft.clear();
      window_done = 0;
    }
    progress_timer = nullptr;
    std::fprintf(stderr, "\r\033[K");
  }
};

Runner::Runner(RunnerConfig config, Workload& workload, Recorder& recorder)
    : impl_(std::make_unique<Impl>(std::move(config), workload, recorder)) {}

Runner::~Runner() = default;

double Runner::run() {
  auto& m = *impl_;
  m.start = std::chrono::steady_clock::now();
  if (m.workload.config().shape == Shape::kClosed) {
    for (int i = 0; i < m.cfg.concurrency; ++i)
      asio::co_spawn(m.ioc, m.closedWorker(), asio::detached);
    m.dispatching = false;
  } else {
    asio::co_spawn(m.ioc, m.dispatcher(), asio::detached);
  }
  if (m.cfg.progress) asio::co_spawn(m.ioc, m.progressLoop(), asio::detached);
  m.ioc.run();
  return m.last_end;
}

}  // namespace tidegate::bench
