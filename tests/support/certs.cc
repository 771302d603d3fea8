#include "support/certs.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "support/process.h"

namespace tidegate::testing {

namespace {

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = runCommand(argv, std::chrono::seconds(30));
  if (r.exit_code != 0) throw std::runtime_error("openssl " + args[0] + " failed: " + r.output);
}

}  // namespace

TestCerts::TestCerts() {
  static int n = 0;
  dir = (std::filesystem::temp_directory_path() /
         ("tidegate-certs-" + std::to_string(::getpid()) + "-" + std::to_string(n++)))
            .string();
  std::filesystem::create_directories(dir);
  const std::vector<std::string> ec{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                    "-nodes"};
  auto ca = [&](const std::string& name) {
    std::vector<std::string> a{"req", "-x509"};
    a.insert(a.end(), ec.begin(), ec.end());
    a.insert(a.end(), {"-keyout", key(name), "-out", crt(name), "-days", "30", "-subj",
                       "/CN=tidegate test " + name});
    openssl(a);
  };
  ca("ca");
  ca("other-ca");
  const std::string server_ext = dir + "/server.ext", client_ext = dir + "/client.ext";
  std::ofstream(server_ext) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "extendedKeyUsage=serverAuth\n";
  std::ofstream(client_ext) << "extendedKeyUsage=clientAuth\n";
  auto leaf = [&](const std::string& name, const std::string& issuer, const std::string& ext,
                  const std::string& days) {
    std::vector<std::string> a{"req"};
    a.insert(a.end(), ec.begin(), ec.end());
    a.insert(a.end(), {"-keyout", key(name), "-out", dir + "/" + name + ".csr", "-subj",
                       "/CN=tidegate test " + name});
    openssl(a);
    // A negative -days gives a certificate whose validity ended before it began: expired.
    openssl({"x509", "-req", "-in", dir + "/" + name + ".csr", "-CA", crt(issuer), "-CAkey",
             key(issuer), "-CAcreateserial", "-out", crt(name), "-days", days, "-extfile", ext});
  };
  leaf("server", "ca", server_ext, "30");
  leaf("server2", "other-ca", server_ext, "30");
  leaf("expired", "ca", server_ext, "-1");
  leaf("client", "ca", client_ext, "30");
  leaf("stranger", "other-ca", client_ext, "30");
}

TestCerts::~TestCerts() {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace tidegate::testing
