#include "service/auth/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/auth/credential_files.h"

namespace stepwise::service::auth {
namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                &BIO_free);
}

// Every certificate in a PEM text, in order.
std::vector<X509Ptr> ReadCertificates(const std::string& pem) {
  std::vector<X509Ptr> certs;
  BioPtr bio = MemoryBio(pem);
  if (bio == nullptr) return certs;
  while (true) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    certs.emplace_back(cert, &X509_free);
  }
  ERR_clear_error();  // the read past the last certificate
  return certs;
}

absl::StatusOr<std::string> ReadPublicFile(const std::string& path,
                                           const char* what) {
  absl::StatusOr<std::string> text = ReadProtectedFile(path, 0);
  if (!text.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": ", text.status().message()));
  }
  return text;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files) {
  absl::StatusOr<std::string> chain =
      ReadPublicFile(files.cert_chain, "tls_cert");
  if (!chain.ok()) return chain.status();
  std::vector<X509Ptr> certs = ReadCertificates(*chain);
  if (certs.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tls_cert: ", files.cert_chain, " holds no PEM certificate"));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(certs.front().get())) < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tls_cert: the certificate in ", files.cert_chain, " has expired"));
  }

  absl::StatusOr<std::string> key = ReadProtectedFile(files.private_key, 077);
  if (!key.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("tls_key: ", key.status().message()));
  }
  BioPtr key_bio = MemoryBio(*key);
  KeyPtr pkey(
      key_bio == nullptr
          ? nullptr
          : PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr),
      &EVP_PKEY_free);
  ERR_clear_error();
  if (pkey == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("tls_key: ", files.private_key,
                     " holds no PEM private key (or it is encrypted)"));
  }
  if (X509_check_private_key(certs.front().get(), pkey.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(absl::StrCat(
        "tls_key: ", files.private_key,
        " does not belong to the certificate in ", files.cert_chain));
  }

  grpc_ssl_client_certificate_request_type request =
      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  std::string client_ca;
  if (!files.client_ca.empty()) {
    absl::StatusOr<std::string> ca =
        ReadPublicFile(files.client_ca, "tls_client_ca");
    if (!ca.ok()) return ca.status();
    if (ReadCertificates(*ca).empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tls_client_ca: ", files.client_ca, " holds no PEM certificate"));
    }
    client_ca = *std::move(ca);
    request = files.require_client_cert
                  ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                  : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  } else if (files.require_client_cert) {
    return absl::FailedPreconditionError(
        "require_client_cert needs tls_client_ca: the CA that signs the "
        "client certificates");
  }

  grpc::SslServerCredentialsOptions options(request);
  options.pem_root_certs = std::move(client_ca);
  options.pem_key_cert_pairs.push_back({*std::move(key), *std::move(chain)});
  return grpc::SslServerCredentials(options);
}

}  // namespace stepwise::service::auth
