#include "test_certs.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <utility>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace stepwise::testing {
namespace {

// OpenSSL failing to make a key or a certificate is a broken test machine,
// not a finding: stop at once, saying where.
void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "test_certs: %s failed\n", what);
  std::abort();
}

EVP_PKEY* NewKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  Check(key != nullptr, "EC key generation");
  return key;
}

std::string ToPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_X509(bio, cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

std::string ToPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr,
                                 nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  Check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

// A certificate for `key` with subject CN `cn`, signed by `issuer_key`;
// `issuer` null means self-signed.
X509* NewCert(EVP_PKEY* key, const std::string& cn, X509* issuer,
              EVP_PKEY* issuer_key, bool expired) {
  X509* cert = X509_new();
  Check(cert != nullptr, "X509_new");
  X509_set_version(cert, 2);
  unsigned char serial[16];
  Check(RAND_bytes(serial, sizeof(serial)) == 1, "RAND_bytes");
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  const long day = 24 * 60 * 60;
  X509_gmtime_adj(X509_getm_notBefore(cert), expired ? -2 * day : -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), expired ? -day : day);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(
      cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  return cert;
}

}  // namespace

CertSpec ServerSpec(bool expired) {
  CertSpec spec;
  spec.common_name = "localhost";
  spec.dns_names = {"localhost"};
  spec.ips = {"127.0.0.1"};
  spec.server = true;
  spec.expired = expired;
  return spec;
}

CertSpec ClientSpec(const std::string& common_name,
                    std::vector<std::string> dns_names,
                    std::vector<std::string> uris) {
  CertSpec spec;
  spec.common_name = common_name;
  spec.dns_names = std::move(dns_names);
  spec.uris = std::move(uris);
  return spec;
}

TestCa::TestCa(const std::string& common_name) {
  EVP_PKEY* key = NewKey();
  X509* cert = NewCert(key, common_name, nullptr, key, false);
  AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert, cert, NID_subject_key_identifier, "hash");
  Check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign");
  key_ = key;
  cert_ = cert;
  cert_pem_ = ToPem(cert);
}

TestCa::~TestCa() {
  X509_free(static_cast<X509*>(cert_));
  EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
}

KeyAndCert TestCa::Issue(const CertSpec& spec) const {
  X509* ca = static_cast<X509*>(cert_);
  EVP_PKEY* ca_key = static_cast<EVP_PKEY*>(key_);
  EVP_PKEY* key = NewKey();
  X509* cert = NewCert(key, spec.common_name, ca, ca_key, spec.expired);
  AddExtension(cert, ca, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, ca, NID_key_usage, "critical,digitalSignature");
  AddExtension(cert, ca, NID_ext_key_usage,
               spec.server ? "serverAuth" : "clientAuth");
  AddExtension(cert, ca, NID_authority_key_identifier, "keyid:always");
  std::vector<std::string> sans;
  for (const std::string& d : spec.dns_names) sans.push_back("DNS:" + d);
  for (const std::string& ip : spec.ips) sans.push_back("IP:" + ip);
  for (const std::string& u : spec.uris) sans.push_back("URI:" + u);
  if (!sans.empty()) {
    AddExtension(cert, ca, NID_subject_alt_name, absl::StrJoin(sans, ","));
  }
  Check(X509_sign(cert, ca_key, EVP_sha256()) > 0, "X509_sign");
  KeyAndCert out{ToPem(key), ToPem(cert)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

std::string MakeTestDir(const std::string& name) {
  static int counter = 0;
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      (name + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string WriteTestFile(const std::string& dir, const std::string& name,
                          const std::string& text, mode_t mode) {
  const std::string path = (std::filesystem::path(dir) / name).string();
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  Check(fd >= 0, "open test file");
  const ssize_t n = write(fd, text.data(), text.size());
  close(fd);
  Check(n == static_cast<ssize_t>(text.size()), "write test file");
  // Set explicitly: the process umask must not decide what a test checks.
  Check(chmod(path.c_str(), mode) == 0, "chmod test file");
  return path;
}

}  // namespace stepwise::testing
