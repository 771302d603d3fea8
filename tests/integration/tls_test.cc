// TLS on both sides of the gateway, with certificates the tests make (support/certs.h): HTTPS
// clients (tidegate's own client, the official `openai` npm client), mutual TLS, certificate
// rotation while a stream is open, handshake deadlines, and https engines upstream.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/http_client.h"
#include "common/tls.h"
#include "support/certs.h"
#include "support/process.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

const std::string kChat =
    R"({"model":"base","messages":[{"role":"user","content":"hello there"}],"max_tokens":4})";

// A gateway in front of the engine at `engine_port`; `tls` goes into the Gateway's spec and
// `scheme` into the Endpoints document.
std::string config(std::uint16_t engine_port, const std::string& spec,
                   const std::string& scheme = "http") {
  return "apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n"
         "  listen: 127.0.0.1:0\n  admin: 127.0.0.1:0\n" +
         spec +
         "---\napiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: InferencePool\n"
         "metadata: {name: pool}\nspec: {targetPortNumber: 1, selector: {app: e}}\n"
         "---\napiVersion: tidegate.io/v1alpha1\nkind: Endpoints\n"
         "metadata: {name: e, labels: {app: e}}\nspec: {scheme: " +
         scheme + ", addresses: [\"127.0.0.1:" + std::to_string(engine_port) +
         "\"]}\n"
         "---\napiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: InferenceModel\n"
         "metadata: {name: m}\nspec: {modelName: base, poolRef: {name: pool}}\n";
}

std::string tlsSpec(const TestCerts& c, const std::string& cert = "server",
                    const std::string& extra = "") {
  return "  tls:\n    certificateFile: " + c.crt(cert) + "\n    keyFile: " + c.key(cert) + "\n" +
         extra;
}

// A client context trusting `ca`, presenting `client` (a TestCerts name) when given.
std::shared_ptr<tls::ssl::context> clientTls(const TestCerts& c, const std::string& ca,
                                             const std::string& client = "") {
  auto ctx = tls::makeClientContext(
      {c.crt(ca), client.empty() ? "" : c.crt(client), client.empty() ? "" : c.key(client)});
  EXPECT_TRUE(ctx.ok()) << ctx.error().message;
  return ctx.ok() ? *ctx : nullptr;
}

http::ClientResult<http::Response> post(const Serve& gw, std::shared_ptr<tls::ssl::context> ctx,
                                        const std::string& host = "127.0.0.1") {
  return http::fetch(host, gw.port,
                     {.method = "POST",
                      .target = "/v1/chat/completions",
                      .body = kChat,
                      .headers = {{"Content-Type", "application/json"}},
                      .timeout_s = 10},
                     {}, {.tls = std::move(ctx)});
}

bool waitUp(const Serve& s) {
  return eventually([&] { return s.metric("tidegate_endpoint_up") == 1; });
}

TEST(Tls, ServesHttpsAndRefusesPlainHttpAndUntrustedCertificatesAsHandshakeFailures) {
  TestCerts certs;
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  Serve gw(config(engine.port, tlsSpec(certs)));
  ASSERT_TRUE(waitUp(gw));
  auto ok = post(gw, clientTls(certs, "ca"));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->status, 200u) << ok->body;
  auto by_name = post(gw, clientTls(certs, "ca"), "localhost");  // the DNS name in the SAN
  ASSERT_TRUE(by_name.ok()) << by_name.error().message;
  EXPECT_EQ(by_name->status, 200u);
  // A client that trusts another CA does not accept the server: the handshake fails.
  auto untrusted = post(gw, clientTls(certs, "other-ca"));
  ASSERT_FALSE(untrusted.ok());
  EXPECT_NE(untrusted.error().message.find("certificate verify failed"), std::string::npos)
      << untrusted.error().message;
  // Plain HTTP to the TLS port: a protocol failure, counted; the gateway carries on.
  auto plain = http::fetch("127.0.0.1", gw.port, {.target = "/v1/models", .timeout_s = 5});
  EXPECT_FALSE(plain.ok() && plain->status == 200);
  EXPECT_TRUE(eventually([&] {
    return gw.metric("tidegate_tls_handshake_failures_total", {{"reason", "protocol"}}) >= 1;
  }));
  EXPECT_GE(gw.metric("tidegate_tls_handshakes_total"), 2);
  EXPECT_GT(gw.metric("tidegate_tls_certificate_expiry_seconds"), 29 * 86400.0);
  auto again = post(gw, clientTls(certs, "ca"));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->status, 200u);
}

