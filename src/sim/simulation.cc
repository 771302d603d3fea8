#include "sim/simulation.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <queue>
#include <random>
#include <set>

#include "control/autoscaler.h"
#include "control/placement.h"
#include "controller/observe.h"
#include "engine/flags.h"
#include "engine/model/busy_window.h"
#include "engine/model/load_gauges.h"
#include "engine/model/profiles.h"
#include "gateway/endpoint.h"
#include "gateway/picker/picker.h"
#include "gateway/routing.h"

namespace tidegate::sim {

namespace {

// The gateway's prefix-affinity granularity and reach (gateway/relay/relay.cc).
constexpr int kPrefixBlockTokens = 64;
constexpr std::size_t kPrefixMaxTokens = 32768;
// Inter-token gaps kept for percentiles; beyond, a uniform reservoir of this size.
constexpr std::size_t kMaxItlSamples = 1 << 21;

enum class Kind : std::uint8_t { kArrival, kStep, kTick };

struct Event {
  double t;
  std::uint64_t seq;
  Kind kind;
  std::uint32_t replica;  // kStep: index into replicas
  std::uint64_t gen;      // kStep: the replica's step generation
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

enum class State { kStarting, kReady, kDraining, kGone };

// A started engine process takes this long to exec and listen before its own startup clock
// runs (measured: 15–20 ms for `tidegate engine` from spawn to /health answering). Small, but
// it decides on which controller tick a replica whose cold start is a multiple of the interval
// is found Ready: live, the probe at exactly bind + startup is always too early.
constexpr double kProcessStartS = 0.02;

struct Replica {
  std::string id;  // the placement model's replica id
  int service = 0;
  std::string pool, node;
  State state = State::kStarting;
  double bound_at = 0, ready_at = 0;
  double endpoint_since = -1;  // when the gateway learnt of it (first tick it was Ready)
  std::unique_ptr<engine::Scheduler> engine;
  engine::BusyWindow busy;
  bool stepping = false;
  double step_start = 0;
  std::uint64_t gen = 0;
  int inflight = 0;  // this gateway's requests there
  gateway::PrefixIndex prefix{65536};
  gateway::EndpointMetrics scraped;  // the last scrape the gateway has of it
};

// A request in an engine, by slot (its engine sequence id).
struct Live {
  std::size_t record = 0;  // index into records
  double arrival = 0, last = -1, itl_sum = 0;
};

struct ServiceRun {
  const api::InferenceService* spec = nullptr;
  EngineSpec engine;
  control::AutoscalerSpec autoscaler;
  control::AutoscalerState state;
  int desired = 0;
  int peak = 0;
  int scale_events = 0;
  // PromQL sources the simulation evaluates: metric name -> the gauge whose sum it is.
  std::map<std::string, std::string> prom_gauges;
};

// Where a service is written, as the loader's messages say it.
std::string where(const api::InferenceService& s) {
  return s.source.file + ": document " + std::to_string(s.source.document) + " (InferenceService " +
         s.meta.name + "), line " + std::to_string(s.source.line) + ": ";
}

// `sum(NAME)` or `sum(NAME{...})` -> NAME: the only PromQL a simulation can evaluate (the sum of
// an engine gauge over the service's replicas). Empty if the query is anything else.
std::string summedGauge(const std::string& query) {
  std::string q;
  for (char c : query)
    if (!std::isspace(static_cast<unsigned char>(c))) q += c;
  if (q.rfind("sum(", 0) != 0 || q.back() != ')') return "";
  std::string inner = q.substr(4, q.size() - 5);
  if (auto brace = inner.find('{'); brace != std::string::npos) {
    if (inner.back() != '}') return "";
    inner.resize(brace);
  }
  for (char c : inner)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return "";
  return inner;
}

std::vector<ModelShare> modelsOf(const api::Config& c, const Options& o) {
  if (!o.models.empty()) return o.models;
  for (const auto& m : c.models)
    if (!m.fallback) return {{m.model_name, 1}};
  if (!c.services.empty()) return {{c.services.front().served_model_name, 1}};
  return {};
}

class Simulation {
 public:
  Simulation(const api::Config& config, const Options& options)
      : config_(config),
        options_(options),
        routing_(std::make_shared<api::Config>(config), {}),
        rng_(options.workload.seed ^ 0x51D0C0FFEEull) {
    auto w = options.workload;
    w.output = bench::WorkloadConfig::Output::kTokens;
    workload_ = std::make_unique<bench::Workload>(w);
    models_ = modelsOf(config, options);
    for (const auto& m : models_) model_weight_total_ += m.weight;
    const auto& g = config.gateway;
    pick_ = gateway::PickConfig{g.weights, g.queue_threshold, g.kv_threshold, g.stale_after_s};
    scrape_ = g.scrape_interval_s;
    interval_ = g.controller_interval_s;
    cluster_.pools = api::nodePoolSpecs(config);
    cluster_.bootstrap(0);
    for (const auto& s : config.services) {
      ServiceRun run;
      run.spec = &s;
      run.engine = engineSpec(s, options.gpu).value();
      run.autoscaler = controller::autoscalerSpec(s);
      for (const auto& [metric, q] : s.prometheus) run.prom_gauges[metric] = summedGauge(q.query);
      services_.push_back(std::move(run));
    }
    itls_.resize(services_.size() + 1);
  }

