#pragma once
// Where a Kubernetes API server is and how to authenticate to it: read from the pod's service
// account (in-cluster) or from a kubeconfig file, as client-go's rest.InClusterConfig and
// clientcmd do.
//
// In-cluster: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT, the CA at
// /var/run/secrets/kubernetes.io/serviceaccount/ca.crt, the token at .../token (re-read while
// running: bound service-account tokens rotate), the namespace at .../namespace.
// Kubeconfig (https://kubernetes.io/docs/reference/config-api/kubeconfig.v1/): the named context
// or current-context; its cluster's server, certificate-authority(-data),
// insecure-skip-tls-verify; its user's token, tokenFile,
// client-certificate(-data) and client-key(-data). Relative paths are relative to the file's
// directory. tls-server-name, proxy-url, basic auth, exec and auth-provider plugins are not
// supported: they are errors that say so
// (use a service-account token or a client certificate).
// Pure functions of their inputs (files and environment); thread-safe.

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/tls.h"

namespace tidegate::kube {

struct ClusterConfig {
  std::string server;  // "https://HOST:PORT" (or http:// in tests), no trailing slash
  std::string host;    // parsed from server
  std::uint16_t port = 443;
  bool https = true;
  tls::ClientConfig tls;       // CA, client certificate, verify
  std::string token;           // bearer token (may be empty with a client certificate)
  std::string token_file;      // re-read every minute when set (rotated tokens)
  std::string ns = "default";  // the default namespace (context's, or the service account's)
  std::string source;          // "in-cluster" or "kubeconfig FILE context NAME", for logs
};

// The service account's configuration. `root` replaces /var/run/secrets/kubernetes.io/
// serviceaccount (tests); `env` reads variables (default getenv).
Result<ClusterConfig> inCluster(
    const std::string& root = "/var/run/secrets/kubernetes.io/serviceaccount");
// The kubeconfig at `path` (default: $KUBECONFIG's first entry, else ~/.kube/config), for
// `context` (default: current-context). Errors name the file and the missing or bad field.
Result<ClusterConfig> fromKubeconfig(const std::string& path, const std::string& context = "");
// Splits "https://host:port[/]" into the config's host, port and scheme.
Status parseServer(const std::string& server, ClusterConfig& c);

}  // namespace tidegate::kube