TEST(Tls, MutualTlsAcceptsClientsTheCaSignedAndRefusesOthers) {
  TestCerts certs;
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  Serve gw(
      config(engine.port, tlsSpec(certs, "server", "    clientCAFile: " + certs.crt("ca") + "\n")));
  ASSERT_TRUE(waitUp(gw));
  auto signed_client = post(gw, clientTls(certs, "ca", "client"));
  ASSERT_TRUE(signed_client.ok()) << signed_client.error().message;
  EXPECT_EQ(signed_client->status, 200u);
  // No certificate, or one from a CA the gateway does not trust: no answer, a counted failure.
  // (With TLS 1.3, the default, the client learns of the refusal at its first read.)
  EXPECT_FALSE(post(gw, clientTls(certs, "ca")).ok());
  EXPECT_FALSE(post(gw, clientTls(certs, "ca", "stranger")).ok());
  EXPECT_TRUE(eventually([&] {
    return gw.metric("tidegate_tls_handshake_failures_total", {{"reason", "client_certificate"}}) >=
           2;
  }));
  // Clients resume sessions (Node's agents, curl): with client certificates required, a resumed
  // session must be accepted. openssl s_client -reconnect connects six times on one session
  // (TLS 1.2 session ids: s_client waits for no TLS 1.3 ticket before reconnecting).
  auto r = runCommand(
      {"/bin/sh", "-c",
       "/usr/bin/openssl s_client -tls1_2 -connect 127.0.0.1:" + std::to_string(gw.port) +
           " -CAfile " + certs.crt("ca") + " -cert " + certs.crt("client") + " -key " +
           certs.key("client") + " -reconnect < /dev/null 2>&1"});
  EXPECT_NE(r.output.find("Reused, TLSv1.2"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("uninitialized"), std::string::npos) << r.output;
}

TEST(Tls, TheAdminAddressServesHttpsWhenAsked) {
  TestCerts certs;
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  Serve gw(
      config(engine.port, tlsSpec(certs, "server", "    admin: true\n    minVersion: \"1.3\"\n")));
  const auto ctx = clientTls(certs, "ca");
  auto metrics = http::fetch("127.0.0.1", gw.admin_port, {.target = "/metrics"}, {}, {.tls = ctx});
  ASSERT_TRUE(metrics.ok()) << metrics.error().message;
  EXPECT_EQ(metrics->status, 200u);
  EXPECT_NE(metrics->body.find("tidegate_tls_handshakes_total"), std::string::npos);
  // Plain HTTP to it gets nothing (and the gateway carries on).
  auto plain = http::fetch("127.0.0.1", gw.admin_port, {.target = "/healthz", .timeout_s = 5});
  EXPECT_FALSE(plain.ok() && plain->status == 200);
  // minVersion 1.3: a TLS 1.2 client is refused (a protocol failure).
  auto old = runCommand({"/bin/sh", "-c",
                         "/usr/bin/openssl s_client -tls1_2 -connect 127.0.0.1:" +
                             std::to_string(gw.port) + " < /dev/null 2>&1"});
  EXPECT_NE(old.output.find("protocol version"), std::string::npos) << old.output;
  auto again = http::fetch("127.0.0.1", gw.admin_port, {.target = "/healthz"}, {}, {.tls = ctx});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->body, "ok\n");
}

TEST(Tls, ASilentClientLosesItsConnectionAtTheHandshakeDeadline) {
  TestCerts certs;
  Engine engine({"--served-model-name", "base", "--time-scale", "inf"});
  Serve gw(config(engine.port, tlsSpec(certs, "server", "    handshakeTimeout: 200ms\n")));
  ASSERT_TRUE(waitUp(gw));
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), gw.port});
  const timeval limit{10, 0};  // a regression fails the read instead of hanging the suite
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  // Nothing sent: the gateway closes the connection at the deadline (a read sees EOF).
  char c;
  boost::system::error_code ec;
  s.read_some(boost::asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, boost::asio::error::eof);
  EXPECT_TRUE(eventually([&] {
    return gw.metric("tidegate_tls_handshake_failures_total", {{"reason", "timeout"}}) == 1;
  }));
}