  RunResult run() {
    warmStart();
    pushArrival();
    push(0, Kind::kTick, 0, 0);
    std::uint64_t n = 0;
    while (!events_.empty()) {
      const Event e = events_.top();
      events_.pop();
      now_ = e.t;
      switch (e.kind) {
        case Kind::kArrival:
          arrive();
          pushArrival();
          break;
        case Kind::kStep:
          if (e.gen == replicas_[e.replica]->gen) stepDone(e.replica);
          break;
        case Kind::kTick:
          tick();
          // Ticks go on while requests arrive or run; then the run ends.
          if (!arrivals_done_ || active_ > 0) push(now_ + interval_, Kind::kTick, 0, 0);
          break;
      }
      if (options_.progress && (++n & 0xFFFF) == 0) options_.progress(now_, last_arrival_);
    }
    return finish();
  }

 private:
  void push(double t, Kind k, std::uint32_t replica, std::uint64_t gen) {
    events_.push(Event{t, seq_++, k, replica, gen});
  }

  // --- Arrivals and the gateway ---------------------------------------------------------------

  void pushArrival() {
    next_ = workload_->next();
    if (!next_) {
      arrivals_done_ = true;
      return;
    }
    last_arrival_ = next_->at;
    push(next_->at, Kind::kArrival, 0, 0);
  }

  const std::string& drawModel() {
    if (models_.size() == 1) return models_.front().model;
    double x = std::uniform_real_distribution<double>(0, model_weight_total_)(rng_);
    for (const auto& m : models_) {
      if (x < m.weight) return m.model;
      x -= m.weight;
    }
    return models_.back().model;
  }

  std::size_t newRecord(const bench::Planned& p, const std::string& model, int service) {
    bench::Record r;
    r.index = p.index;
    r.scheduled = r.sent = p.at;
    r.prompt_tokens = p.prompt_tokens;
    r.model = model;
    records_.push_back(std::move(r));
    record_service_.push_back(service);
    return records_.size() - 1;
  }

  void fail(std::size_t rec, unsigned status) {
    records_[rec].status = status;
    records_[rec].error = "http_" + std::to_string(status);
    records_[rec].prompt_tokens = 0;
  }

  bool serves(const Replica& r, const std::string& model) const {
    const auto& s = services_[static_cast<std::size_t>(r.service)];
    return s.spec->served_model_name == model ||
           std::find(s.engine.adapters.begin(), s.engine.adapters.end(), model) !=
               s.engine.adapters.end();
  }

