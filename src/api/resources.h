#pragma once
// The resource kinds tidegate reads from its configuration, as plain values. The ecosystem's own
// kinds are accepted as their authors write them, and several of them map onto one value here:
//   InferencePool          inference.networking.x-k8s.io/v1alpha1|v1alpha2,
//                          inference.networking.k8s.io/v1
//   InferenceModel         inference.networking.x-k8s.io/v1alpha1|v1alpha2, and the rules of
//                          InferenceModelRewrite (inference.networking.x-k8s.io/v1alpha2,
//                          llm-d.ai/v1alpha2): one InferenceModel per matched model name
//   InferenceObjective     inference.networking.x-k8s.io/v1alpha2, llm-d.ai/v1alpha2
//   HTTPRoute              gateway.networking.k8s.io/v1, and LLMRoute (istio.alibabacloud.com/v1)
//   InferenceService       tidegate.io/v1alpha1, and KServe's (serving.kserve.io/v1beta1) with
//                          the autoscaling/v2 HorizontalPodAutoscaler beside it
//   ResourcePolicy         scheduling.alibabacloud.com/v1alpha1
// and tidegate's own kinds under tidegate.io/v1alpha1: Gateway, Endpoints, NodePool, UsagePlan,
// APIKey. Validated once at load (api/loader.h), then shared immutably.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/autoscaler.h"
#include "control/placement.h"

namespace tidegate::api {

using Labels = std::map<std::string, std::string>;

struct Source {
  std::string file;
  int document = 0;  // 1-based index of the YAML document in the file
  int line = 0;      // 1-based line of the document's start
};

struct ObjectMeta {
  std::string name;
  std::string ns = "default";  // metadata.namespace, default "default"
  Labels labels;
};

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  bool tls = false;  // reached over HTTPS (Endpoints spec.scheme: https)
  std::string str() const { return host + ":" + std::to_string(port); }
  // Identity of an upstream: the scheme counts (an endpoint moved to https is a new one).
  std::string key() const { return (tls ? "https://" : "") + str(); }
};

// True if every selector entry is among `labels` (an empty selector matches nothing).
bool selectorMatches(const Labels& selector, const Labels& labels);

// Shell-style glob: `*` any run of characters, `?` one character, everything else literal.
bool globMatches(std::string_view pattern, std::string_view text);

struct InferencePool {
  ObjectMeta meta;
  Source source;
  std::string api_version;
  Labels selector;  // v1alpha*: spec.selector; v1: spec.selector.matchLabels
  // v1alpha*: {spec.targetPortNumber}; v1: spec.targetPorts[].number (1 to 8, distinct). A
  // selected address without a port of its own (a pod) is one endpoint per port, as the
  // Inference Extension's picker treats each podIP:port.
  std::vector<std::uint16_t> target_ports;
  // v1 spec.endpointPickerRef / v1alpha* spec.extensionRef, as written ("Service epp:9002,
  // FailClose"); empty when absent. Accepted and never called: tidegate is the picker.
  std::string endpoint_picker;
};

enum class Criticality { kCritical, kStandard, kSheddable };
const char* criticalityName(Criticality c);
// An InferenceObjective's priority as a criticality: negative priorities are sheddable (the
// Inference Extension's rule), 0 (the default) is Standard, positive ones Critical.
Criticality criticalityOf(int priority);

struct TargetModel {
  std::string name;
  int weight = 1;  // default 1 when absent
};

// A model name a pool answers for, and how: the model unchanged, or a target model drawn by
// weight. Read from an InferenceModel, or from one rule of an InferenceModelRewrite (one value
// per model name the rule matches, or one `fallback` for a rule without matches).
struct InferenceModel {
  ObjectMeta meta;
  Source source;
  std::string kind = "InferenceModel";  // or "InferenceModelRewrite" (messages, check)
  int rule = -1;                        // InferenceModelRewrite: the index in spec.rules
  std::string model_name;               // empty for a fallback
  // InferenceModelRewrite rule without matches: every model sent to the pool that no other
  // rule of the pool names is rewritten to its targets.
  bool fallback = false;
  Criticality criticality = Criticality::kStandard;  // default Standard
  std::vector<TargetModel> targets;  // empty: the model name goes upstream unchanged
  std::string pool;                  // poolRef.name
};

// A name requests give in the x-gateway-inference-objective header, and the priority they run
// at when routed to its pool (a request to another pool, or naming no objective, runs at 0).
struct InferenceObjective {
  ObjectMeta meta;
  Source source;
  int priority = 0;  // spec.priority, default 0
  std::string pool;  // spec.poolRef.name
};

