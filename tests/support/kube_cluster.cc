#include "support/kube_cluster.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>

#include "common/http_client.h"
#include "support/process.h"

namespace tidegate::testing::kube {

namespace {

const char* kGpu = "nvidia.com/gpu";
const char* kGroupAnnotation = "tidegate.io/node-group";
const char* kDeletionCost = "controller.kubernetes.io/pod-deletion-cost";

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string rfc3339Now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::mt19937_64& rng() {
  thread_local std::mt19937_64 r(std::random_device{}());
  return r;
}

// apimachinery util/rand: the alphabet of generated names and of pod-template-hash.
const std::string kAlphabet = "bcdfghjklmnpqrstvwxz2456789";

std::string randomSuffix() {
  std::string s;
  for (int i = 0; i < 5; ++i) s += kAlphabet[rng()() % kAlphabet.size()];
  return s;
}

const bj::object* objAt(const bj::object* o, std::string_view k) {
  if (!o) return nullptr;
  const auto* v = o->if_contains(k);
  return v ? v->if_object() : nullptr;
}

const bj::array* arrAt(const bj::object* o, std::string_view k) {
  if (!o) return nullptr;
  const auto* v = o->if_contains(k);
  return v ? v->if_array() : nullptr;
}

std::string strAt(const bj::object* o, std::string_view k) {
  if (!o) return {};
  const auto* v = o->if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::int64_t intAt(const bj::object* o, std::string_view k, std::int64_t dflt) {
  if (!o) return dflt;
  const auto* v = o->if_contains(k);
  if (!v) return dflt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_string()) {
    try {
      return std::stoll(std::string(v->as_string()));
    } catch (...) {
      return dflt;
    }
  }
  return dflt;
}

const bj::object* meta(const bj::object& o) { return objAt(&o, "metadata"); }
std::string nameOf(const bj::object& o) { return strAt(meta(o), "name"); }
std::string nsOf(const bj::object& o) { return strAt(meta(o), "namespace"); }
std::string uidOf(const bj::object& o) { return strAt(meta(o), "uid"); }
bool terminating(const bj::object& o) {
  const auto* md = meta(o);
  return md && md->contains("deletionTimestamp");
}
std::string phaseOf(const bj::object& pod) { return strAt(objAt(&pod, "status"), "phase"); }
std::string nodeOf(const bj::object& pod) { return strAt(objAt(&pod, "spec"), "nodeName"); }

const bj::object* condition(const bj::object& o, std::string_view type) {
  if (const auto* cs = arrAt(objAt(&o, "status"), "conditions"))
    for (const auto& c : *cs)
      if (const auto* co = c.if_object(); co && strAt(co, "type") == type) return co;
  return nullptr;
}

bool conditionTrue(const bj::object& o, std::string_view type) {
  const auto* c = condition(o, type);
  return c && strAt(c, "status") == "True";
}

// nvidia.com/gpu a pod asks for: the sum over its containers of limits (else requests).
std::int64_t podGpus(const bj::object& pod) {
  std::int64_t total = 0;
  if (const auto* cs = arrAt(objAt(&pod, "spec"), "containers"))
    for (const auto& c : *cs) {
      const auto* res = objAt(c.if_object(), "resources");
      const auto* lim = objAt(res, "limits");
      const auto* req = objAt(res, "requests");
      total += lim && lim->contains(kGpu) ? intAt(lim, kGpu, 0) : intAt(req, kGpu, 0);
    }
  return total;
}

std::int64_t nodeGpus(const bj::object& node) {
  return intAt(objAt(objAt(&node, "status"), "allocatable"), kGpu, 0);
}

bool tolerates(const bj::object& taint, const bj::array* tolerations) {
  if (!tolerations) return false;
  for (const auto& tv : *tolerations) {
    const auto* t = tv.if_object();
    if (!t) continue;
    const auto effect = strAt(t, "effect");
    if (!effect.empty() && effect != strAt(&taint, "effect")) continue;
    const auto key = strAt(t, "key");
    const auto op = strAt(t, "operator");
    if (key.empty()) {
      if (op == "Exists") return true;  // an empty key with Exists tolerates everything
      continue;
    }
    if (key != strAt(&taint, "key")) continue;
    if (op == "Exists") return true;
    if ((op.empty() || op == "Equal") && strAt(t, "value") == strAt(&taint, "value")) return true;
  }
  return false;
}

// Why `node` cannot take `pod` with `free_gpus` left, in the scheduler's filter order
// (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit); "" when it can.
std::string unfit(const bj::object& node, const bj::object& pod, std::int64_t free_gpus) {
  const auto* spec = objAt(&pod, "spec");
  const auto* nspec = objAt(&node, "spec");
  if (const auto* u = nspec ? nspec->if_contains("unschedulable") : nullptr;
      u && u->is_bool() && u->as_bool())
    return "node(s) were unschedulable";
  if (!conditionTrue(node, "Ready"))
    return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }";
  if (const auto* taints = arrAt(nspec, "taints"))
    for (const auto& tv : *taints) {
      const auto* t = tv.if_object();
      if (!t) continue;
      const auto effect = strAt(t, "effect");
      if (effect != "NoSchedule" && effect != "NoExecute") continue;
      if (!tolerates(*t, arrAt(spec, "tolerations")))
        return "node(s) had untolerated taint {" + strAt(t, "key") + ": " + strAt(t, "value") + "}";
    }
  if (const auto* sel = objAt(spec, "nodeSelector")) {
    const auto* labels = objAt(meta(node), "labels");
    for (const auto& [k, v] : *sel) {
      const auto* have = labels ? labels->if_contains(k) : nullptr;
      if (!have || !(*have == v)) return "node(s) didn't match Pod's node affinity/selector";
    }
  }
  if (podGpus(pod) > free_gpus) return std::string("Insufficient ") + kGpu;
  return {};
}

bj::object readyCondition(bool ready) {
  return bj::object{{"type", "Ready"},
                    {"status", ready ? "True" : "False"},
                    {"reason", ready ? "KubeletReady" : "KubeletNotReady"},
                    {"message", ready ? "kubelet is posting ready status"
                                      : "container runtime network not ready"},
                    {"lastHeartbeatTime", rfc3339Now()},
                    {"lastTransitionTime", rfc3339Now()}};
}

bj::object makeNode(const std::string& name, bj::object labels, std::int64_t gpus,
                    const std::string& cpu, const std::string& memory, bj::array taints,
                    bool ready) {
  labels["kubernetes.io/hostname"] = name;
  labels["kubernetes.io/os"] = "linux";
  bj::object resources{
      {"cpu", cpu}, {"memory", memory}, {kGpu, std::to_string(gpus)}, {"pods", "110"}};
  if (!ready)
    taints.push_back(bj::object{{"key", "node.kubernetes.io/not-ready"}, {"effect", "NoSchedule"}});
  bj::object spec;
  if (!taints.empty()) spec["taints"] = taints;
  return bj::object{
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", bj::object{{"name", name}, {"labels", labels}}},
      {"spec", spec},
      {"status", bj::object{{"capacity", resources},
                            {"allocatable", resources},
                            {"conditions", bj::array{readyCondition(ready)}},
                            {"addresses",
                             bj::array{bj::object{{"type", "InternalIP"}, {"address", "127.0.0.1"}},
                                       bj::object{{"type", "Hostname"}, {"address", name}}}}}}};
}

// pod-template-hash: FNV-1a of the template, its decimal digits mapped onto the safe alphabet
// (apimachinery rand.SafeEncodeString, as ComputeHash does).
std::string templateHash(const bj::value& tmpl) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : bj::serialize(tmpl)) {
    h ^= c;
    h *= 16777619u;
  }
  std::string out;
  for (char c : std::to_string(h))
    out += kAlphabet[static_cast<unsigned char>(c) % kAlphabet.size()];
  return out;
}