  // Ready replicas the gateway knows in pool `p`, in a stable order; rebuilt when a replica
  // becomes Ready or leaves.
  const std::vector<std::uint32_t>& poolEndpoints(std::size_t p) {
    if (endpoints_dirty_) {
      endpoints_.assign(config_.pools.size(), {});
      for (std::size_t pool = 0; pool < config_.pools.size(); ++pool)
        for (auto i : alive_) {
          const auto& r = *replicas_[i];
          if (r.state == State::kReady && r.endpoint_since >= 0 &&
              api::selectorMatches(config_.pools[pool].selector, labelsOf(r)))
            endpoints_[pool].push_back(i);
        }
      endpoints_dirty_ = false;
    }
    return endpoints_[p];
  }

  const api::Labels& labelsOf(const Replica& r) const {
    return services_[static_cast<std::size_t>(r.service)].spec->meta.labels;
  }

  int serviceOfPool(std::size_t p) const {
    for (std::size_t s = 0; s < services_.size(); ++s)
      if (api::selectorMatches(config_.pools[p].selector, services_[s].spec->meta.labels))
        return static_cast<int>(s);
    return -1;
  }

  void arrive() {
    ++arrived_since_;
    bench::Planned p = std::move(*next_);
    const std::string& model = drawModel();
    auto routed = routing_.route("", model, rng_(), [&](std::size_t pool, const std::string& m) {
      for (auto i : poolEndpoints(pool))
        if (serves(*replicas_[i], m)) return true;
      return false;
    });
    if (auto* err = std::get_if<gateway::RouteError>(&routed)) {
      fail(newRecord(p, model, -1), err->status);
      return;
    }
    const auto& route = std::get<gateway::Route>(routed);
    const auto rec = newRecord(p, model, serviceOfPool(route.pool));
    const auto eps = poolEndpoints(route.pool);  // a copy: picking does not change it

    std::vector<engine::BlockHash> hashes;
    if (config_.gateway.weights.prefix > 0) {
      std::span<const std::uint32_t> ids(p.tokens);
      hashes = engine::blockHashes(ids.first(std::min(ids.size(), kPrefixMaxTokens)),
                                   kPrefixBlockTokens, 0);
    }
    std::vector<gateway::Candidate> cands(eps.size());
    for (std::size_t i = 0; i < eps.size(); ++i) {
      auto& r = *replicas_[eps[i]];
      scrape(r);  // before the request changes the engine: the grid saw it without
      cands[i].metrics = &r.scraped;
      cands[i].inflight = r.inflight;
      cands[i].prefix_match =
          hashes.empty() ? 0 : double(r.prefix.match(hashes)) / double(hashes.size());
    }
    engine::SeqRequest seq;
    seq.prompt_len = p.prompt_tokens;
    seq.output_len = p.max_tokens;
    seq.tokens = std::move(p.tokens);
    // Output tokens drawn like prompt words (their hashes only matter to a later turn that
    // repeats them, which no trace links).
    bench::Workload::appendTokens(seq.tokens, p.max_tokens, rng_());
    unsigned status = 503;  // no ready endpoint
    for (;;) {
      const auto pk =
          gateway::pick(cands, {route.target_model, route.criticality}, pick_, now_, rng_());
      if (pk.shed) {
        status = 429;
        break;
      }
      if (pk.index < 0) break;
      const auto idx = eps[static_cast<std::size_t>(pk.index)];
      cands[static_cast<std::size_t>(pk.index)].tried = true;
      auto& r = *replicas_[idx];
      if (!hashes.empty()) r.prefix.insert(hashes);
      if (!serves(r, route.target_model)) {
        status = 404;  // the engine does not know the model (as a live engine answers)
        break;
      }
      const auto& svc = services_[static_cast<std::size_t>(r.service)];
      seq.lora = route.target_model == svc.spec->served_model_name ? "" : route.target_model;
      const auto slot = allocSlot();
      const auto admit = r.engine->add(slot, seq);
      if (admit == engine::Scheduler::Admit::kQueueFull) {
        free_slots_.push_back(slot);
        status = 503;
        continue;  // the engine answered 503 before the first byte: the next replica
      }
      if (admit != engine::Scheduler::Admit::kOk) {
        free_slots_.push_back(slot);
        status = 400;  // too long for the model, or an adapter the engine cannot load
        break;
      }
      records_[rec].status = 200;
      record_service_[rec] = r.service;
      live_[slot] = Live{rec, p.at, -1, 0};
      ++r.inflight;
      ++active_;
      if (!r.stepping) startStep(idx);
      return;
    }
    fail(rec, status);
  }

