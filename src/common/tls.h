#pragma once
// TLS on both sides, on OpenSSL through Asio: the contexts tidegate's servers and clients use,
// and Stream, a connection that is plain TCP or TLS over it.
//
// Server side: a ServerTls holds the current server context, built from certificate and key
// files (and a client CA for mutual TLS). reload() builds a new context from the files and swaps
// it in: connections accepted afterwards use it, open ones keep the one they were accepted with
// (each holds a reference), so a certificate rotates without dropping a connection. A reload
// that fails (a missing or mismatched file) keeps the current context and says why.
//
// Client side: makeClientContext() verifies servers by default (the CA bundle given, else the
// system's), presents a client certificate when given one, and Stream::startClientTls() names the
// host for SNI and checks the certificate against it (DNS names or IP addresses).
//
// Both sides: TLS 1.2 at least (configurable to 1.3), ALPN "http/1.1".

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "common/result.h"
#include "common/timed_socket.h"

namespace tidegate::tls {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;

enum class Version { k12, k13 };
// "1.2" | "1.3".
Result<Version> parseVersion(const std::string& s);

struct ServerConfig {
  std::string certificate_file;  // PEM, the chain: leaf first
  std::string key_file;          // PEM private key
  std::string client_ca_file;    // PEM; when set, clients must present a certificate it signed
  Version min_version = Version::k12;
  bool operator==(const ServerConfig&) const = default;
};

struct ClientConfig {
  std::string ca_file;           // PEM bundle; empty: the system's default verify paths
  std::string certificate_file;  // client certificate (mutual TLS), with key_file
  std::string key_file;
  bool verify = true;  // false skips server verification (tests and labs only; logged)
  Version min_version = Version::k12;
  // The CA, certificate and key as PEM text in memory (kubeconfig's *-data fields), used when
  // the matching file is empty.
  std::string ca_pem, certificate_pem, key_pem;
  bool operator==(const ClientConfig&) const = default;
};

// The server context for `config`, or why it cannot be built (file and OpenSSL's reason).
Result<std::shared_ptr<ssl::context>> makeServerContext(const ServerConfig& config);
Result<std::shared_ptr<ssl::context>> makeClientContext(const ClientConfig& config);

// A server's current TLS context; thread-safe.
class ServerTls {
 public:
  // Builds the first context; fails like makeServerContext.
  static Result<std::shared_ptr<ServerTls>> make(ServerConfig config);
  // With a first context already built from `config`.
  static Result<std::shared_ptr<ServerTls>> make(std::shared_ptr<ssl::context> ctx,
                                                 ServerConfig config);

  std::shared_ptr<ssl::context> current() const { return current_.load(); }
  ServerConfig config() const;
  // Rebuilds from `config` (the files may have changed, or the paths), swapping the context in
  // on success; on failure the current one stays.
  Status reload(ServerConfig config);
  // Swaps in a context already built from `config` (a reload validated it first).
  void install(std::shared_ptr<ssl::context> ctx, ServerConfig config);
  // Rebuilds when a file's modification time, size or inode changed since the last (re)load:
  // for a periodic check (Kubernetes swaps Secret files through a symlink). Returns false when
  // nothing changed (or a reload() won meanwhile), true when reloaded, an error when the files
  // changed but do not load.
  Result<bool> reloadIfChanged();
  // Seconds until the certificate in use expires (negative once expired).
  Result<double> secondsUntilExpiry() const;

  // Reloads that swapped a new context in, and that failed (for metrics).
  std::uint64_t reloads() const { return reloads_.load(); }
  std::uint64_t reloadFailures() const { return reload_failures_.load(); }

  // Handshakes that failed, by reason, and that succeeded (for metrics).
  enum class Failure { kTimeout, kProtocol, kClientCertificate, kClosed, kCount };
  static const char* failureName(Failure f);
  void countFailure(Failure f) { failures_[static_cast<int>(f)].fetch_add(1); }
  void countHandshake() { handshakes_.fetch_add(1); }
  std::uint64_t failures(Failure f) const { return failures_[static_cast<int>(f)].load(); }
  std::uint64_t handshakes() const { return handshakes_.load(); }

 private:
  ServerTls() = default;
  static std::string fileStamp(const ServerConfig& c);
  void installLocked(std::shared_ptr<ssl::context> ctx, ServerConfig config, std::string stamp);

  mutable std::mutex mu_;
  ServerConfig config_;           // guarded by mu_
  std::string file_stamp_;        // guarded by mu_: the files as of the last (re)load
  std::uint64_t generation_ = 0;  // guarded by mu_: contexts installed so far
  std::atomic<std::shared_ptr<ssl::context>> current_;
  std::atomic<std::uint64_t> failures_[static_cast<int>(Failure::kCount)] = {};
  std::atomic<std::uint64_t> handshakes_{0};
  std::atomic<std::uint64_t> reloads_{0}, reload_failures_{0};
};

// Classifies a failed server handshake.
ServerTls::Failure classifyHandshakeError(const boost::system::error_code& ec);

// A connection: TCP, or TLS over it once startTls() ran. Reads and writes go through io(f),
// which calls `f` with the stream to use, so the same Beast call serves both:
//   co_await s.io([&](auto& st) { return http::async_write(st, msg, token); });
// Deadlines are the TCP socket's (tcp().expires_after, timed_socket.h), and apply to TLS
// operations over it too; an operation's error goes through classify() to read as a timeout.
class Stream {
 public:
  explicit Stream(asio::ip::tcp::socket socket) : tcp_(std::move(socket)) {}
  explicit Stream(const asio::any_io_executor& ex) : tcp_(ex) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  TimedSocket& tcp() { return tcp_; }
  // An operation's error, as beast::error::timeout when the deadline ended it.
  beast::error_code classify(const beast::error_code& ec) const { return tcp_.classify(ec); }
  asio::ip::tcp::socket& socket() { return tcp_.socket(); }
  bool secure() const { return tls_ != nullptr; }
  // The peer's "ADDRESS:PORT" ("" if the socket no longer knows it).
  std::string remoteAddress() const;
  ssl::stream<TimedSocket&>& tls() { return *tls_; }

  // Layers TLS over the TCP stream with `ctx` (kept alive by this stream); the caller then runs
  // the handshake on tls().
  void startTls(std::shared_ptr<ssl::context> ctx) {
    ctx_ = std::move(ctx);
    tls_ = std::make_unique<ssl::stream<TimedSocket&>>(tcp_, *ctx_);
  }
  // Client side: startTls() plus SNI and, when `ctx` verifies peers, the check of the server's
  // certificate against `host` (a DNS name or an IP address). The caller then runs the client
  // handshake.
  Status startClientTls(std::shared_ptr<ssl::context> ctx, const std::string& host);

  // After a failed client handshake: why the server's certificate was refused ("certificate has
  // expired", ...), or "" if it was not a verification failure.
  std::string verifyError();

  template <class F>
  auto io(F&& f) {
    return tls_ ? f(*tls_) : f(tcp_);
  }

 private:
  TimedSocket tcp_;
  std::shared_ptr<ssl::context> ctx_;
  // On the heap: an ssl::stream is ~350 bytes, and every plain TCP connection (each open stream
  // holds two) would carry it in its coroutine frame or client object.
  std::unique_ptr<ssl::stream<TimedSocket&>> tls_;
};

}  // namespace tidegate::tls
