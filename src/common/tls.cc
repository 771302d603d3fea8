#include "common/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/error.hpp>
#include <cstdio>
#include <ctime>

namespace tidegate::tls {

namespace {

// ALPN's wire form of the one protocol tidegate speaks.
constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// A client offering protocols without http/1.1 gets a handshake failure (RFC 7301 §3.2) rather
// than a connection it cannot use.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// "what: file: OpenSSL's reason".
std::string failure(const std::string& what, const std::string& file,
                    const boost::system::error_code& ec) {
  std::string reason = ec ? ec.message() : "error";
  if (const auto e = ERR_peek_last_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    reason = buf;
  }
  ERR_clear_error();
  return what + " " + file + ": " + reason;
}

Status setVersion(ssl::context& ctx, Version v) {
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(),
                                    v == Version::k13 ? TLS1_3_VERSION : TLS1_2_VERSION) != 1)
    return Error{"cannot set the minimum TLS version"};
  return Status::Ok();
}

}  // namespace

Result<Version> parseVersion(const std::string& s) {
  if (s == "1.2") return Version::k12;
  if (s == "1.3") return Version::k13;
  return Error{"expected \"1.2\" or \"1.3\", got \"" + s + "\""};
}

Result<std::shared_ptr<ssl::context>> makeServerContext(const ServerConfig& config) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::single_dh_use);
  if (auto s = setVersion(*ctx, config.min_version); !s) return Error{s.message()};
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(config.certificate_file, ec);
  if (ec) return Error{failure("TLS certificate", config.certificate_file, ec)};
  ctx->use_private_key_file(config.key_file, ssl::context::pem, ec);
  if (ec) return Error{failure("TLS key", config.key_file, ec)};
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return Error{failure("TLS key", config.key_file, {}) + " (does not match the certificate)"};
  if (!config.client_ca_file.empty()) {
    ctx->load_verify_file(config.client_ca_file, ec);
    if (ec) return Error{failure("TLS client CA", config.client_ca_file, ec)};
    // Tell clients which CAs are accepted, and refuse those without a certificate they signed.
    if (auto* names = SSL_load_client_CA_file(config.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  // Clients resume sessions (Node's agents, curl): with client verification on, OpenSSL refuses a
  // resumption unless the context names its sessions. No TLS 1.2 renegotiation (a CPU DoS).
  static const unsigned char kSessionContext[] = "tidegate";
  SSL_CTX_set_session_id_context(ctx->native_handle(), kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_alpn_select_cb(ctx->native_handle(), selectAlpn, nullptr);
  return ctx;
}

Result<std::shared_ptr<ssl::context>> makeClientContext(const ClientConfig& config) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3);
  if (auto s = setVersion(*ctx, config.min_version); !s) return Error{s.message()};
  boost::system::error_code ec;
  if (!config.ca_pem.empty() && config.ca_file.empty()) {
    ctx->add_certificate_authority(boost::asio::buffer(config.ca_pem), ec);
    if (ec) return Error{failure("TLS CA bundle", "(in memory)", ec)};
  } else if (config.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Error{failure("TLS system CA paths", "", ec)};
  } else {
    ctx->load_verify_file(config.ca_file, ec);
    if (ec) return Error{failure("TLS CA bundle", config.ca_file, ec)};
  }
  if (!config.certificate_file.empty()) {
    ctx->use_certificate_chain_file(config.certificate_file, ec);
    if (ec) return Error{failure("TLS client certificate", config.certificate_file, ec)};
    ctx->use_private_key_file(config.key_file, ssl::context::pem, ec);
    if (ec) return Error{failure("TLS client key", config.key_file, ec)};
  } else if (!config.certificate_pem.empty()) {
    ctx->use_certificate_chain(boost::asio::buffer(config.certificate_pem), ec);
    if (ec) return Error{failure("TLS client certificate", "(in memory)", ec)};
    ctx->use_private_key(boost::asio::buffer(config.key_pem), ssl::context::pem, ec);
    if (ec) return Error{failure("TLS client key", "(in memory)", ec)};
  }
  ctx->set_verify_mode(config.verify ? ssl::verify_peer : ssl::verify_none);
  SSL_CTX_set_alpn_protos(ctx->native_handle(), kHttp11, sizeof kHttp11);
  return ctx;
}

Result<std::shared_ptr<ServerTls>> ServerTls::make(ServerConfig config) {
  std::shared_ptr<ServerTls> t(new ServerTls());
  if (auto s = t->reload(std::move(config)); !s) return Error{s.message()};
  t->reloads_ = 0;  // the first load is not a reload
  return t;
}

Result<std::shared_ptr<ServerTls>> ServerTls::make(std::shared_ptr<ssl::context> ctx,
                                                   ServerConfig config) {
  std::shared_ptr<ServerTls> t(new ServerTls());
  t->install(std::move(ctx), std::move(config));
  t->reloads_ = 0;
  return t;
}

ServerConfig ServerTls::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

// The files' identities (mtime, size, inode) as of now. Taken BEFORE they are read, so a file
// replaced while a context is being built (a certificate copied before its key) shows as a
// change at the next check instead of being missed.
std::string ServerTls::fileStamp(const ServerConfig& c) {
  std::string stamp;
  for (const auto* f : {&c.certificate_file, &c.key_file, &c.client_ca_file}) {
    struct stat st {};
    if (f->empty() || ::stat(f->c_str(), &st) != 0) {
      stamp += "-;";
      continue;
    }
    stamp += std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
             std::to_string(st.st_size) + ":" + std::to_string(st.st_ino) + ";";
  }
  return stamp;
}

Status ServerTls::reload(ServerConfig config) {
  auto stamp = fileStamp(config);
  auto ctx = makeServerContext(config);
  if (!ctx) {
    reload_failures_.fetch_add(1);
    return ctx.error();
  }
  std::lock_guard lock(mu_);
  installLocked(std::move(ctx).value(), std::move(config), std::move(stamp));
  return Status::Ok();
}

void ServerTls::install(std::shared_ptr<ssl::context> ctx, ServerConfig config) {
  auto stamp = fileStamp(config);
  std::lock_guard lock(mu_);
  installLocked(std::move(ctx), std::move(config), std::move(stamp));
}

void ServerTls::installLocked(std::shared_ptr<ssl::context> ctx, ServerConfig config,
                              std::string stamp) {
  config_ = std::move(config);
  file_stamp_ = std::move(stamp);
  current_.store(std::move(ctx));
  ++generation_;
  reloads_.fetch_add(1);
}

Result<bool> ServerTls::reloadIfChanged() {
  ServerConfig config;
  std::string stamp;
  std::uint64_t generation;
  {
    std::lock_guard lock(mu_);
    stamp = fileStamp(config_);
    if (stamp == file_stamp_) return false;
    config = config_;
    generation = generation_;
  }
  auto ctx = makeServerContext(config);
  std::lock_guard lock(mu_);
  // A reload (SIGHUP) installed something meanwhile, maybe other paths: it wins.
  if (generation != generation_) return false;
  if (!ctx) {
    // Not retried until the files change again: one error per change, not one per check.
    file_stamp_ = std::move(stamp);
    reload_failures_.fetch_add(1);
    return Error{ctx.error().message};
  }
  installLocked(std::move(ctx).value(), std::move(config), std::move(stamp));
  return true;
}

Result<double> ServerTls::secondsUntilExpiry() const {
  const auto ctx = current();
  const X509* cert = SSL_CTX_get0_certificate(ctx->native_handle());
  int days = 0, secs = 0;
  if (!cert || !ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert)))
    return Error{"no certificate"};
  return days * 86400.0 + secs;
}