  std::uint64_t allocSlot() {
    if (!free_slots_.empty()) {
      const auto s = free_slots_.back();
      free_slots_.pop_back();
      return s;
    }
    live_.emplace_back();
    return live_.size() - 1;
  }

  // The gateway scrapes on a grid of the scrape interval; `r.scraped` is the last scrape at or
  // before now. Called before anything changes the engine's state, so the state it copies is
  // the one the grid point saw.
  void scrape(Replica& r) {
    if (r.endpoint_since < 0) return;
    const double g = std::floor(now_ / scrape_) * scrape_;
    if (g < r.endpoint_since || g <= r.scraped.scraped_at) return;
    auto& m = r.scraped;
    const auto& e = *r.engine;
    const auto& svc = services_[static_cast<std::size_t>(r.service)];
    m.scraped_at = g;
    m.up = true;
    m.engine = "vllm";
    m.waiting = static_cast<double>(e.numWaiting());
    m.running = static_cast<double>(e.numRunning());
    m.kv = e.kv().usage();
    m.max_lora = e.config().max_loras;
    m.running_loras = e.lora().running();
    m.waiting_loras = e.waitingAdapters();
    if (m.models.empty()) {
      m.models = {svc.spec->served_model_name};
      m.adapters = svc.engine.adapters;
    }
    // The gauges `tidegate engine` exposes under these names (engine/server.cc).
    m.gauges[std::string(engine::kRunningGauge)] = m.running;
    m.gauges[std::string(engine::kWaitingGauge)] = m.waiting;
    m.gauges[std::string(engine::kKvUsageGauge)] = m.kv;
    m.gauges[std::string(engine::kGpuCacheUsageGauge)] = m.kv;
    m.gauges[std::string(engine::kSmUtilGauge)] = std::round(r.busy.share(g) * 1000) / 10;
  }

  // --- Engines --------------------------------------------------------------------------------

  void startStep(std::uint32_t idx) {
    auto& r = *replicas_[idx];
    const auto& step = r.engine->schedule();
    if (step.empty()) {
      r.stepping = false;
      return;
    }
    r.stepping = true;
    r.step_start = now_;
    ++steps_;
    push(now_ + step.duration, Kind::kStep, idx, ++r.gen);
  }

  void stepDone(std::uint32_t idx) {
    auto& r = *replicas_[idx];
    scrape(r);
    r.busy.add(r.step_start, now_);
    tokens_.clear();
    r.engine->complete(tokens_);
    for (const auto& tok : tokens_) {
      auto& l = live_[tok.id];
      auto& rec = records_[l.record];
      if (tok.index == 0) {
        rec.ttft = now_ - l.arrival;
      } else {
        const double gap = now_ - l.last;
        l.itl_sum += gap;
        addItl(r.service, gap);
      }
      l.last = now_;
      if (tok.finished) {
        rec.output_tokens = tok.index + 1;
        rec.e2e = now_ - l.arrival;
        if (tok.index > 0) rec.itl_mean = l.itl_sum / tok.index;
        free_slots_.push_back(tok.id);
        --r.inflight;
        --active_;
      }
    }
    startStep(idx);
  }

  void addItl(int service, double gap) {
    for (auto* v : {&itls_.back(), &itls_[static_cast<std::size_t>(service)]}) {
      auto& [samples, seen] = *v;
      ++seen;
      if (samples.size() < kMaxItlSamples) {
        samples.push_back(gap);
      } else if (const auto j = std::uniform_int_distribution<std::uint64_t>(0, seen - 1)(rng_);
                 j < kMaxItlSamples) {
        samples[j] = gap;
      }
    }
  }

  // --- The controller -------------------------------------------------------------------------