// Hosts, paths and headers bound to weighted pools: a Gateway API HTTPRoute, or an LLMRoute
// (host -> one rule, without matches, whose backends are all of its rules' pools).
struct HTTPRouteMatch {
  enum class Path { kPrefix, kExact };
  Path path_type = Path::kPrefix;                            // default PathPrefix
  std::string path = "/";                                    // default "/": every path
  std::vector<std::pair<std::string, std::string>> headers;  // name (lower case), exact value
  std::vector<std::pair<std::string, std::string>> query;    // name, exact value
  std::string method;                                        // empty: any
};
struct RouteBackend {
  std::string pool;
  int weight = 1;  // default 1; 0 sends nothing
};
struct HTTPRouteRule {
  std::vector<HTTPRouteMatch> matches;  // any one matches; empty: every request
  std::vector<RouteBackend> backends;
  double timeout_s = 0;  // timeouts.request; 0: the Gateway's spec.timeouts.total
};
struct HTTPRoute {
  ObjectMeta meta;
  Source source;
  std::string kind = "HTTPRoute";      // or "LLMRoute"
  std::vector<std::string> hostnames;  // empty: every host; "*.example.com" a suffix match
  std::vector<std::string> parents;    // parentRefs' / LLMRoute gateways' names (informational)
  std::vector<HTTPRouteRule> rules;
};

// Static backends: addresses carrying labels that pools select, as pods would.
struct Endpoints {
  ObjectMeta meta;
  Source source;
  std::vector<HostPort> addresses;  // spec.scheme: http (default) | https sets HostPort::tls
};

// ResourcePolicy (scheduling.alibabacloud.com/v1alpha1), as the seed writes it. Placement itself
// is control/placement.h.
struct ResourcePolicy {
  ObjectMeta meta;
  Source source;
  Labels selector;  // labels of the replicas (pods) it applies to
  struct Unit {
    std::string resource;  // ecs | elastic | eci | acs (informational)
    Labels node_selector;  // selects NodePools by label
    std::optional<int> max;
  };
  std::vector<Unit> units;
  std::string when = "LackResourceOrExceedMax";  // whenTryNextUnits.policy
  double timeout_s = 0;                          // whenTryNextUnits.timeout
};

// A pool of nodes: owned (fixed) or rented on demand (elastic).
struct NodePool {
  ObjectMeta meta;
  Source source;
  bool elastic = false;                // spec.kind: fixed | elastic
  int min_nodes = 0;                   // fixed: spec.nodes; elastic: spec.minNodes (default 0)
  int max_nodes = 0;                   // elastic: spec.maxNodes
  int gpus_per_node = 1;               // default 1
  double provisioning_delay_s = 0;     // elastic, default 0
  double scale_down_unneeded_s = 600;  // default 10m
  double price_per_node_hour = 0;      // default 0
  std::string provider = "local";      // default local
};

// The metric name that means "this gateway's requests in flight at the replica" (the
// controller reads it from the gateway, not from the engine).
inline constexpr const char* kGatewayInflight = "tidegate:inflight";

// What the seed's `arena serve kserve` flags say, as a resource.
struct InferenceService {
  ObjectMeta meta;  // metadata.labels go on every replica (pools and policies select them)
  Source source;
  std::string served_model_name;
  std::vector<std::string> command;  // template; default: tidegate engine
  // Kubernetes provider: spec.image, the container image of the replicas (default "": the
  // gateway's own image, tidegate, whose `tidegate engine` the default command runs), and
  // spec.port, the port {port} stands for in the command and the pods listen on (default 0: the
  // target port of the InferencePool that selects the service, else 8000). The local provider
  // gives each replica a free port instead.
  std::string image;
  int port = 0;
  // spec.modelVolume {claimName, mountPath}: a PersistentVolumeClaim with the weights, mounted
  // read-only in every replica (the seed's `--data llm-model:/mnt/models/Qwen`). Default none.
  struct ModelVolume {
    std::string claim_name, mount_path;
  } model_volume;
  int gpus = 1, min_replicas = 1, max_replicas = 1;
  // spec.priority, default 0: as a Kubernetes PriorityClass value. Where services share node
  // pools, the local provider places a higher one first and lets it preempt lower ones
  // (control/placement.h); on Kubernetes the cluster's PriorityClasses decide.
  int priority = 0;
  std::string cpu, memory;                       // informational
  std::map<std::string, double> metric_targets;  // engine gauge -> target average per replica
  // PromQL sources (KEDA's prometheus scaler): name -> {url, query}; the name ("prometheus:" +
  // query) is also a key of metric_targets, whose target is per replica (AverageValue).
  struct PromQuery {
    std::string url, query;
  };
  std::map<std::string, PromQuery> prometheus;
  control::Behavior behavior = control::Behavior::kubernetesDefaults();
  control::PanicSpec panic;
  // Read from another kind (a KServe InferenceService, with the HorizontalPodAutoscaler beside
  // it): what it was, and how its fields became these, one line each, for `tidegate check`.
  // Empty for a tidegate.io InferenceService.
  std::string origin;
  std::vector<std::string> mapping;
};

