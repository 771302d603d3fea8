#pragma once
// A stand-in Kubernetes API server for tests: an in-memory object store behind tidegate's own
// HTTP server (common/http_server.h), following the Kubernetes API's documented semantics closely
// enough that a Kubernetes client (src/kube/) can be tested against it without a cluster.
//
// Ownership and threads: an ApiServer owns one io_context and the thread that runs it; the HTTP
// handlers run there. Every public method is thread-safe (one mutex around the store, the event
// history and the watch queues) and may be called from any thread, including the controller
// stand-ins of kube_cluster.h. A write made through the C++ methods produces the same watch
// events as the same write over HTTP. Failures are returned as ApiError values (a Kubernetes
// Status), never thrown, except by the constructor (it throws std::runtime_error when it cannot
// listen or when TLS files do not load).
//
// What is served (paths as the real server lays them out):
//   /api/v1/...            the core group;  /apis/{group}/{version}/...  the others
//   .../namespaces/{ns}/{plural}[/{name}[/{subresource}]]   namespaced kinds
//   .../{plural}                                            every namespace (list and watch)
//   .../{plural}[/{name}[/{subresource}]]                   cluster-scoped kinds
//   /api/v1/watch/...      the deprecated watch paths, as ?watch=true
//   /api, /apis, /api/v1, /apis/{g}/{v}   discovery (APIVersions, APIGroupList, APIResourceList)
//   /version, /healthz, /readyz, /livez
//
// Semantics, and where they come from (the documents and the code this follows):
// - API concepts (resource versions, watch, bookmarks, 410 Gone, list, timeoutSeconds):
//   https://kubernetes.io/docs/reference/using-api/api-concepts/
//   https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
//   https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-bookmarks
//   https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions
// - The watch cache (k8s.io/apiserver/pkg/storage/cacher): a too-old resourceVersion is answered
//   200 and then one ERROR event whose object is a Status {code 410, reason Expired, message
//   "too old resource version: N (M)"} (Cacher.Watch returns newErrWatcher: "once we have passed
//   authn/authz/admission ... other errors must fail with a watch event of type ERROR, rather
//   than a directly returned error"); M is the oldest resourceVersion still deliverable minus one
//   (watch_cache.go getAllEventsSinceLocked: `if resourceVersion < oldest-1`). A watch with a
//   selector sees ADDED when an object starts matching and DELETED (with the previous content and
//   the event's resourceVersion) when it stops (cache_watcher.go convertToWatchEvent).
//   https://github.com/kubernetes/kubernetes/blob/master/staging/src/k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go
//   https://github.com/kubernetes/kubernetes/blob/master/staging/src/k8s.io/apiserver/pkg/storage/cacher/watch_cache.go
//   A watcher that cannot keep up is closed (the stream ends), as the cacher closes
//   unresponsive watchers; compaction of the history affects later watch requests only (an open
//   watch from the watch cache is not cut by an etcd compaction).
// - Status objects and their reasons/messages (NotFound, AlreadyExists, Conflict, Forbidden,
//   Unauthorized, Expired, BadRequest, Invalid, UnsupportedMediaType, MethodNotSupported):
//   https://github.com/kubernetes/apimachinery/blob/master/pkg/api/errors/errors.go
//   https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
//   Forbidden messages follow apiserver's responsewriters.forbiddenMessage:
//   `pods is forbidden: User "U" cannot list resource "pods" in API group "" in the namespace
//   "default"` (`at the cluster scope` for cluster-wide requests; "deployments/scale" style
//   resource for subresources).
// - Label and field selectors:
// https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/
//   https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
// - Patches:
// https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
//   RFC 7386 (merge patch), RFC 6902 (JSON patch), and the strategic merge patch:
//   https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
//   Strategic merge patch is refused (415) for custom resources, as the real server does.
// - Subresources /status and /scale:
// https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#subresources
//   and the autoscaling/v1 Scale:
//   https://kubernetes.io/docs/reference/kubernetes-api/autoscaling-resources/
// - Graceful pod deletion (deletionTimestamp, deletionGracePeriodSeconds; unbound or terminated
//   pods go at once; grace 0 removes at once):
//   https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination Finalizers:
//   an object with finalizers gets a deletionTimestamp and goes when they are emptied:
//   https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/
// - Namespaces must exist for a create (NamespaceLifecycle admission); "default", "kube-system",
//   "kube-public" and "kube-node-lease" exist from the start.
//
// Simplified (said so the tests using it know): one version per group/resource (no conversion);
// no admission webhooks, quotas or validation beyond names, namespaces and kinds; a LIST always
// serves the current state (resourceVersion/resourceVersionMatch on a list are accepted and
// ignored), and `limit`/`continue` pages walk the current state in name order (not a snapshot); a
// watch from a resourceVersion newer than the current one starts from the current one; no
// server-side apply, no managedFields, no deletecollection; strategic merge covers the merge keys
// listed at strategicMergePatch() below.

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"

namespace tidegate::http {
class Server;
class Exchange;
}  // namespace tidegate::http