  Replica& bind(const control::Replica& placed, const control::Node& node, int service) {
    auto r = std::make_unique<Replica>();
    r->id = placed.id;
    r->service = service;
    r->node = node.name;
    r->pool = node.pool;
    r->bound_at = now_;
    auto& svc = services_[static_cast<std::size_t>(service)];
    auto cfg = svc.engine.scheduler;
    cfg.seed = options_.workload.seed * 1000003 + replicas_.size();
    r->engine = std::make_unique<engine::Scheduler>(cfg);
    r->ready_at = now_ + kProcessStartS + svc.engine.startup_s;
    by_id_[r->id] = static_cast<std::uint32_t>(replicas_.size());
    alive_.push_back(static_cast<std::uint32_t>(replicas_.size()));
    replicas_.push_back(std::move(r));
    return *replicas_.back();
  }

  std::vector<control::Demand> demands() const {
    std::vector<control::Demand> out;
    for (const auto& s : services_)
      out.push_back(api::placementDemand(config_, *s.spec, s.desired));
    return out;
  }

  int serviceIndex(const std::string& name) const {
    for (std::size_t i = 0; i < services_.size(); ++i)
      if (services_[i].spec->meta.name == name) return static_cast<int>(i);
    return -1;
  }

  // Carries out a plan: replicas bound to nodes start; removed ones drain or go. A removed
  // replica holds its GPUs in the model until it is gone.
  void act(const control::Plan& plan, const std::vector<control::Demand>& demands) {
    control::apply(cluster_, plan, demands, now_);
    for (const auto& id : plan.remove) {
      auto it = by_id_.find(id);
      if (it == by_id_.end()) continue;  // still Pending: nothing ran
      const auto idx = it->second;
      auto& r = *replicas_[idx];
      if (r.state == State::kReady) {
        r.state = State::kDraining;  // leaves the picker now; gone once its requests finish
        endpoints_dirty_ = true;
      } else {
        gone(idx);
      }
    }
    for (const auto& [id, node_name] : plan.bind) {
      const control::Replica* placed = nullptr;
      for (const auto& x : cluster_.replicas)
        if (x.id == id) placed = &x;
      const control::Node* node = nullptr;
      for (const auto& n : cluster_.nodes)
        if (n.name == node_name) node = &n;
      if (placed && node) bind(*placed, *node, serviceIndex(placed->service));
    }
  }

  void gone(std::uint32_t idx) {
    auto& r = *replicas_[idx];
    if (r.state == State::kGone) return;
    r.state = State::kGone;
    replica_seconds_[{r.service, r.pool}] += now_ - r.bound_at;
    ++r.gen;  // a step in flight is void
    by_id_.erase(r.id);
    control::finished(cluster_, r.id, now_);
    std::erase(alive_, idx);
    endpoints_dirty_ = true;
    r.engine.reset();  // its memory: a day's run binds thousands of replicas
  }

  // Starts warm, as a service running before the trace began: minReplicas placed (elastic
  // nodes they need already provisioned) and Ready at time 0.
  void warmStart() {
    for (auto& s : services_) s.desired = s.autoscaler.min_replicas;
    const auto want = demands();
    for (int round = 0; round < 8; ++round) {
      act(control::plan(cluster_, want, 0), want);
      bool provisioning = false;
      for (auto& n : cluster_.nodes)
        if (!n.ready) {
          n.ready = true;
          n.ready_at = 0;
          provisioning = true;
        }
      if (!provisioning) break;
    }
    for (auto& r : replicas_) {
      r->state = State::kReady;
      r->endpoint_since = 0;
    }
    endpoints_dirty_ = true;
  }