// The command template with {port}, {model} and {gpu_ids} replaced (every provider's argv).
std::vector<std::string> expandCommand(const std::vector<std::string>& command, int port,
                                       const std::string& model, const std::string& gpu_ids);

// What the keys on a plan may do. Every limit <= 0 means unlimited (the default).
struct UsagePlan {
  ObjectMeta meta;
  Source source;
  double requests_per_minute = 0;   // spec.requestsPerMinute (GCRA, burst = the limit)
  double requests_per_day = 0;      // spec.requestsPerDay (UTC calendar day)
  double tokens_per_minute = 0;     // spec.tokensPerMinute, prompt + completion (GCRA)
  double tokens_per_day = 0;        // spec.tokensPerDay (UTC calendar day)
  double tokens_per_month = 0;      // spec.tokensPerMonth (UTC calendar month)
  int max_concurrent = 0;           // spec.maxConcurrentRequests
  std::vector<std::string> models;  // spec.models: names or globs (*, ?); empty: every model
  // spec.priority high | normal | low -> Critical | Standard | Sheddable. A request runs at the
  // less critical of its model's criticality and its plan's, so a low plan is shed first.
  std::optional<Criticality> priority;
};

// An API key: a name, a plan, an optional expiry and the SHA-256 of the secret. The secret comes
// from spec.sha256 (static setups), or from spec.secretRef {env | file}, hashed at load; it is
// never kept. Keys created through the admin API live in the ledger database instead.
struct APIKey {
  ObjectMeta meta;
  Source source;
  std::string plan;               // spec.plan, a UsagePlan's name
  std::string sha256;             // 32 raw bytes
  std::optional<double> expires;  // spec.expiresAt (RFC 3339), unix seconds
};

struct PickerWeights {
  double queue = 2;     // default 2: fewer waiting requests is better
  double kv_cache = 1;  // default 1: lower KV-cache use is better
  double lora = 2;      // default 2: adapter running > free slot > must wait
  double prefix = 1;    // default 1: more of the prompt likely cached
  double inflight = 1;  // default 1: fewer requests this gateway has in flight there
};

