#include "kube/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/crypto.h"

namespace tidegate::kube {
namespace {

Result<std::string> readFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{what + ": cannot read " + path};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// A named entry of a kubeconfig list (clusters, users, contexts): its `field` map.
YAML::Node named(const YAML::Node& list, const std::string& name, const std::string& field) {
  if (!list.IsSequence()) return {};
  for (const auto& item : list)
    if (item.IsMap() && item["name"] && item["name"].IsScalar() && item["name"].Scalar() == name)
      return item[field];
  return {};
}

std::string scalar(const YAML::Node& map, const std::string& key) {
  if (!map.IsMap()) return {};
  const auto n = map[key];
  return n && n.IsScalar() ? n.Scalar() : std::string();
}

}  // namespace

Status parseServer(const std::string& server, ClusterConfig& c) {
  std::string rest;
  if (server.rfind("https://", 0) == 0) {
    c.https = true;
    rest = server.substr(8);
  } else if (server.rfind("http://", 0) == 0) {
    c.https = false;
    rest = server.substr(7);
  } else {
    return Error{"server \"" + server + "\": expected https://HOST[:PORT]"};
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos)
    return Error{"server \"" + server + "\": a path prefix is not supported"};
  std::string host = rest;
  long port = c.https ? 443 : 80;
  const auto close = rest.rfind(']');
  const auto colon = rest.rfind(':');
  if (colon != std::string::npos && (close == std::string::npos || colon > close)) {
    host = rest.substr(0, colon);
    const auto digits = rest.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      return Error{"server \"" + server + "\": bad port"};
    port = std::stol(digits);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || port < 1 || port > 65535)
    return Error{"server \"" + server + "\": expected https://HOST[:PORT]"};
  c.server = server;
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  c.host = host;
  c.port = static_cast<std::uint16_t>(port);
  return Status::Ok();
}

Result<ClusterConfig> inCluster(const std::string& root) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port)
    return Error{
        "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not "
        "set (use --kubeconfig FILE outside a cluster)"};
  ClusterConfig c;
  const std::string h = host;
  const std::string server =
      "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  if (auto s = parseServer(server, c); !s) return Error{s.message()};
  c.tls.ca_file = root + "/ca.crt";
  if (!std::filesystem::exists(c.tls.ca_file))
    return Error{"in-cluster: the service account's CA " + c.tls.ca_file + " is missing"};
  c.token_file = root + "/token";
  auto token = readFile(c.token_file, "in-cluster token");
  if (!token) return Error{token.error().message};
  c.token = trim(*token);
  if (auto ns = readFile(root + "/namespace", "in-cluster namespace"); ns && !trim(*ns).empty())
    c.ns = trim(*ns);
  c.source = "in-cluster (" + root + ")";
  return c;
}

Result<ClusterConfig> fromKubeconfig(const std::string& path_in, const std::string& context) {
  std::string path = path_in;
  if (path.empty()) {
    if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
      path = env;
      path = path.substr(0, path.find(':'));
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      path = std::string(home) + "/.kube/config";
    }
  }
  auto text = readFile(path, "kubeconfig");
  if (!text) return Error{text.error().message};
  YAML::Node doc;
  try {
    doc = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return Error{"kubeconfig " + path + ": not YAML: " + e.what()};
  }
  auto fail = [&](const std::string& what) { return Error{"kubeconfig " + path + ": " + what}; };
  if (!doc.IsMap()) return fail("expected a map");
  const std::string ctx_name = context.empty() ? scalar(doc, "current-context") : context;
  if (ctx_name.empty()) return fail("no current-context and no --context given");
  const auto ctx = named(doc["contexts"], ctx_name, "context");
  if (!ctx || !ctx.IsMap()) return fail("context \"" + ctx_name + "\" not found");
  const auto cluster_name = scalar(ctx, "cluster");
  const auto user_name = scalar(ctx, "user");
  const auto cluster = named(doc["clusters"], cluster_name, "cluster");
  if (!cluster || !cluster.IsMap())
    return fail("context \"" + ctx_name + "\": cluster \"" + cluster_name + "\" not found");

  const auto dir = std::filesystem::path(path).parent_path();
  auto resolve = [&](const std::string& p) {
    return p.empty() || std::filesystem::path(p).is_absolute() ? p : (dir / p).string();
  };
  auto pem = [&](const YAML::Node& m, const std::string& key, std::string& file,
                 std::string& data) -> Status {
    file = resolve(scalar(m, key));
    if (const auto d = scalar(m, key + "-data"); !d.empty()) {
      auto decoded = crypto::base64Decode(d);
      if (!decoded) return fail(key + "-data: not base64");
      data = *decoded;
    }
    if (!file.empty() && !std::filesystem::exists(file))
      return fail(key + ": " + file + " does not exist");
    return Status::Ok();
  };

  ClusterConfig c;
  if (auto s = parseServer(scalar(cluster, "server"), c); !s)
    return fail("cluster \"" + cluster_name + "\": " + s.message());
  if (auto s = pem(cluster, "certificate-authority", c.tls.ca_file, c.tls.ca_pem); !s)
    return Error{s.message()};
  c.tls.verify = scalar(cluster, "insecure-skip-tls-verify") != "true";
  if (!scalar(cluster, "tls-server-name").empty())
    return fail("cluster \"" + cluster_name + "\": tls-server-name is not supported");
  if (cluster["proxy-url"])
    return fail("cluster \"" + cluster_name + "\": proxy-url is not supported");

  if (!user_name.empty()) {
    const auto user = named(doc["users"], user_name, "user");
    if (!user) return fail("context \"" + ctx_name + "\": user \"" + user_name + "\" not found");
    if (user.IsMap()) {
      if (user["exec"])
        return fail("user \"" + user_name +
                    "\": exec credential plugins are not supported; use a token (e.g. a "
                    "service-account token) or a client certificate");
      if (user["auth-provider"])
        return fail("user \"" + user_name + "\": auth-provider plugins are not supported");
      if (user["username"] || user["password"])
        return fail("user \"" + user_name + "\": basic authentication is not supported");
      c.token = scalar(user, "token");
      c.token_file = resolve(scalar(user, "tokenFile"));
      if (c.token.empty() && !c.token_file.empty()) {
        auto t = readFile(c.token_file, "kubeconfig tokenFile");
        if (!t) return Error{t.error().message};
        c.token = trim(*t);
      }
      if (auto s = pem(user, "client-certificate", c.tls.certificate_file, c.tls.certificate_pem);
          !s)
        return Error{s.message()};
      if (auto s = pem(user, "client-key", c.tls.key_file, c.tls.key_pem); !s)
        return Error{s.message()};
      const bool cert = !c.tls.certificate_file.empty() || !c.tls.certificate_pem.empty();
      const bool key = !c.tls.key_file.empty() || !c.tls.key_pem.empty();
      if (cert != key)
        return fail("user \"" + user_name +
                    "\": client-certificate and client-key must be given together");
    }
  }
  if (const auto ns = scalar(ctx, "namespace"); !ns.empty()) c.ns = ns;
  c.source = "kubeconfig " + path + " context " + ctx_name;
  return c;
}

}  // namespace tidegate::kube