  void tick() {
    control::advance(cluster_, now_);
    for (const auto idx : std::vector<std::uint32_t>(alive_)) {
      auto& r = *replicas_[idx];
      if (r.state == State::kStarting && now_ > r.bound_at && now_ >= r.ready_at) {
        r.state = State::kReady;
        r.endpoint_since = now_;
        endpoints_dirty_ = true;
      } else if (r.state == State::kDraining && r.inflight == 0) {
        gone(idx);
      }
    }
    for (std::size_t si = 0; si < services_.size(); ++si) {
      auto& s = services_[si];
      // PromQL sums of engine gauges over the service's Ready replicas.
      std::map<std::string, double> totals;
      int ready = 0;
      for (const auto idx : alive_) {
        auto* rp = replicas_[idx].get();
        if (rp->service != static_cast<int>(si) || rp->state != State::kReady) continue;
        ++ready;
        scrape(*rp);
        for (const auto& [metric, gauge] : s.prom_gauges) {
          auto g = rp->scraped.gauges.find(gauge);
          totals[metric] += g == rp->scraped.gauges.end() ? 0 : g->second;
        }
      }
      control::Observation obs;
      for (const auto& placed : cluster_.replicas) {
        if (placed.service != s.spec->meta.name || placed.terminating) continue;
        ++obs.current;
        auto it = by_id_.find(placed.id);
        if (it != by_id_.end() && replicas_[it->second]->state == State::kReady) {
          auto& r = *replicas_[it->second];
          obs.replicas.push_back(controller::observeMetrics(
              r.scraped.up ? &r.scraped : nullptr, r.inflight, s.autoscaler, totals, ready));
        } else {
          obs.replicas.push_back(control::ReplicaObservation{.ready = false});
        }
      }
      const auto d = control::decide(s.autoscaler, obs, now_, s.state);
      if (d.desired != obs.current) {
        ++s.scale_events;
        events_out_.push_back({now_, s.spec->meta.name, obs.current, d.desired,
                               controller::scalingReason(d, s.autoscaler)});
      }
      s.desired = d.desired;
    }
    const auto want = demands();
    act(control::plan(cluster_, want, now_), want);
    sample();
  }

  void sample() {
    auto& s = series_;
    const double dt = s.t.empty() ? 0 : now_ - s.t.back();
    s.t.push_back(now_);
    s.arrivals_per_s.push_back(dt > 0 ? static_cast<double>(arrived_since_) / dt : 0);
    arrived_since_ = 0;
    double waiting = 0, running = 0;
    std::map<std::string, double> ready, placed, nodes;
    for (const auto& p : cluster_.pools) ready[p.name] = placed[p.name] = nodes[p.name] = 0;
    for (const auto idx : alive_) {
      const auto* rp = replicas_[idx].get();
      waiting += static_cast<double>(rp->engine->numWaiting());
      running += static_cast<double>(rp->engine->numRunning());
      placed[rp->pool] += 1;
      if (rp->state == State::kReady) ready[rp->pool] += 1;
    }
    for (const auto& n : cluster_.nodes) nodes[n.pool] += 1;
    s.waiting.push_back(waiting);
    s.running.push_back(running);
    double cost = 0;
    for (const auto& [pool, c] : cluster_.cost) cost += c;
    s.cost.push_back(cost);
    for (const auto& [pool, v] : ready) s.ready_replicas[pool].push_back(v);
    for (const auto& [pool, v] : placed) s.replicas[pool].push_back(v);
    for (const auto& [pool, v] : nodes) {
      s.nodes[pool].push_back(v);
      peak_nodes_[pool] = std::max(peak_nodes_[pool], static_cast<int>(v));
    }
    for (std::size_t si = 0; si < services_.size(); ++si) {
      auto& svc = services_[si];
      s.desired[svc.spec->meta.name].push_back(svc.desired);
      const auto n = std::count_if(alive_.begin(), alive_.end(), [&](std::uint32_t i) {
        return replicas_[i]->service == static_cast<int>(si);
      });
      svc.peak = std::max(svc.peak, static_cast<int>(n));
    }
  }

  // --- Results --------------------------------------------------------------------------------

