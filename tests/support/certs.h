#pragma once
// Certificates a test makes with the openssl CLI, in a temporary directory removed with the
// object: a CA, server certificates for 127.0.0.1 and localhost (one current, one to rotate to,
// one expired), a client certificate from the same CA, and a client certificate from a CA the
// servers do not trust. Each pair is `<name>.crt` / `<name>.key`.

#include <string>

namespace tidegate::testing {

struct TestCerts {
  TestCerts();  // throws std::runtime_error with openssl's output if a step fails
  ~TestCerts();
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  std::string dir;
  std::string crt(const std::string& name) const { return dir + "/" + name + ".crt"; }
  std::string key(const std::string& name) const { return dir + "/" + name + ".key"; }
  // Names: "ca" and "other-ca" (self-signed CAs); for 127.0.0.1 and localhost "server" (by ca),
  // "server2" (by other-ca: a client can tell which one a server presents) and "expired" (by
  // ca, expired yesterday); clients "client" (by ca) and "stranger" (by other-ca).
};

}  // namespace tidegate::testing