namespace tidegate::testing::kube {

namespace bj = boost::json;

namespace detail {
struct ApiServerState;  // the store, the watches and the HTTP server (kube_apiserver.cc)
}  // namespace detail

// A failure as the API server reports it: the HTTP code and a Status object's reason, message
// and details ({name, group, kind} where kind is the resource, as apimachinery fills it).
struct ApiError {
  int code = 500;
  std::string reason;   // "NotFound", "Conflict", ...
  std::string message;  // as the real server words it
  bj::object details;
  // The metav1.Status object: {kind: Status, apiVersion: v1, metadata: {}, status: Failure, ...}.
  bj::object status() const;
};
template <class T>
using ApiResult = Result<T, ApiError>;

// One kind the server serves.
struct ResourceType {
  std::string group;    // "" for the core group
  std::string version;  // "v1", "v1alpha1", ...
  std::string plural;   // "pods"
  std::string kind;     // "Pod"
  bool namespaced = true;
  bool status_subresource = false;  // PUT/PATCH of the main resource ignore .status
  bool scale_subresource = false;   // /scale (Deployments)
  bool custom = false;              // registered by a test: no strategic merge patch
  bool create_on_update = false;    // a PUT of a missing object creates it (leases, nodes, events)

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "pods", "deployments.apps": the qualified resource of Status messages.
  std::string qualified() const { return group.empty() ? plural : plural + "." + group; }
};

// A parsed label selector
// (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/): comma-separated
// requirements, all of which must hold: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`
// (exists), `!k` (does not exist), and `k>N` / `k<N` (integers). `k!=v` and `notin` also match
// objects without the label, as documented.
class LabelSelector {
 public:
  // The empty selector (matches everything).
  LabelSelector() = default;
  // Parses `text`; an error says what is wrong (for a 400 BadRequest).
  static Result<LabelSelector> parse(std::string_view text);
  // From a metav1.LabelSelector object {matchLabels, matchExpressions}.
  static Result<LabelSelector> fromObject(const bj::object& selector);
  bool matches(const bj::object* labels) const;
  bool empty() const { return reqs_.empty(); }
  // The selector as text, requirements sorted by key ("app=x,tier in (a,b)").
  std::string str() const;

  struct Requirement {
    std::string key;
    std::string op;  // "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    std::vector<std::string> values;
  };

 private:
  std::vector<Requirement> reqs_;
};

// Merge patch (RFC 7386) of `target` by `patch`.
bj::value mergePatch(const bj::value& target, const bj::value& patch);
// Strategic merge patch: a merge patch whose lists of objects are merged by key where the
// Kubernetes types declare `patchStrategy: merge`, recognised by field name: containers,
// initContainers, ephemeralContainers, volumes, env, imagePullSecrets by `name`; ports by
// `containerPort` (elements that carry one, as container ports do) else by `port`; volumeMounts
// by `mountPath`; conditions by `type`; ownerReferences by `uid`; hostAliases by `ip`;
// topologySpreadConstraints by `topologyKey`; finalizers merged as a set. Every other list
// (tolerations, taints, args, command, ...) is replaced whole, as lists without a patch strategy
// are. Directives: `$patch: delete` on a keyed list element (removes it) or on a map (removes
// it), `$patch: replace` on a map (replaces it whole) or as a list element (the list is replaced
// by the other elements), and `$deleteFromPrimitiveList/<field>`; `$setElementOrder/<field>` and
// `$retainKeys` are accepted and ignored.
Result<bj::value> strategicMergePatch(const bj::value& target, const bj::value& patch);
// JSON patch (RFC 6902): add, remove, replace, move, copy, test.
Result<bj::value> jsonPatch(const bj::value& target, const bj::value& patch);

enum class PatchType { kMerge, kStrategic, kJson };

// A request the server received, for assertions.
struct RequestRecord {
  std::string method;  // HTTP method
  std::string verb;    // Kubernetes verb: get list watch create update patch delete ("" if none)
  std::string path;    // without the query
  std::string query;   // without '?'
  std::string user_agent;  // the User-Agent header
  std::string user;        // who it authenticated as ("" if it did not)
  int status = 0;          // the response's code (200 for a watch stream)
};

// An injected failure: the next `count` requests for which `match` is true are answered with
// this Status instead of being served.
struct Fault {
  int code = 500;
  std::string reason;      // default: the usual one for `code` (InternalError, TooManyRequests...)
  std::string message;     // default: "injected failure"
  int retry_after_s = -1;  // >= 0: a Retry-After header (and details.retryAfterSeconds)
};

struct ApiServerOptions {
  // Default "test-token": `Authorization: Bearer <token>` authenticates as `token_user`. Empty: no
  // token is accepted.
  std::string token = "test-token";
  std::string token_user = "system:serviceaccount:tidegate:tidegate";
  // Default off: plain HTTP. With tls_certificate_file/tls_key_file: HTTPS.
  std::string tls_certificate_file;
  std::string tls_key_file;
  // With HTTPS, default none. Set: mutual TLS — clients must present a certificate this CA
  // signed (the handshake fails otherwise, as with tidegate's own ServerTls), and a request on
  // such a connection authenticates as `client_certificate_user` when it carries no valid token.
  // (Simplified: the certificate's CN is not read, because http::Server does not hand the peer
  // certificate to handlers; the real server also accepts connections without a certificate.)
  std::string tls_client_ca_file;
  std::string client_certificate_user = "tidegate-client";  // default "tidegate-client"
  // Default 1000: write events kept for watches that resume from a resourceVersion; an older
  // resourceVersion is answered with 410 Expired.
  std::size_t watch_window = 1000;
  double bookmark_interval_s = 1;  // default 1 s between BOOKMARK events (allowWatchBookmarks)
  // Default 1800 s: how long a watch without timeoutSeconds lasts (the real server's
  // --min-request-timeout is 1800 s, randomised).
  double default_watch_timeout_s = 1800;
  // Default 10000: events queued for one watch stream before the server gives up on the client
  // and closes the stream, as the watch cache does for an unresponsive watcher.
  std::size_t max_watch_queue = 10000;
  // Default true: a create in a namespace that does not exist is 404 NotFound (the real server's
  // NamespaceLifecycle admission).
  bool require_namespaces = true;
};

class ApiServer {
 public:
  // Starts listening on 127.0.0.1 port 0 and serving. Throws std::runtime_error on failure.
  explicit ApiServer(ApiServerOptions options = {});
  // Stops serving: open watches are cut, the thread is joined.
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  std::string url() const;
  std::uint16_t port() const { return port_; }
  const ApiServerOptions& options() const { return options_; }