  RunResult finish() {
    control::advance(cluster_, now_);
    for (const auto idx : std::vector<std::uint32_t>(alive_)) gone(idx);
    RunResult out;
    out.end_s = now_;
    out.steps = steps_;
    out.events = std::move(events_out_);
    out.series = std::move(series_);

    auto summarize = [&](int service) {
      bench::Recorder rec;
      double first = HUGE_VAL, last = 0;
      for (std::size_t i = 0; i < records_.size(); ++i) {
        if (service >= 0 && record_service_[i] != service) continue;
        const auto& r = records_[i];
        first = std::min(first, r.scheduled);
        last = std::max(last, r.e2e >= 0 ? r.scheduled + r.e2e : r.scheduled);
        rec.add(r, {});
      }
      auto& itl = itls_[service >= 0 ? static_cast<std::size_t>(service) : itls_.size() - 1];
      rec.itls() = std::move(itl.first);
      auto sum = bench::summarize(rec, rec.records().empty() ? 0 : last - first, 0);
      bench::evaluateSlo(sum, options_.slo);
      return sum;
    };
    for (std::size_t i = 0; i < services_.size(); ++i) {
      ServiceResult sr;
      sr.name = services_[i].spec->meta.name;
      sr.summary = summarize(static_cast<int>(i));
      for (const auto& [key, secs] : replica_seconds_)
        if (key.first == static_cast<int>(i)) sr.replica_seconds[key.second] += secs;
      sr.peak_replicas = services_[i].peak;
      sr.scale_events = services_[i].scale_events;
      out.services.push_back(std::move(sr));
    }
    out.summary = summarize(-1);

    for (const auto& p : cluster_.pools) {
      PoolUsage u;
      u.name = p.name;
      u.elastic = p.elastic;
      for (const auto& [key, secs] : replica_seconds_)
        if (key.second == p.name) u.replica_seconds += secs;
      auto c = cluster_.cost.find(p.name);
      u.cost = c == cluster_.cost.end() ? 0 : c->second;
      u.node_hours = p.price_per_node_hour > 0 ? u.cost / p.price_per_node_hour : 0;
      u.peak_nodes = peak_nodes_[p.name];
      out.cost += u.cost;
      out.pools.push_back(u);
    }
    const double tokens =
        static_cast<double>(out.summary.prompt_tokens + out.summary.output_tokens);
    out.cost_per_million_tokens = tokens > 0 ? out.cost / tokens * 1e6 : 0;
    if (options_.keep_records) {
      out.records = std::move(records_);
      out.record_service = std::move(record_service_);
    }
    return out;
  }

  const api::Config& config_;
  const Options& options_;
  gateway::RoutingTable routing_;
  std::mt19937_64 rng_;
  std::unique_ptr<bench::Workload> workload_;
  std::optional<bench::Planned> next_;
  std::vector<ModelShare> models_;
  double model_weight_total_ = 0;
  gateway::PickConfig pick_;
  double scrape_ = 0.05, interval_ = 1;

  control::Cluster cluster_;
  std::vector<ServiceRun> services_;
  std::vector<std::unique_ptr<Replica>> replicas_;     // every replica ever bound, by index
  std::map<std::string, std::uint32_t> by_id_;         // live replicas by placement id
  std::vector<std::uint32_t> alive_;                   // replicas not gone, by index
  std::vector<std::vector<std::uint32_t>> endpoints_;  // per InferencePool (poolEndpoints)
  bool endpoints_dirty_ = true;

  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t seq_ = 0;
  double now_ = 0;
  bool arrivals_done_ = false;
  double last_arrival_ = -1;
  std::uint64_t arrived_since_ = 0;
  std::uint64_t steps_ = 0;
  std::size_t active_ = 0;