TEST(Tls, CertificatesRotateOnReloadAndOnFileChangeWithoutDroppingAStream) {
  TestCerts certs;
  Engine engine({"--served-model-name", "base", "--time-scale", "20"});
  // The gateway reads its certificate from files the test replaces, as a Secret update would.
  const std::string live_crt = certs.dir + "/live.crt", live_key = certs.dir + "/live.key";
  auto install = [&](const std::string& name) {
    std::filesystem::copy_file(certs.crt(name), live_crt + ".tmp",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(certs.key(name), live_key + ".tmp",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(live_key + ".tmp", live_key);
    std::filesystem::rename(live_crt + ".tmp", live_crt);
  };
  install("server");
  const std::string spec =
      "  tls:\n    certificateFile: " + live_crt + "\n    keyFile: " + live_key + "\n";
  Serve gw(config(engine.port, spec));
  ASSERT_TRUE(waitUp(gw));
  const auto trusts_ca = clientTls(certs, "ca"), trusts_other = clientTls(certs, "other-ca");
  // A stream opened with the first certificate: 400 tokens at 20x take a few seconds.
  std::atomic<bool> stream_done{false};
  http::ClientResult<http::Response> stream_result = http::ClientError{};
  std::string streamed;  // written by the streaming thread only; read after join()
  std::atomic<std::size_t> streamed_bytes{0};
  std::thread streamer([&] {
    stream_result =
        http::fetch("127.0.0.1", gw.port,
                    {.method = "POST",
                     .target = "/v1/chat/completions",
                     .body = R"({"model":"base","messages":[{"role":"user","content":"hi"}],)"
                             R"("max_tokens":400,"stream":true,"ignore_eos":true})",
                     .headers = {{"Content-Type", "application/json"}},
                     .timeout_s = 60},
                    [&](std::string_view d) {
                      streamed.append(d);
                      streamed_bytes += d.size();
                      return true;
                    },
                    {.tls = trusts_ca});
    stream_done = true;
  });
  ASSERT_TRUE(eventually([&] { return streamed_bytes.load() > 100; }));
  // SIGHUP after the files changed to a certificate of the other CA.
  install("server2");
  EXPECT_TRUE(gw.reload());
  auto after = post(gw, trusts_other);
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->status, 200u);
  EXPECT_FALSE(post(gw, trusts_ca).ok());
  EXPECT_FALSE(stream_done.load());  // still streaming, on the first certificate
  // Back to the first one by changing the files alone: the watch reloads it.
  install("server");
  EXPECT_TRUE(eventually([&] { return post(gw, trusts_ca).ok(); }));
  EXPECT_GE(gw.metric("tidegate_tls_certificate_reloads_total", {{"result", "applied"}}), 2);
  streamer.join();
  ASSERT_TRUE(stream_result.ok()) << stream_result.error().message;
  EXPECT_EQ(stream_result->status, 200u);
  EXPECT_NE(streamed.find("data: [DONE]"), std::string::npos);
  // Files that do not load (a key that is not the certificate's) keep the current certificate.
  std::filesystem::copy_file(certs.key("client"), live_key,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(gw.reload());
  auto kept = post(gw, trusts_ca);
  ASSERT_TRUE(kept.ok()) << kept.error().message;
  EXPECT_EQ(kept->status, 200u);
}

TEST(Tls, HttpsEnginesAreVerifiedAndAnExpiredCertificateIsRefused) {
  TestCerts certs;
  Engine good({"--served-model-name", "base", "--time-scale", "inf", "--ssl-certfile",
               certs.crt("server"), "--ssl-keyfile", certs.key("server")});
  const std::string upstream = "  upstreamTLS: {caFile: " + certs.crt("ca") + "}\n";
  {
    Serve gw(config(good.port, upstream, "https"));
    ASSERT_TRUE(waitUp(gw));  // scraped over https
    auto r = gw.post("/v1/chat/completions", kChat);
    EXPECT_EQ(r.status, 200u) << r.body;
  }
  {
    // The same engine, but the gateway trusts another CA: refused, and said why.
    Serve gw(
        config(good.port, "  upstreamTLS: {caFile: " + certs.crt("other-ca") + "}\n", "https"));
    EXPECT_TRUE(eventually([&] {
      return gw.admin("/admin/state").body.find("certificate verify failed") != std::string::npos;
    }));
    EXPECT_GE(gw.post("/v1/chat/completions", kChat).status, 500u);
  }
  Engine expired({"--served-model-name", "base", "--time-scale", "inf", "--ssl-certfile",
                  certs.crt("expired"), "--ssl-keyfile", certs.key("expired")});
  Serve gw(config(expired.port, upstream, "https"));
  EXPECT_TRUE(eventually([&] {
    return gw.admin("/admin/state").body.find("certificate has expired") != std::string::npos;
  })) << gw.admin("/admin/state").body;
  auto r = gw.post("/v1/chat/completions", kChat);
  EXPECT_GE(r.status, 500u) << r.body;
  // Nothing reached the engine (asked without verification, as only a test may).
  auto insecure = tls::makeClientContext({.verify = false});
  ASSERT_TRUE(insecure.ok());
  auto m = http::fetch("127.0.0.1", expired.port, {.target = "/metrics"}, {}, {.tls = *insecure});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->body.find("vllm:request_success_total{"), std::string::npos) << m->body;
}

TEST(Tls, BadCertificateFilesAreConfigurationErrors) {
  TestCerts certs;
  struct Case {
    std::string spec, error;
  } cases[] = {
      {"  tls: {certificateFile: /nonexistent.crt, keyFile: " + certs.key("server") + "}\n",
       "spec.tls: TLS certificate /nonexistent.crt"},
      {"  tls: {certificateFile: " + certs.crt("server") + ", keyFile: " + certs.key("client") +
           "}\n",
       "spec.tls: TLS key " + certs.key("client")},
      {"  upstreamTLS: {caFile: /nonexistent-ca.crt}\n", "spec.upstreamTLS: TLS CA bundle"},
  };
  for (const auto& c : cases) {
    const std::string path = certs.dir + "/bad.yaml";
    std::ofstream(path) << config(1, c.spec);
    auto r = runCommand({binaryPath(), "check", "-c", path});
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(c.error), std::string::npos) << r.output;
    auto serve = runCommand({binaryPath(), "serve", "-c", path}, 20s);
    EXPECT_EQ(serve.exit_code, 2) << serve.output;
    EXPECT_NE(serve.output.find(c.error), std::string::npos) << serve.output;
  }
}

}  // namespace
}  // namespace tidegate::testing