  // Registers a kind: (group, version, plural) -> kind. Registering again replaces it. Kinds
  // registered here are custom resources (status_subresource: the /status subresource as a
  // CRD's `subresources: {status: {}}` gives it).
  void registerResource(const std::string& group, const std::string& version,
                        const std::string& plural, const std::string& kind, bool namespaced,
                        bool status_subresource = false);
  // The type of `apiVersion` ("v1", "apps/v1") + plural, or nullopt.
  std::optional<ResourceType> resourceType(const std::string& api_version,
                                           const std::string& plural) const;

  // RBAC stand-in: requests with `verb` on `resource` ("pods", or with a subresource
  // "deployments/scale") of `api_group` ("" for core) are answered 403 Forbidden. "*" matches any
  // verb, group or resource.
  void deny(const std::string& verb, const std::string& api_group, const std::string& resource);
  void allowAll();

  // --- Fault injection ---
  // Abruptly closes every open watch connection (no final chunk: the client sees the
  // connection cut mid-stream).
  void dropWatches();
  // Forgets the whole event history up to now: a watch from any resourceVersion older than the
  // current one is answered 410 Expired.
  void compact();
  // The next `count` requests whose path contains `path_substring` ("" matches all) fail with
  // `fault`.
  void failNext(int count, Fault fault, std::string path_substring = "");
  void failNext(int count, Fault fault, std::function<bool(const RequestRecord&)> match);
  // Every request so far (oldest first), and forgetting them.
  std::vector<RequestRecord> requests() const;
  void clearRequests();
  // Watch streams open now.
  std::size_t watchCount() const;
  // The current (last written) resourceVersion.
  std::uint64_t resourceVersion() const;

  // --- C++ access (the same store and events as HTTP) ---
  // `api_version` is "v1" or "group/version"; `ns` is "" for cluster-scoped kinds. Objects are
  // JSON objects as the API serves them.
  ApiResult<bj::object> create(const std::string& api_version, const std::string& plural,
                               const std::string& ns, bj::object obj);
  ApiResult<bj::object> get(const std::string& api_version, const std::string& plural,
                            const std::string& ns, const std::string& name) const;
  // PUT semantics: a set metadata.resourceVersion is a precondition (409 Conflict when stale).
  // `subresource` "status" updates only .status.
  ApiResult<bj::object> update(const std::string& api_version, const std::string& plural,
                               const std::string& ns, bj::object obj,
                               const std::string& subresource = "");
  ApiResult<bj::object> patch(const std::string& api_version, const std::string& plural,
                              const std::string& ns, const std::string& name, PatchType type,
                              const bj::value& patch, const std::string& subresource = "");
  // DELETE semantics: pods bound to a node get a deletionTimestamp (graceful) unless
  // `grace_period_s` is 0; objects with finalizers wait for them; others go at once. Returns the
  // object as the response would carry it.
  ApiResult<bj::object> remove(const std::string& api_version, const std::string& plural,
                               const std::string& ns, const std::string& name,
                               std::optional<std::int64_t> grace_period_s = std::nullopt);
  // Objects of a kind, in one namespace or all (""), matching a label selector.
  ApiResult<std::vector<bj::object>> list(const std::string& api_version, const std::string& plural,
                                          const std::string& ns = "",
                                          const std::string& label_selector = "") const;

 private:
  std::unique_ptr<detail::ApiServerState> impl_;
  ApiServerOptions options_;
  std::uint16_t port_ = 0;
};

}  // namespace tidegate::testing::kube