  std::vector<Live> live_;  // by engine sequence id
  std::vector<std::uint64_t> free_slots_;
  std::vector<engine::TokenEvent> tokens_;
  std::vector<bench::Record> records_;
  std::vector<int> record_service_;
  // Inter-token gaps per service, and (last) of every request: (samples, gaps seen).
  std::vector<std::pair<std::vector<double>, std::uint64_t>> itls_;
  std::map<std::pair<int, std::string>, double> replica_seconds_;  // (service, pool)
  std::map<std::string, int> peak_nodes_;
  std::vector<ScaleEvent> events_out_;
  Series series_;
};

}  // namespace

Result<EngineSpec> engineSpec(const api::InferenceService& s, const std::string& gpu) {
  const auto argv = api::expandCommand(s.command, 8000, s.served_model_name, "0");
  const auto program = argv.empty() ? std::string() : argv[0].substr(argv[0].rfind('/') + 1);
  const bool ours = program == "tidegate" && argv.size() >= 2 && argv[1] == "engine";
  // The command's flags as the live replica reads them; --gpu comes first so that the flags
  // the command gives override the profile, as they do live. Another engine (vLLM, llama.cpp)
  // is modelled by the profile alone.
  std::vector<std::string> args;
  if (!gpu.empty()) args = {"--gpu", gpu};
  bool startup_given = false;
  if (ours)
    for (auto it = argv.begin() + 2; it != argv.end(); ++it) {
      args.push_back(*it);
      startup_given |= it->rfind("--startup-ms", 0) == 0;
    }
  auto parsed = engine::parseEngineArgs(args);
  if (!parsed) return Error{where(s) + "spec.command: " + parsed.error().message};
  const auto& o = parsed.value();
  EngineSpec e;
  e.scheduler = o.scheduler;
  e.scheduler.perf = o.scheduler.perf.scaled(o.time_scale);
  // Cold start: the engine's --startup-ms when the command says it (or is ours and gets no
  // profile: tidegate engine starts at once); else the profile's load time.
  double startup = o.startup_ms / 1000.0;
  if (!startup_given && (!ours || !gpu.empty())) {
    auto profile = engine::findProfile(gpu.empty() ? engine::kDefaultProfile : gpu);
    if (profile) startup = (*profile)->load_s;
  }
  e.startup_s = std::isinf(o.time_scale) ? 0 : startup / o.time_scale;
  for (const auto& m : o.lora_modules) e.adapters.push_back(m.name);
  return e;
}

Status validate(const api::Config& config, const Options& options) {
  if (config.services.empty())
    return Error{config.file + ": no InferenceService to simulate (the simulation scales them)"};
  if (config.node_pools.empty())
    return Error{config.file + ": no NodePool: replicas need nodes to run on"};
  for (const auto& s : config.services) {
    auto e = engineSpec(s, options.gpu);
    if (!e) return e.error();
    for (const auto& [metric, q] : s.prometheus)
      if (summedGauge(q.query).empty())
        return Error{where(s) +
                     "the simulation can evaluate PromQL sources of the form sum(GAUGE) or "
                     "sum(GAUGE{...}) over its replicas, not '" +
                     q.query + "'"};
    for (const auto& [metric, target] : s.metric_targets) {
      const bool gauge = std::find(engine::kLoadGauges.begin(), engine::kLoadGauges.end(),
                                   metric) != engine::kLoadGauges.end();
      if (gauge || metric.rfind("prometheus:", 0) == 0 || metric == controller::kGatewayInflight)
        continue;
      std::string known;
      for (auto g : engine::kLoadGauges) known += std::string(g) + ", ";
      return Error{where(s) + "spec.metrics: " + metric +
                   " is not one a simulated engine exposes (" + known +
                   controller::kGatewayInflight + ")"};
    }
  }
  const auto models = modelsOf(config, options);
  if (models.empty()) return Error{"no model to send requests for (--model)"};
  gateway::RoutingTable routing(std::make_shared<api::Config>(config), {});
  for (const auto& m : models) {
    if (!(m.weight > 0)) return Error{"--model " + m.model + ": the weight must be positive"};
    auto r = routing.route("", m.model, 0, [&](std::size_t pool, const std::string& name) {
      for (const auto& s : config.services)
        if (api::selectorMatches(config.pools[pool].selector, s.meta.labels) &&
            s.served_model_name == name)
          return true;
      return false;
    });
    if (auto* err = std::get_if<gateway::RouteError>(&r))
      return Error{"--model " + m.model + ": " + err->message};
  }
  return Status::Ok();
}

RunResult run(const api::Config& config, const Options& options) {
  Simulation sim(config, options);
  return sim.run();
}

}  // namespace tidegate::sim
