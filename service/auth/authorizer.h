// Who is calling, and may they call this method? Every RPC handler of a
// closed method starts with
//
//   absl::StatusOr<auth::Principal> caller =
//       authorizer.Authorize(*context, auth::kEvaluateMethod);
//   if (!caller.ok()) { finish with caller.status(); }
//
// and names caller->name in its audit record.
//
// Authentication, in order (docs/security.md):
//   1. an `authorization: Bearer <token>` header: the token's SHA-256 is
//      compared in constant time with every stored hash; a call that
//      presents a token is judged by the token alone;
//   2. otherwise a client certificate the TLS handshake verified against the
//      configured client CA, mapped by subject CN or SAN;
//   3. otherwise UNAUTHENTICATED.
// Then the method's role (roles.h): missing it is PERMISSION_DENIED, naming
// the principal and the role. With no credentials configured (the loopback
// developer mode) every caller is "anonymous" with every role.
//
// Every refusal is counted in stepwise_auth_failures_total{reason,method}
// and logged as one line; neither the counter, the log line nor the status
// message carries a token, a hash or a certificate's names.
//
// Thread-safety: immutable after construction; Authorize may be called from
// any number of threads. The log sink must be thread-safe.
#ifndef STEPWISE_SERVICE_AUTH_AUTHORIZER_H_
#define STEPWISE_SERVICE_AUTH_AUTHORIZER_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/server_context.h"
#include "service/auth/credential_files.h"
#include "service/auth/roles.h"
#include "service/metrics.h"

namespace stepwise::service::auth {

// The principal of every caller when no credentials are configured.
inline constexpr char kAnonymousPrincipal[] = "anonymous";

enum class Mechanism { kNone, kBearerToken, kClientCertificate };

struct Principal {
  std::string name;
  RoleSet roles;
  Mechanism mechanism = Mechanism::kNone;
};

// What one call presented, read from its metadata and its TLS peer.
struct CallerCredentials {
  // Every value of the `authorization` header (normally zero or one).
  std::vector<std::string> authorization;
  // The client certificate, when the handshake verified one.
  std::optional<PeerCertificate> certificate;
  // The transport peer, e.g. "ipv4:127.0.0.1:43210"; for log lines.
  std::string peer;
};

CallerCredentials CredentialsOf(const grpc::ServerContextBase& context);
// The verified client certificate of a TLS peer; nullopt on a plaintext
// connection or when the client sent none.
std::optional<PeerCertificate> CertificateOf(const grpc::AuthContext& auth);

// Receives one line per refusal (and the start-up notices), without a
// trailing newline.
using LogSink = std::function<void(const std::string& line)>;
// Writes "stepwise-server: auth: <line>" to stderr.
LogSink StderrLogSink();

struct AuthorizerOptions {
  // No credentials configured: every caller is "anonymous" with every role.
  // The server allows this on a loopback address only.
  bool anonymous = false;
  std::vector<TokenEntry> tokens;
  std::vector<CertEntry> client_certs;
  // Where stepwise_auth_failures_total is registered; null: not counted.
  metrics::Registry* registry = nullptr;
  // Default: StderrLogSink().
  LogSink log;
  // Test seam for the token compare; default CRYPTO_memcmp.
  TokenTable::Equal equal = nullptr;
};

class Authorizer {
 public:
  explicit Authorizer(AuthorizerOptions options);

  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  // The caller of `method` (a full gRPC method name, roles.h), or
  // UNAUTHENTICATED / PERMISSION_DENIED. Open methods are OK for everyone
  // (principal "anonymous", no roles); a method missing from the table is
  // PERMISSION_DENIED for everyone.
  absl::StatusOr<Principal> Authorize(const grpc::ServerContextBase& context,
                                      absl::string_view method) const;
  absl::StatusOr<Principal> Authorize(const CallerCredentials& caller,
                                      absl::string_view method) const;

  bool anonymous() const { return anonymous_; }
  size_t token_count() const { return tokens_.size(); }
  size_t client_cert_count() const { return certs_.size(); }

 private:
  // The status for a refusal; counts and logs it. `log_detail` is appended
  // to the log line only (e.g. a certificate fingerprint).
  absl::Status Refuse(absl::StatusCode code, absl::string_view reason,
                      absl::string_view method_label,
                      const CallerCredentials& caller,
                      const std::string& message,
                      const std::string& log_detail = "") const;

  const bool anonymous_;
  const TokenTable tokens_;
  const CertTable certs_;
  metrics::Family<metrics::Counter>* failures_ = nullptr;
  LogSink log_;
};

}  // namespace stepwise::service::auth

#endif  // STEPWISE_SERVICE_AUTH_AUTHORIZER_H_
