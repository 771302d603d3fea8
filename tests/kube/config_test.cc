#include "kube/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace tidegate::kube {
namespace {

class KubeConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tidegate-kubeconfig-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  std::filesystem::path dir_;
};

constexpr const char* kKubeconfig = R"(apiVersion: v1
kind: Config
current-context: edge
clusters:
- name: ack
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority: ca.pem
- name: lab
  cluster:
    server: https://[fd00::1]:8443
    certificate-authority-data: Zm9vYmFy
    insecure-skip-tls-verify: true
users:
- name: sa
  user:
    token: abc.def
- name: admin
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
- name: sso
  user:
    exec:
      command: aws
contexts:
- name: edge
  context: {cluster: ack, user: sa, namespace: inference}
- name: lab
  context: {cluster: lab, user: admin}
- name: sso
  context: {cluster: ack, user: sso}
- name: broken
  context: {cluster: nowhere, user: sa}
)";

TEST_F(KubeConfigFile, CurrentContextGivesServerCaTokenAndNamespace) {
  write("ca.pem", "PEM");
  const auto path = write("config", kKubeconfig);
  auto c = fromKubeconfig(path);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->host, "10.0.0.1");
  EXPECT_EQ(c->port, 6443);
  EXPECT_TRUE(c->https);
  EXPECT_EQ(c->tls.ca_file, (dir_ / "ca.pem").string());  // relative to the file
  EXPECT_TRUE(c->tls.verify);
  EXPECT_EQ(c->token, "abc.def");
  EXPECT_EQ(c->ns, "inference");
}

TEST_F(KubeConfigFile, NamedContextWithInlineDataAndClientCertificate) {
  const auto path = write("config", kKubeconfig);
  auto c = fromKubeconfig(path, "lab");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->host, "fd00::1");
  EXPECT_EQ(c->port, 8443);
  EXPECT_EQ(c->tls.ca_pem, "foobar");
  EXPECT_FALSE(c->tls.verify);
  EXPECT_EQ(c->tls.certificate_pem, "cert");
  EXPECT_EQ(c->tls.key_pem, "key");
  EXPECT_EQ(c->token, "");
  EXPECT_EQ(c->ns, "default");
}

TEST_F(KubeConfigFile, UnsupportedAndBrokenEntriesAreClearErrors) {
  const auto path = write("config", kKubeconfig);
  const auto ca = write("ca.pem", "PEM");
  struct Case {
    std::string context, needle;
  };
  for (const auto& [ctx, needle] :
       std::vector<Case>{{"sso", "exec credential plugins are not supported"},
                         {"broken", "cluster \"nowhere\" not found"},
                         {"missing", "context \"missing\" not found"},
                         {"edge", "certificate-authority: " + ca + " does not exist"}}) {
    if (ctx == "edge") std::filesystem::remove(ca);
    auto c = fromKubeconfig(path, ctx);
    ASSERT_FALSE(c) << ctx;
    EXPECT_NE(c.error().message.find(needle), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find(path), std::string::npos) << c.error().message;
  }
  EXPECT_FALSE(fromKubeconfig((dir_ / "absent").string()));
  EXPECT_FALSE(fromKubeconfig(write("notyaml", "clusters: [")));
}

TEST_F(KubeConfigFile, InClusterReadsTheServiceAccount) {
  write("token", "tok\n");
  write("namespace", "tidegate");
  write("ca.crt", "PEM");
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = inCluster(dir_.string());
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token, "tok");
  EXPECT_EQ(c->token_file, (dir_ / "token").string());
  EXPECT_EQ(c->ns, "tidegate");
  auto outside = inCluster(dir_.string());
  ASSERT_FALSE(outside);
  EXPECT_NE(outside.error().message.find("--kubeconfig"), std::string::npos);
}

TEST(KubeServer, UrlsParse) {
  ClusterConfig c;
  EXPECT_TRUE(parseServer("http://127.0.0.1:8001", c));
  EXPECT_FALSE(c.https);
  EXPECT_EQ(c.port, 8001);
  EXPECT_TRUE(parseServer("https://api.example.com", c));
  EXPECT_EQ(c.port, 443);
  for (const char* bad : {"api.example.com", "https://", "https://h:0", "https://h:99999",
                          "https://h:80/prefix", "ftp://h"})
    EXPECT_FALSE(parseServer(bad, c)) << bad;
}

}  // namespace
}  // namespace tidegate::kube