const char* ServerTls::failureName(Failure f) {
  switch (f) {
    case Failure::kTimeout:
      return "timeout";
    case Failure::kProtocol:
      return "protocol";
    case Failure::kClientCertificate:
      return "client_certificate";
    case Failure::kClosed:
    case Failure::kCount:
      break;
  }
  return "closed";
}

ServerTls::Failure classifyHandshakeError(const boost::system::error_code& ec) {
  using F = ServerTls::Failure;
  if (ec == beast::error::timeout) return F::kTimeout;
  if (ec.category() == asio::error::get_ssl_category()) {
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
        reason == SSL_R_CERTIFICATE_VERIFY_FAILED)
      return F::kClientCertificate;
    return F::kProtocol;
  }
  return F::kClosed;  // EOF, reset: the client left during the handshake
}

std::string Stream::remoteAddress() const {
  boost::system::error_code ec;
  const auto ep = tcp_.socket().remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::string Stream::verifyError() {
  if (!tls_) return {};
  const long r = SSL_get_verify_result(tls_->native_handle());
  return r == X509_V_OK ? std::string() : X509_verify_cert_error_string(r);
}

Status Stream::startClientTls(std::shared_ptr<ssl::context> ctx, const std::string& host) {
  const bool verify = SSL_CTX_get_verify_mode(ctx->native_handle()) != SSL_VERIFY_NONE;
  startTls(std::move(ctx));
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);  // ec set: a DNS name
  // SNI carries DNS names only (RFC 6066 §3).
  if (ec && !SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str()))
    return Error{"TLS: cannot set the server name " + host};
  if (verify) tls_->set_verify_callback(ssl::host_name_verification(host));
  return Status::Ok();
}

}  // namespace tidegate::tls
