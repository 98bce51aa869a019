// Test support: a throwaway certificate authority made with the OpenSSL C
// API, issuing server and client certificates on the spot, and a helper to
// write them into a test's temporary folder. Nothing is read from or kept
// outside the test.
#ifndef STEPWISE_TESTS_SERVICE_AUTH_TEST_CERTS_H_
#define STEPWISE_TESTS_SERVICE_AUTH_TEST_CERTS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace stepwise::testing {

struct CertSpec {
  std::string common_name;
  std::vector<std::string> dns_names;  // subjectAltName DNS:...
  std::vector<std::string> ips;        // subjectAltName IP:...
  std::vector<std::string> uris;       // subjectAltName URI:...
  bool server = false;                 // serverAuth, else clientAuth
  bool expired = false;                // valid until yesterday
};

// A server certificate for localhost and 127.0.0.1.
CertSpec ServerSpec(bool expired = false);
// A client certificate with subject CN `common_name` and the given SANs.
CertSpec ClientSpec(const std::string& common_name,
                    std::vector<std::string> dns_names = {},
                    std::vector<std::string> uris = {});

struct KeyAndCert {
  std::string key_pem;
  std::string cert_pem;
};

class TestCa {
 public:
  // A self-signed P-256 CA valid for a day.
  explicit TestCa(const std::string& common_name);
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;
  ~TestCa();

  const std::string& cert_pem() const { return cert_pem_; }
  // A fresh P-256 key and a certificate for it, signed by this CA.
  KeyAndCert Issue(const CertSpec& spec) const;

 private:
  void* key_ = nullptr;   // EVP_PKEY
  void* cert_ = nullptr;  // X509
  std::string cert_pem_;
};

// A fresh, empty folder under ::testing::TempDir().
std::string MakeTestDir(const std::string& name);

// Writes `text` to dir/name with `mode`; returns the path.
std::string WriteTestFile(const std::string& dir, const std::string& name,
                          const std::string& text, mode_t mode = 0600);

}  // namespace stepwise::testing

#endif  // STEPWISE_TESTS_SERVICE_AUTH_TEST_CERTS_H_