struct GatewayConfig {
  std::string name = "default";
  HostPort listen{"127.0.0.1", 8080};         // default 127.0.0.1:8080
  HostPort admin{"127.0.0.1", 8081};          // default 127.0.0.1:8081
  int workers = 2;                            // default 2 worker threads, one event loop each
  std::size_t max_body_bytes = 8 << 20;       // default 8 MiB; larger: 413
  std::size_t max_header_bytes = 64 << 10;    // default 64 KiB; larger: 431
  std::size_t max_connections = 10000;        // default 10,000 client connections, all workers
  std::size_t max_response_bytes = 64 << 20;  // default 64 MiB: a larger upstream body is a 502
  std::size_t max_event_bytes = 1 << 20;      // default 1 MiB: a larger stream event ends it
  double connect_timeout_s = 2;               // default 2 s to connect upstream
  double first_byte_timeout_s = 60;           // default 60 s to the first response byte
  double idle_timeout_s = 30;                 // default 30 s between streamed chunks
  double total_timeout_s = 600;               // default 10 min for a whole request
  int retries = 2;                  // default 2 retries on another endpoint, before any byte
  double scrape_interval_s = 0.05;  // default 50 ms between scrapes of each endpoint
  double stale_after_s = 2;         // default 2 s: older metrics count as saturated
  double queue_threshold = 5;       // default 5 waiting: an endpoint past it is saturated...
  double kv_threshold = 0.8;        // default 0.8 KV use: ...or past this
  PickerWeights weights;
  double controller_interval_s = 1;  // default 1 s between reconciles of each InferenceService
  // spec.auth.apiKeys: required | disabled. When absent it is implied — required if the file
  // has a UsagePlan or an APIKey, else disabled — and a reload may not change it unless the new
  // file states it (api/reload.h): a file cut short cannot switch authentication off.
  enum class AuthMode { kDisabled, kRequired };
  AuthMode auth_mode = AuthMode::kDisabled;
  bool auth_mode_explicit = false;
  // spec.auth.allowKeyRemoval: lets a reload drop more than half of the file's keys or plans
  // (refused otherwise, as a file cut short would). Default false.
  bool allow_key_removal = false;
  // Admin API token (spec.auth.adminToken; the environment's TIDEGATE_ADMIN_TOKEN wins). Empty:
  // the admin API is read-only, and its /admin/* pages are served only on a loopback address.
  std::string admin_token;
  // spec.tls: HTTPS on the listener (and optionally the admin address). Certificates are
  // reloaded on SIGHUP and when their files change; enabling or disabling TLS, or moving it to
  // or from the admin address, waits for a restart.
  struct Tls {
    bool enabled = false;             // spec.tls present
    std::string certificate_file;     // spec.tls.certificateFile (PEM chain), required
    std::string key_file;             // spec.tls.keyFile, required
    std::string client_ca_file;       // spec.tls.clientCAFile: mutual TLS when set
    std::string min_version = "1.2";  // spec.tls.minVersion: "1.2" (default) | "1.3"
    double handshake_timeout_s = 10;  // spec.tls.handshakeTimeout, default 10 s
    bool admin = false;               // spec.tls.admin: the admin address too, default false
  } tls;
  // spec.upstreamTLS: how https endpoints are reached. Server certificates are verified by
  // default, against caFile (else the system's CAs).
  struct UpstreamTls {
    std::string ca_file;           // caFile; default "": the system's CAs
    std::string certificate_file;  // certificateFile; default "": no client certificate
    std::string key_file;          // keyFile, with certificateFile
    bool verify = true;            // default true; insecureSkipVerify: true turns it off
  } upstream_tls;
  struct RateLimit {
    bool redis = false;                         // spec.rateLimit.backend: local (default) | redis
    HostPort redis_address{"127.0.0.1", 6379};  // spec.rateLimit.redis.address
    double redis_timeout_s = 0.05;              // spec.rateLimit.redis.timeout, default 50 ms
    bool fail_open = true;  // spec.rateLimit.redis.failurePolicy: open (default:
                            // the local limiter decides) | closed (deny)
  } rate_limit;
  struct Ledger {
    std::string path;                // spec.ledger.path; empty: no ledger
    double flush_interval_s = 0.25;  // spec.ledger.flushInterval, default 250 ms (<= 1 s)
  } ledger;
  struct ModelPrice {
    std::string model;  // name or glob, matched against the requested model
    double prompt_per_million = 0, completion_per_million = 0;  // dollars per 1M tokens
  };
  std::vector<ModelPrice> model_prices;               // spec.pricing.models
  std::map<std::string, double> pool_price_per_hour;  // spec.pricing.pools: pool -> $/hour

  std::uint64_t seed = 0;  // default 0: random; else worker i's RNG (splits, tie-breaks) is
                           // seeded with seed + i, for reproducible runs
};

struct Config {
  std::string file;
  std::string digest;        // SHA-256 of the file's bytes, hex (logged with every reload)
  bool has_gateway = false;  // false: GatewayConfig defaults
  GatewayConfig gateway;
  std::vector<InferencePool> pools;
  std::vector<InferenceModel> models;
  std::vector<InferenceObjective> objectives;
  std::vector<HTTPRoute> routes;
  std::vector<Endpoints> endpoints;
  std::vector<ResourcePolicy> resource_policies;
  std::vector<NodePool> node_pools;
  std::vector<InferenceService> services;
  std::vector<UsagePlan> plans;
  std::vector<APIKey> keys;
  // What the loader accepted without acting on it (a field tidegate has no use for, a reference
  // to an endpoint picker), each "FILE: document N (KIND NAME), line L: FIELD: why": `tidegate
  // check` prints them.
  std::vector<std::string> notes;

  const InferencePool* pool(const std::string& name) const;
  const UsagePlan* plan(const std::string& name) const;
  bool keysRequired() const { return gateway.auth_mode == GatewayConfig::AuthMode::kRequired; }
};

const char* authModeName(GatewayConfig::AuthMode m);

// The placement model's view of the configuration (control/placement.h), for every provider:
// the NodePools, and the units a service's replicas fill — those of the ResourcePolicy in its
// namespace whose selector matches its labels (the last one, as the file reads), else one unit
// per NodePool in declaration order. `policy`, when given, is set to that ResourcePolicy.
std::vector<control::NodePoolSpec> nodePoolSpecs(const Config& c);
control::PlacementPolicy placementPolicy(const Config& c, const InferenceService& s,
                                         const ResourcePolicy** policy = nullptr);
// What `s` asks of control::plan when it wants `desired` replicas: its name, GPUs, priority and
// placementPolicy().
control::Demand placementDemand(const Config& c, const InferenceService& s, int desired);

}  // namespace tidegate::api
