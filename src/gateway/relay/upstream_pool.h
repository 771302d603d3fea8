#pragma once
// UpstreamPool: one worker's keep-alive connections to the engines, by endpoint.
//
// Threads: owned by one worker and used only on its event loop (no locks). Connections are
// shared_ptr because the downstream-disconnect watch may cancel() one while its request runs.
// Rules: a connection goes back to the pool only when http::Client says it is reusable (a
// complete response, the server allows reuse, not idle past its keep-alive); idle connections
// are closed when they pass their reuse deadline (prune), and every connection of an endpoint
// that left the live snapshot is closed (retain). At most `max_idle_per_endpoint` idle
// connections are kept per endpoint; more are closed on release.

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/http_client.h"
#include "gateway/endpoint.h"

namespace tidegate::gateway::relay {

class UpstreamPool {
 public:
  // `tls`: the client context for https endpoints (the Gateway's spec.upstreamTLS), asked for
  // each new connection to one, so a reload's new CA bundle applies from then on.
  using TlsContext = std::function<std::shared_ptr<tls::ssl::context>()>;
  UpstreamPool(boost::asio::any_io_executor ex, http::ClientOptions options = {},
               std::size_t max_idle_per_endpoint = 256, TlsContext tls = {});
  ~UpstreamPool();

  // An idle connection to `ep`, or a new (not yet connected) one.
  std::shared_ptr<http::Client> acquire(const std::shared_ptr<Endpoint>& ep);
  // Returns a connection after its request; kept only if reusable, else closed.
  void release(const std::shared_ptr<Endpoint>& ep, std::shared_ptr<http::Client> c);
  // Closes idle connections whose reuse deadline has passed (at `now`, the clients' clock).
  void prune(double now);
  // Closes the idle connections of every endpoint not in `live`.
  void retain(const std::unordered_set<const Endpoint*>& live);
  // Closes everything idle (shutdown).
  void clear();
  std::size_t idle() const;

 private:
  struct Entry {
    std::shared_ptr<Endpoint> endpoint;  // keeps the key's address alive while pooled
    std::vector<std::shared_ptr<http::Client>> idle;
  };
  boost::asio::any_io_executor ex_;
  http::ClientOptions options_;
  std::size_t max_idle_;
  TlsContext tls_;
  std::unordered_map<const Endpoint*, Entry> by_endpoint_;
};

}  // namespace tidegate::gateway::relay