const bj::object* controllerRef(const bj::object& o) {
  if (const auto* refs = arrAt(meta(o), "ownerReferences"))
    for (const auto& r : *refs)
      if (const auto* ro = r.if_object()) {
        const auto* c = ro->if_contains("controller");
        if (c && c->is_bool() && c->as_bool()) return ro;
      }
  return nullptr;
}

int phaseOrdinal(const std::string& phase) {  // podPhaseToOrdinal
  if (phase == "Pending") return 0;
  if (phase == "Running") return 2;
  return 1;  // Unknown (and anything else)
}

int maxRestarts(const bj::object& pod) {
  int m = 0;
  if (const auto* cs = arrAt(objAt(&pod, "status"), "containerStatuses"))
    for (const auto& c : *cs)
      m = std::max<int>(m, static_cast<int>(intAt(c.if_object(), "restartCount", 0)));
  return m;
}

std::string podKey(const std::string& ns, const std::string& name) { return ns + "/" + name; }

template <class T>
void logFailure(const char* what, const ApiResult<T>& r) {
  if (!r) spdlog::debug("kube cluster: {}: {} {}", what, r.error().code, r.error().message);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// EngineRuntime
// ---------------------------------------------------------------------------------------------
EngineRuntime::EngineRuntime() = default;

EngineRuntime::~EngineRuntime() {
  std::map<std::string, std::unique_ptr<ChildProcess>> procs;
  {
    std::lock_guard lk(mu_);
    procs.swap(procs_);
  }
  for (auto& [uid, p] : procs) p->stop(SIGTERM, std::chrono::seconds(5));
}

Status EngineRuntime::start(const bj::object& pod, const std::string& ip) {
  const auto* cs = arrAt(objAt(&pod, "spec"), "containers");
  if (!cs || cs->empty() || !cs->at(0).is_object()) return Error{"the pod has no containers"};
  const auto& c = cs->at(0).as_object();
  std::vector<std::string> argv;
  for (const char* field : {"command", "args"})
    if (const auto* a = arrAt(&c, field))
      for (const auto& w : *a)
        if (w.is_string()) argv.emplace_back(w.as_string());
  if (argv.empty() || argv[0] != "tidegate")
    return Error{"EngineRuntime runs only `tidegate ...` commands, not " +
                 (argv.empty() ? std::string("an empty command") : "`" + argv[0] + "`")};
  argv[0] = TIDEGATE_BINARY;
  argv.insert(argv.end(), {"--host", ip});
  auto proc = std::make_unique<ChildProcess>(argv);
  std::lock_guard lk(mu_);
  started_.push_back(argv);
  procs_[uidOf(pod)] = std::move(proc);
  return {};
}

void EngineRuntime::stop(const std::string& uid, double grace_s) {
  std::unique_ptr<ChildProcess> p;
  {
    std::lock_guard lk(mu_);
    auto it = procs_.find(uid);
    if (it == procs_.end()) return;
    p = std::move(it->second);
    procs_.erase(it);
  }
  const auto grace = std::chrono::milliseconds(static_cast<std::int64_t>(grace_s * 1000));
  if (p->stop(SIGTERM, grace) == -1) p->stop(SIGKILL, std::chrono::seconds(5));
}

bool EngineRuntime::running(const std::string& uid) {
  std::lock_guard lk(mu_);
  auto it = procs_.find(uid);
  return it != procs_.end() && it->second->running();
}

std::vector<std::vector<std::string>> EngineRuntime::started() const {
  std::lock_guard lk(mu_);
  return started_;
}

// ---------------------------------------------------------------------------------------------
// Loops
// ---------------------------------------------------------------------------------------------
class Cluster::Loop {
 public:
  Loop(std::string name, double tick_s, std::function<void()> fn)
      : name_(std::move(name)), tick_(tick_s), fn_(std::move(fn)), thread_([this] { run(); }) {}
  ~Loop() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    std::unique_lock lk(mu_);
    while (!stop_) {
      lk.unlock();
      try {
        fn_();
      } catch (const std::exception& e) {
        spdlog::warn("kube cluster {}: {}", name_, e.what());
      }
      lk.lock();
      cv_.wait_for(lk, std::chrono::duration<double>(tick_), [&] { return stop_; });
    }
  }

  std::string name_;
  double tick_;
  std::function<void()> fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

// ---------------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------------
Cluster::Cluster(ApiServer& api, ClusterOptions options)
    : api_(api), options_(std::move(options)), runtime_(options_.runtime) {
  if (!runtime_) runtime_ = std::make_shared<EngineRuntime>();
  const double tick = options_.tick_s;
  if (options_.deployment_controller)
    loops_.push_back(std::make_unique<Loop>("deployments", tick, [this] { deploymentPass(); }));
  if (options_.scheduler)
    loops_.push_back(std::make_unique<Loop>("scheduler", tick, [this] { schedulerPass(); }));
  if (options_.kubelet)
    loops_.push_back(std::make_unique<Loop>("kubelet", tick, [this] { kubeletPass(); }));
  if (!options_.node_groups.empty())
    loops_.push_back(std::make_unique<Loop>("autoscaler", tick, [this] { autoscalerPass(); }));
}

Cluster::~Cluster() {
  loops_.clear();  // joins every controller thread
  std::map<std::string, PodState> pods;
  std::map<std::string, std::future<void>> terminations;
  {
    std::lock_guard lk(mu_);
    pods.swap(pods_);
    terminations.swap(terminations_);
  }
  terminations.clear();  // waits for the pods still terminating
  for (const auto& [uid, st] : pods) runtime_->stop(uid, 5);
}

ApiResult<bj::object> Cluster::addNode(const std::string& name, bj::object labels,
                                       std::int64_t gpus, bj::array taints) {
  return api_.create("v1", "nodes", "",
                     makeNode(name, std::move(labels), gpus, "8", "32Gi", std::move(taints), true));
}

void Cluster::setProbeOverride(const std::string& ns, const std::string& pod,
                               std::optional<bool> ready) {
  std::lock_guard lk(mu_);
  if (ready)
    overrides_[podKey(ns, pod)] = *ready;
  else
    overrides_.erase(podKey(ns, pod));
}

std::string Cluster::podIp(const std::string& ns, const std::string& pod) const {
  std::lock_guard lk(mu_);
  for (const auto& [uid, st] : pods_)
    if (st.ns == ns && st.name == pod) return st.ip;
  return {};
}

// --- deployment controller ---

void Cluster::deploymentPass() {
  auto deps = api_.list("apps/v1", "deployments");
  auto pods = api_.list("v1", "pods");
  if (!deps || !pods) return;
  std::set<std::string> dep_uids;
  for (const auto& d : *deps) dep_uids.insert(uidOf(d));
  // The garbage collector: pods whose controlling Deployment is gone.
  for (const auto& p : *pods) {
    const auto* ref = controllerRef(p);
    if (ref && strAt(ref, "kind") == "Deployment" && !dep_uids.count(strAt(ref, "uid")) &&
        !terminating(p))
      logFailure("garbage-collect pod", api_.remove("v1", "pods", nsOf(p), nameOf(p)));
  }
  for (const auto& d : *deps) {
    const std::string ns = nsOf(d), name = nameOf(d), uid = uidOf(d);
    const auto* spec = objAt(&d, "spec");
    const std::int64_t want = intAt(spec, "replicas", 1);
    const auto* tmpl_v = spec ? spec->if_contains("template") : nullptr;
    if (!tmpl_v || !tmpl_v->is_object()) continue;
    const bj::object& tmpl = tmpl_v->as_object();
    const std::string hash = templateHash(tmpl);
    std::vector<const bj::object*> active, cur, old;
    for (const auto& p : *pods) {
      const auto* ref = controllerRef(p);
      if (!ref || strAt(ref, "uid") != uid || nsOf(p) != ns) continue;
      if (terminating(p) || phaseOf(p) == "Succeeded" || phaseOf(p) == "Failed") continue;
      active.push_back(&p);
      (strAt(objAt(meta(p), "labels"), "pod-template-hash") == hash ? cur : old).push_back(&p);
    }
    auto ready = [](const std::vector<const bj::object*>& v) {
      return static_cast<std::int64_t>(std::count_if(
          v.begin(), v.end(), [](const bj::object* p) { return conditionTrue(*p, "Ready"); }));
    };
    const auto n = static_cast<std::int64_t>(cur.size());
    if (n < want) {
      for (std::int64_t i = n; i < want; ++i) {
        bj::object labels;
        if (const auto* l = objAt(objAt(&tmpl, "metadata"), "labels")) labels = *l;
        labels["pod-template-hash"] = hash;
        bj::object md{{"name", name + "-" + hash + "-" + randomSuffix()},
                      {"namespace", ns},
                      {"labels", labels},
                      {"ownerReferences", bj::array{bj::object{{"apiVersion", "apps/v1"},
                                                               {"kind", "Deployment"},
                                                               {"name", name},
                                                               {"uid", uid},
                                                               {"controller", true},
                                                               {"blockOwnerDeletion", true}}}}};
        if (const auto* a = objAt(objAt(&tmpl, "metadata"), "annotations")) md["annotations"] = *a;
        bj::object pod{{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", md}};
        if (const auto* s = objAt(&tmpl, "spec")) pod["spec"] = *s;
        logFailure("create pod", api_.create("v1", "pods", ns, std::move(pod)));
      }
    } else if (n > want) {
      // ActivePodsWithRanks: rank = pods of this owner on the same node.
      std::map<std::string, int> per_node;
      for (const auto* p : active) ++per_node[nodeOf(*p)];
      auto less = [&](const bj::object* a, const bj::object* b) {
        const auto na = nodeOf(*a), nb = nodeOf(*b);
        if (na != nb && (na.empty() || nb.empty())) return na.empty();
        const int pa = phaseOrdinal(phaseOf(*a)), pb = phaseOrdinal(phaseOf(*b));
        if (pa != pb) return pa < pb;
        const bool ra = conditionTrue(*a, "Ready"), rb = conditionTrue(*b, "Ready");
        if (ra != rb) return !ra;
        const auto ca = intAt(objAt(meta(*a), "annotations"), kDeletionCost, 0);
        const auto cb = intAt(objAt(meta(*b), "annotations"), kDeletionCost, 0);
        if (ca != cb) return ca < cb;
        const int ka = per_node[na], kb = per_node[nb];
        if (ka != kb) return ka > kb;
        if (ra && rb) {
          const auto ta = strAt(condition(*a, "Ready"), "lastTransitionTime");
          const auto tb = strAt(condition(*b, "Ready"), "lastTransitionTime");
          if (ta != tb) return ta > tb;
        }
        const int xa = maxRestarts(*a), xb = maxRestarts(*b);
        if (xa != xb) return xa > xb;
        const auto ta = strAt(meta(*a), "creationTimestamp"),
                   tb = strAt(meta(*b), "creationTimestamp");
        if (ta != tb) return ta > tb;
        return nameOf(*a) < nameOf(*b);
      };
      std::vector<const bj::object*> ranked = cur;
      std::sort(ranked.begin(), ranked.end(), less);
      for (std::int64_t i = 0; i < n - want; ++i)
        logFailure("delete pod", api_.remove("v1", "pods", ns, nameOf(*ranked[i])));
    }
    if (!old.empty() && ready(cur) >= want)
      for (const auto* p : old)
        logFailure("delete old pod", api_.remove("v1", "pods", ns, nameOf(*p)));

    const std::int64_t available = ready(active);
    bj::object status{{"observedGeneration", intAt(meta(d), "generation", 1)},
                      {"replicas", static_cast<std::int64_t>(active.size())},
                      {"updatedReplicas", n},
                      {"readyReplicas", available},
                      {"availableReplicas", available},
                      {"unavailableReplicas", std::max<std::int64_t>(0, want - available)}};
    const auto* have = objAt(&d, "status");
    bool same = have != nullptr;
    for (const auto& [k, v] : status)
      if (same) same = have->contains(k) && intAt(have, k, -1) == v.as_int64();
    if (!same)
      logFailure("deployment status",
                 api_.patch("apps/v1", "deployments", ns, name, PatchType::kMerge,
                            bj::object{{"status", status}}, "status"));
  }
}

// --- scheduler ---

void Cluster::schedulerPass() {
  auto nodes = api_.list("v1", "nodes");
  auto pods = api_.list("v1", "pods");
  if (!nodes || !pods) return;
  std::map<std::string, std::int64_t> used;
  std::vector<const bj::object*> pending;
  for (const auto& p : *pods) {
    const auto node = nodeOf(p);
    if (!node.empty()) {
      if (phaseOf(p) != "Succeeded" && phaseOf(p) != "Failed") used[node] += podGpus(p);
      continue;
    }
    const auto sched = strAt(objAt(&p, "spec"), "schedulerName");
    if (!terminating(p) && (sched.empty() || sched == "default-scheduler")) pending.push_back(&p);
  }
  std::sort(pending.begin(), pending.end(), [](const bj::object* a, const bj::object* b) {
    const auto ta = strAt(meta(*a), "creationTimestamp"), tb = strAt(meta(*b), "creationTimestamp");
    return ta != tb ? ta < tb : nameOf(*a) < nameOf(*b);
  });
  for (const auto* p : pending) {
    std::map<std::string, int> reasons;
    const bj::object* best = nullptr;
    std::int64_t best_free = -1;
    for (const auto& n : *nodes) {
      const std::int64_t free = nodeGpus(n) - used[nameOf(n)];
      if (auto why = unfit(n, *p, free); !why.empty()) {
        ++reasons[why];
      } else if (free > best_free || (free == best_free && nameOf(n) < nameOf(*best))) {
        best = &n;
        best_free = free;
      }
    }
    const std::string ns = nsOf(*p), name = nameOf(*p);
    if (best) {
      auto bound = api_.patch("v1", "pods", ns, name, PatchType::kMerge,
                              bj::object{{"spec", bj::object{{"nodeName", nameOf(*best)}}}});
      logFailure("bind", bound);
      if (!bound) continue;
      used[nameOf(*best)] += podGpus(*p);
      bj::object cond{{"type", "PodScheduled"},
                      {"status", "True"},
                      {"lastProbeTime", nullptr},
                      {"lastTransitionTime", rfc3339Now()}};
      logFailure("scheduled condition",
                 api_.patch("v1", "pods", ns, name, PatchType::kStrategic,
                            bj::object{{"status", bj::object{{"conditions", bj::array{cond}}}}},
                            "status"));
      continue;
    }
    std::string message;
    if (nodes->empty()) {
      message = "no nodes available to schedule pods";
    } else {
      std::vector<std::string> hist;
      for (const auto& [why, count] : reasons) hist.push_back(std::to_string(count) + " " + why);
      std::sort(hist.begin(), hist.end());
      message = "0/" + std::to_string(nodes->size()) + " nodes are available:";
      for (std::size_t i = 0; i < hist.size(); ++i) message += (i ? ", " : " ") + hist[i];
      message += ".";
    }
    const auto* have = condition(*p, "PodScheduled");
    if (have && strAt(have, "status") == "False" && strAt(have, "reason") == "Unschedulable" &&
        strAt(have, "message") == message)
      continue;
    bj::object cond{{"type", "PodScheduled"},    {"status", "False"},
                    {"reason", "Unschedulable"}, {"message", message},
                    {"lastProbeTime", nullptr},  {"lastTransitionTime", rfc3339Now()}};
    logFailure(
        "unschedulable condition",
        api_.patch("v1", "pods", ns, name, PatchType::kStrategic,
                   bj::object{{"status", bj::object{{"conditions", bj::array{cond}}}}}, "status"));
  }
}

// --- kubelet ---

namespace {

// The status of a running pod as the kubelet reports it.
bj::object runningStatus(const bj::object& pod, const std::string& ip, bool ready, int restarts,
                         const std::string& started_at, const bj::object* last_state) {
  bj::array statuses;
  if (const auto* cs = arrAt(objAt(&pod, "spec"), "containers"))
    for (const auto& c : *cs) {
      const auto* co = c.if_object();
      bj::object st{{"name", strAt(co, "name")},
                    {"image", strAt(co, "image")},
                    {"imageID", ""},
                    {"containerID", "tidegate://" + uidOf(pod) + "/" + strAt(co, "name")},
                    {"ready", ready},
                    {"started", true},
                    {"restartCount", restarts},
                    {"state", bj::object{{"running", bj::object{{"startedAt", started_at}}}}}};
      if (last_state) st["lastState"] = *last_state;
      statuses.push_back(st);
    }
  auto cond = [&](const char* type, bool ok) {
    bj::object c{{"type", type},
                 {"status", ok ? "True" : "False"},
                 {"lastProbeTime", nullptr},
                 {"lastTransitionTime", rfc3339Now()}};
    if (!ok) {
      c["reason"] = "ContainersNotReady";
      c["message"] = "containers with unready status: [" +
                     strAt(arrAt(objAt(&pod, "spec"), "containers")
                               ? arrAt(objAt(&pod, "spec"), "containers")->at(0).if_object()
                               : nullptr,
                           "name") +
                     "]";
    }
    return c;
  };
  return bj::object{{"phase", "Running"},
                    {"hostIP", "127.0.0.1"},
                    {"hostIPs", bj::array{bj::object{{"ip", "127.0.0.1"}}}},
                    {"podIP", ip},
                    {"podIPs", bj::array{bj::object{{"ip", ip}}}},
                    {"startTime", started_at},
                    {"conditions", bj::array{cond("Initialized", true),
                                             cond("ContainersReady", ready), cond("Ready", ready)}},
                    {"containerStatuses", statuses}};
}

// The readiness probe's URL parts, or nullopt when the first container has no httpGet probe.
struct Probe {
  std::string path;
  std::uint16_t port;
  int failure_threshold, success_threshold;
};
std::optional<Probe> probeOf(const bj::object& pod) {
  const auto* cs = arrAt(objAt(&pod, "spec"), "containers");
  if (!cs || cs->empty()) return std::nullopt;
  const auto* c = cs->at(0).if_object();
  const auto* rp = objAt(c, "readinessProbe");
  const auto* get = objAt(rp, "httpGet");
  if (!get) return std::nullopt;
  Probe p;
  p.path = strAt(get, "path");
  if (p.path.empty()) p.path = "/";
  const auto* port = get->if_contains("port");
  std::int64_t number = 0;
  if (port && port->is_int64()) {
    number = port->as_int64();
  } else if (port && port->is_string()) {
    for (const auto& cv : *cs)
      if (const auto* ports = arrAt(cv.if_object(), "ports"))
        for (const auto& pv : *ports)
          if (strAt(pv.if_object(), "name") == port->as_string())
            number = intAt(pv.if_object(), "containerPort", 0);
  }
  if (number <= 0 || number > 65535) return std::nullopt;
  p.port = static_cast<std::uint16_t>(number);
  p.failure_threshold = static_cast<int>(intAt(rp, "failureThreshold", 3));
  p.success_threshold = static_cast<int>(intAt(rp, "successThreshold", 1));
  return p;
}

}  // namespace

void Cluster::kubeletPass() {
  auto pods = api_.list("v1", "pods");
  auto nodes = api_.list("v1", "nodes");
  if (!pods || !nodes) return;
  std::set<std::string> node_names;
  for (const auto& n : *nodes) node_names.insert(nameOf(n));
  std::set<std::string> seen;
  const double t = now();
  for (const auto& p : *pods) {
    const std::string node = nodeOf(p);
    if (node.empty() || !node_names.count(node)) continue;
    const std::string uid = uidOf(p), ns = nsOf(p), name = nameOf(p);
    seen.insert(uid);
    PodState st;
    {
      std::lock_guard lk(mu_);
      auto [it, fresh] = pods_.try_emplace(uid);
      if (fresh) {
        it->second.ns = ns;
        it->second.name = name;
      }
      st = it->second;
    }
    auto save = [&] {
      std::lock_guard lk(mu_);
      pods_[uid] = st;
    };
    if (terminating(p)) {
      // The pod termination sequence: SIGTERM at once (no preStop hooks here), SIGKILL once the
      // grace period has passed, then the deletion is confirmed (grace 0). The stop runs on a
      // thread of its own, as the kubelet's per-pod workers do: the other pods keep being
      // started, probed and restarted while this one drains. Its IP stays taken until it exits.
      bool stopped = false;
      {
        std::lock_guard lk(mu_);
        auto it = terminations_.find(uid);
        if (it == terminations_.end()) {
          const double grace =
              static_cast<double>(intAt(meta(p), "deletionGracePeriodSeconds", 30));
          terminations_.emplace(uid, std::async(std::launch::async, [rt = runtime_, uid, grace] {
                                  rt->stop(uid, grace);
                                }));
        } else if (it->second.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
          terminations_.erase(it);
          if (!st.ip.empty()) ips_in_use_.erase(std::stoi(st.ip.substr(st.ip.rfind('.') + 1)));
          pods_.erase(uid);
          stopped = true;
        }
      }
      if (stopped) logFailure("confirm deletion", api_.remove("v1", "pods", ns, name, 0));
      continue;
    }
    if (st.failed) continue;
    if (!st.started) {
      if (st.ip.empty()) {
        std::lock_guard lk(mu_);
        int n = 2;
        while (ips_in_use_.count(n)) ++n;
        if (n > 254) continue;
        ips_in_use_.insert(n);
        st.ip = "127.0.0." + std::to_string(n);
        pods_[uid] = st;
      }
      if (auto s = runtime_->start(p, st.ip); !s) {
        st.failed = true;
        save();
        bj::array statuses;
        if (const auto* cs = arrAt(objAt(&p, "spec"), "containers"))
          for (const auto& c : *cs)
            statuses.push_back(bj::object{
                {"name", strAt(c.if_object(), "name")},
                {"ready", false},
                {"restartCount", 0},
                {"image", strAt(c.if_object(), "image")},
                {"imageID", ""},
                {"state", bj::object{{"waiting", bj::object{{"reason", "RunContainerError"},
                                                            {"message", s.message()}}}}}});
        logFailure("start failure status",
                   api_.patch("v1", "pods", ns, name, PatchType::kMerge,
                              bj::object{{"status", bj::object{{"containerStatuses", statuses},
                                                               {"hostIP", "127.0.0.1"}}}},
                              "status"));
        continue;
      }
      st.started = true;
      st.ready = false;
      st.next_probe = t;
      save();
      logFailure("running status",
                 api_.patch("v1", "pods", ns, name, PatchType::kMerge,
                            bj::object{{"status", runningStatus(p, st.ip, false, st.restarts,
                                                                rfc3339Now(), nullptr)}},
                            "status"));
      continue;
    }
    // Running: the process, then readiness.
    const std::string started_at = strAt(objAt(&p, "status"), "startTime");
    if (!runtime_->running(uid)) {
      ++st.restarts;
      st.ready = false;
      st.probe_successes = st.probe_failures = 0;
      const bj::object last{
          {"terminated",
           bj::object{{"exitCode", 1}, {"reason", "Error"}, {"finishedAt", rfc3339Now()}}}};
      const auto policy = strAt(objAt(&p, "spec"), "restartPolicy");
      if (policy.empty() || policy == "Always") {
        runtime_->stop(uid, 0);
        if (auto s = runtime_->start(p, st.ip); !s) st.failed = true;
      } else {
        st.failed = true;
      }
      save();
      logFailure("restart status",
                 api_.patch("v1", "pods", ns, name, PatchType::kMerge,
                            bj::object{{"status", runningStatus(p, st.ip, false, st.restarts,
                                                                started_at, &last)}},
                            "status"));
      continue;
    }
    if (t < st.next_probe) continue;
    st.next_probe = t + options_.probe_period_s;
    std::optional<bool> forced;
    {
      std::lock_guard lk(mu_);
      if (auto it = overrides_.find(podKey(ns, name)); it != overrides_.end()) forced = it->second;
    }
    bool ready = st.ready;
    if (forced) {
      ready = *forced;
    } else if (auto probe = probeOf(p)) {
      auto r =
          http::fetch(st.ip, probe->port, {.method = "GET", .target = probe->path, .timeout_s = 1});
      const bool ok = r.ok() && r->status >= 200 && r->status < 400;
      if (ok) {
        st.probe_failures = 0;
        if (++st.probe_successes >= probe->success_threshold) ready = true;
      } else {
        st.probe_successes = 0;
        // Not yet ready: one failure keeps it not ready; a ready pod needs failureThreshold.
        if (++st.probe_failures >= probe->failure_threshold || !st.ready) ready = false;
      }
    } else {
      ready = true;
    }
    const bool changed = ready != st.ready || conditionTrue(p, "Ready") != ready;
    st.ready = ready;
    save();
    if (changed)
      logFailure("readiness status",
                 api_.patch("v1", "pods", ns, name, PatchType::kMerge,
                            bj::object{{"status", runningStatus(p, st.ip, ready, st.restarts,
                                                                started_at, nullptr)}},
                            "status"));
  }
  // Pods removed without the kubelet (forced deletions): stop them, free their IP.
  std::vector<std::string> gone;
  {
    std::lock_guard lk(mu_);
    for (auto it = pods_.begin(); it != pods_.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      if (!it->second.ip.empty())
        ips_in_use_.erase(std::stoi(it->second.ip.substr(it->second.ip.rfind('.') + 1)));
      gone.push_back(it->first);
      it = pods_.erase(it);
    }
  }
  for (const auto& uid : gone) runtime_->stop(uid, 0);
}

// --- node autoscaler ---

void Cluster::autoscalerPass() {
  auto nodes = api_.list("v1", "nodes");
  auto pods = api_.list("v1", "pods");
  if (!nodes || !pods) return;
  const double t = now();
  auto& groups = options_.node_groups;
  std::map<std::string, std::vector<const bj::object*>> members;
  for (const auto& n : *nodes) {
    const auto g = strAt(objAt(meta(n), "annotations"), kGroupAnnotation);
    if (!g.empty()) members[g].push_back(&n);
  }
  auto addNode = [&](const NodeGroup& g) {
    const std::string name = g.name + "-" + randomSuffix();
    bj::object node = makeNode(name, g.labels, g.gpus, g.cpu, g.memory, g.taints, false);
    node["metadata"].as_object()["annotations"] = bj::object{{kGroupAnnotation, g.name}};
    auto r = api_.create("v1", "nodes", "", std::move(node));
    logFailure("add node", r);
    if (r) node_ready_at_[name] = t + g.provisioning_delay_s;
    return r.ok();
  };
  // Nodes coming up become Ready.
  for (const auto& g : groups)
    for (const auto* n : members[g.name]) {
      if (conditionTrue(*n, "Ready")) continue;
      auto it = node_ready_at_.find(nameOf(*n));
      if (it != node_ready_at_.end() && t < it->second) continue;
      logFailure("node ready", api_.patch("v1", "nodes", "", nameOf(*n), PatchType::kMerge,
                                          bj::object{{"spec", bj::object{{"taints", g.taints}}}}));
      logFailure(
          "node ready status",
          api_.patch(
              "v1", "nodes", "", nameOf(*n), PatchType::kStrategic,
              bj::object{{"status", bj::object{{"conditions", bj::array{readyCondition(true)}}}}},
              "status"));
      node_ready_at_.erase(nameOf(*n));
    }
  std::map<std::string, int> count;
  for (const auto& g : groups) count[g.name] = static_cast<int>(members[g.name].size());
  for (const auto& g : groups)
    while (count[g.name] < g.min && addNode(g)) ++count[g.name];

  // Scale-up: unschedulable pods that fit neither a node that is already there (a node that
  // turned Ready since the scheduler last looked — cluster-autoscaler's "filter out schedulable
  // pods") nor one still coming up, and that a group's template fits.
  struct Slot {
    const NodeGroup* group;  // null: a Ready node, checked as it is
    const bj::object* node;
    std::int64_t free;
  };
  std::map<std::string, std::int64_t> used;
  for (const auto& p : *pods)
    if (!nodeOf(p).empty() && phaseOf(p) != "Succeeded" && phaseOf(p) != "Failed")
      used[nodeOf(p)] += podGpus(p);
  std::vector<Slot> slots;
  for (const auto& n : *nodes) {
    if (!conditionTrue(n, "Ready")) continue;
    slots.push_back({nullptr, &n, nodeGpus(n) - used[nameOf(n)]});
  }
  for (const auto& g : groups)
    for (const auto* n : members[g.name])
      if (!conditionTrue(*n, "Ready")) slots.push_back({&g, nullptr, g.gpus});
  for (const auto& p : *pods) {
    if (!nodeOf(p).empty() || terminating(p)) continue;
    const auto* c = condition(p, "PodScheduled");
    if (!c || strAt(c, "status") != "False" || strAt(c, "reason") != "Unschedulable") continue;
    auto fits = [&](const NodeGroup& g, std::int64_t free) {
      bj::object tmpl = makeNode("template", g.labels, g.gpus, g.cpu, g.memory, g.taints, true);
      return unfit(tmpl, p, free).empty();
    };
    bool placed = false;
    for (auto& s : slots)
      if (s.group ? fits(*s.group, s.free) : unfit(*s.node, p, s.free).empty()) {
        s.free -= podGpus(p);
        placed = true;
        break;
      }
    if (placed) continue;
    for (const auto& g : groups)
      if (count[g.name] < g.max && fits(g, g.gpus) && addNode(g)) {
        ++count[g.name];
        slots.push_back({&g, nullptr, g.gpus - podGpus(p)});
        break;
      }
  }

  // Scale-down: empty nodes past the unneeded time, down to min.
  std::map<std::string, int> pods_on;
  for (const auto& p : *pods)
    if (!nodeOf(p).empty() && phaseOf(p) != "Succeeded" && phaseOf(p) != "Failed")
      ++pods_on[nodeOf(p)];
  for (const auto& g : groups)
    for (const auto* n : members[g.name]) {
      const auto name = nameOf(*n);
      if (!conditionTrue(*n, "Ready") || pods_on[name] > 0) {
        node_empty_since_.erase(name);
        continue;
      }
      auto [it, fresh] = node_empty_since_.try_emplace(name, t);
      if (t - it->second < g.scale_down_unneeded_s || count[g.name] <= g.min) continue;
      bj::array taints = g.taints;
      taints.push_back(bj::object{{"key", "ToBeDeletedByClusterAutoscaler"},
                                  {"value", std::to_string(static_cast<long>(std::time(nullptr)))},
                                  {"effect", "NoSchedule"}});
      logFailure("taint node", api_.patch("v1", "nodes", "", name, PatchType::kMerge,
                                          bj::object{{"spec", bj::object{{"taints", taints}}}}));
      auto r = api_.remove("v1", "nodes", "", name);
      logFailure("remove node", r);
      if (r) {
        --count[g.name];
        node_empty_since_.erase(name);
      }
    }
}

}  // namespace tidegate::testing::kube
