// The server's TLS credentials: its certificate chain and key, and
// optionally the CA that signs client certificates (mutual TLS).
//
// The files are read and checked once, at start-up, so a wrong path, a key
// that does not match the certificate or an expired certificate is an
// operator's error message rather than a handshake failure at the first
// client. Client certificates are requested only together with a client CA
// and are always verified against it: a certificate the server has not
// verified never names a principal (authorizer.h).
//
// Thread-safety: free functions.
#ifndef STEPWISE_SERVICE_AUTH_TLS_H_
#define STEPWISE_SERVICE_AUTH_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"

namespace stepwise::service::auth {

struct TlsFiles {
  // PEM: the server certificate first, then any intermediates.
  std::string cert_chain;
  // PEM private key of the first certificate; group and others must not
  // be able to read it (chmod 600).
  std::string private_key;
  // PEM CA certificate(s) that sign client certificates. Empty: client
  // certificates are not requested.
  std::string client_ca;
  // Refuse the handshake of a client without a valid certificate (needs
  // client_ca). False: a certificate is verified if sent, and a call may
  // authenticate with a bearer token instead.
  bool require_client_cert = false;
};

// The credentials for grpc::ServerBuilder::AddListeningPort, or
// FAILED_PRECONDITION naming the file and what is wrong with it.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files);

}  // namespace stepwise::service::auth

#endif  // STEPWISE_SERVICE_AUTH_TLS_H_
