// Everything about a server's security that is decided at start-up, in one
// call: the safe defaults on the listening address, the credential files,
// the TLS credentials and the Authorizer (docs/security.md, "Safe
// defaults").
//
//   - No tokens file and no client certs file: the developer mode. The
//     address must be loopback (127.0.0.0/8, ::1, localhost) and every
//     caller is "anonymous" with every role; a notice says so.
//   - Any other address without authentication configured is refused with
//     FAILED_PRECONDITION before anything is opened or bound.
//
// Thread-safety: a free function, called once by Server::Start.
#ifndef STEPWISE_SERVICE_AUTH_SERVER_SECURITY_H_
#define STEPWISE_SERVICE_AUTH_SERVER_SECURITY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/server_credentials.h"
#include "service/auth/authorizer.h"
#include "service/auth/tls.h"
#include "service/metrics.h"

namespace stepwise::service::auth {

struct SecurityOptions {
  // The gRPC listening address (IP or "localhost", no port).
  std::string address;
  // Empty: not configured.
  std::string tokens_file;
  std::string client_certs_file;
  // tls.cert_chain empty: plaintext.
  TlsFiles tls;
};

struct ServerSecurity {
  std::unique_ptr<Authorizer> authorizer;
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

// FAILED_PRECONDITION with an operator's message for every refusal.
// `registry` receives stepwise_auth_failures_total; `log` the start-up
// notices and the refusal lines (default: stderr).
absl::StatusOr<ServerSecurity> SetUpServerSecurity(
    const SecurityOptions& options, metrics::Registry* registry,
    LogSink log = {});

// 127.0.0.0/8, ::1, ::ffff:127.x.y.z and "localhost"; anything else
// (0.0.0.0, ::, host names) is not.
bool IsLoopbackAddress(absl::string_view address);

}  // namespace stepwise::service::auth

#endif  // STEPWISE_SERVICE_AUTH_SERVER_SECURITY_H_
