#include "service/auth/authorizer.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <iostream>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc_security_constants.h"

namespace stepwise::service::auth {
namespace {

constexpr absl::string_view kBearer = "bearer";

// The failure reasons: the `reason` label of stepwise_auth_failures_total.
constexpr char kMissingCredentials[] = "missing_credentials";
constexpr char kMalformedAuthorization[] = "malformed_authorization";
constexpr char kUnknownToken[] = "unknown_token";
constexpr char kUnknownCertificate[] = "unknown_certificate";
constexpr char kAmbiguousCertificate[] = "ambiguous_certificate";
constexpr char kMissingRole[] = "missing_role";
constexpr char kUnlistedMethod[] = "unlisted_method";

std::string ToString(const grpc::string_ref& s) {
  return std::string(s.data(), s.size());
}

// The token of "Bearer <token>" (the scheme is case-insensitive, RFC 7235);
// nullopt for anything else.
std::optional<absl::string_view> BearerToken(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  if (value.size() <= kBearer.size() + 1 ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer) ||
      value[kBearer.size()] != ' ') {
    return std::nullopt;
  }
  const absl::string_view token =
      absl::StripLeadingAsciiWhitespace(value.substr(kBearer.size() + 1));
  if (token.empty()) return std::nullopt;
  for (char c : token) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  return token;
}

// SHA-256 of the certificate's DER, for log lines: it tells an operator
// which certificate knocked without naming its holder.
std::string Fingerprint(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (bio == nullptr) return "";
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (cert == nullptr) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &len) != 1) return "";
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), len));
}

}  // namespace

CallerCredentials CredentialsOf(const grpc::ServerContextBase& context) {
  CallerCredentials caller;
  const auto& metadata = context.client_metadata();
  auto [begin, end] = metadata.equal_range(grpc::string_ref("authorization"));
  for (auto it = begin; it != end; ++it) {
    caller.authorization.push_back(ToString(it->second));
  }
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr) caller.certificate = CertificateOf(*auth);
  caller.peer = context.peer();
  return caller;
}

std::optional<PeerCertificate> CertificateOf(const grpc::AuthContext& auth) {
  const std::vector<grpc::string_ref> type =
      auth.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  if (type.empty() ||
      type.front() != grpc::string_ref(GRPC_SSL_TRANSPORT_SECURITY_TYPE)) {
    return std::nullopt;
  }
  // The server requests client certificates only with verification against
  // the configured client CA (tls.h), so a certificate present here has
  // passed the chain check.
  const std::vector<grpc::string_ref> pem =
      auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return std::nullopt;
  PeerCertificate cert;
  cert.pem = ToString(pem.front());
  const std::vector<grpc::string_ref> cn =
      auth.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (!cn.empty()) cert.common_name = ToString(cn.front());
  for (const grpc::string_ref& san :
       auth.FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
    cert.subject_alt_names.push_back(ToString(san));
  }
  return cert;
}

LogSink StderrLogSink() {
  return [](const std::string& line) {
    // One write per line, so concurrent refusals do not interleave.
    std::cerr << absl::StrCat("stepwise-server: auth: ", line, "\n")
              << std::flush;
  };
}

Authorizer::Authorizer(AuthorizerOptions options)
    : anonymous_(options.anonymous),
      tokens_(std::move(options.tokens), options.equal),
      certs_(std::move(options.client_certs)),
      log_(options.log ? std::move(options.log) : StderrLogSink()) {
  if (options.registry != nullptr) {
    failures_ = &options.registry->AddCounter(
        "stepwise_auth_failures_total",
        "Calls refused by authentication (UNAUTHENTICATED) or authorization "
        "(PERMISSION_DENIED), by reason and method.",
        {"reason", "method"});
  }
}

absl::Status Authorizer::Refuse(absl::StatusCode code, absl::string_view reason,
                                absl::string_view method_label,
                                const CallerCredentials& caller,
                                const std::string& message,
                                const std::string& log_detail) const {
  if (failures_ != nullptr) {
    failures_->WithLabels({std::string(reason), std::string(method_label)})
        .Increment();
  }
  log_(absl::StrCat(
      code == absl::StatusCode::kUnauthenticated ? "UNAUTHENTICATED"
                                                 : "PERMISSION_DENIED",
      " ", method_label, " from ", caller.peer.empty() ? "?" : caller.peer,
      ": ", message, log_detail.empty() ? "" : " (", log_detail,
      log_detail.empty() ? "" : ")"));
  return absl::Status(code, message);
}

absl::StatusOr<Principal> Authorizer::Authorize(
    const grpc::ServerContextBase& context, absl::string_view method) const {
  const MethodPolicy* policy = FindMethod(method);
  if (anonymous_ && policy != nullptr && policy->role.has_value()) {
    // The developer mode's hot path reads nothing from the call.
    return Principal{kAnonymousPrincipal, RoleSet::All(), Mechanism::kNone};
  }
  return Authorize(CredentialsOf(context), method);
}

absl::StatusOr<Principal> Authorizer::Authorize(
    const CallerCredentials& caller, absl::string_view method) const {
  const MethodPolicy* policy = FindMethod(method);
  if (policy == nullptr) {
    return Refuse(absl::StatusCode::kPermissionDenied, kUnlistedMethod,
                  "unlisted", caller,
                  "the method is not in the server's role table");
  }
  if (!policy->role.has_value()) {
    return Principal{kAnonymousPrincipal, RoleSet(), Mechanism::kNone};
  }
  if (anonymous_) {
    return Principal{kAnonymousPrincipal, RoleSet::All(), Mechanism::kNone};
  }
  const absl::string_view label = policy->short_name;
  const Role role = *policy->role;

  Principal principal;
  if (!caller.authorization.empty()) {
    if (caller.authorization.size() > 1) {
      return Refuse(absl::StatusCode::kUnauthenticated, kMalformedAuthorization,
                    label, caller, "more than one authorization header");
    }
    std::optional<absl::string_view> token =
        BearerToken(caller.authorization.front());
    if (!token.has_value()) {
      return Refuse(absl::StatusCode::kUnauthenticated, kMalformedAuthorization,
                    label, caller,
                    "the authorization header is not 'Bearer <token>'");
    }
    const TokenEntry* entry = tokens_.Find(*token);
    if (entry == nullptr) {
      return Refuse(absl::StatusCode::kUnauthenticated, kUnknownToken, label,
                    caller, "the bearer token is not valid for this server");
    }
    principal = {entry->principal, entry->roles, Mechanism::kBearerToken};
  } else if (caller.certificate.has_value() && certs_.size() > 0) {
    const std::vector<const CertEntry*> matched =
        certs_.Match(*caller.certificate);
    if (matched.empty()) {
      return Refuse(absl::StatusCode::kUnauthenticated, kUnknownCertificate,
                    label, caller,
                    "the client certificate is not mapped to a principal",
                    absl::StrCat("certificate sha256 ",
                                 Fingerprint(caller.certificate->pem)));
    }
    if (matched.size() > 1) {
      return Refuse(absl::StatusCode::kUnauthenticated, kAmbiguousCertificate,
                    label, caller,
                    "the client certificate matches more than one entry of "
                    "the client certs file",
                    absl::StrCat("certificate sha256 ",
                                 Fingerprint(caller.certificate->pem)));
    }
    principal = {matched.front()->principal, matched.front()->roles,
                 Mechanism::kClientCertificate};
  } else {
    return Refuse(absl::StatusCode::kUnauthenticated, kMissingCredentials,
                  label, caller,
                  "no credentials: send 'authorization: Bearer <token>' or a "
                  "client certificate");
  }

  if (!principal.roles.Has(role)) {
    return Refuse(
        absl::StatusCode::kPermissionDenied, kMissingRole, label, caller,
        absl::StrCat("principal '", principal.name, "' lacks the role '",
                     RoleName(role), "' that ", label, " requires"));
  }
  return principal;
}

}  // namespace stepwise::service::auth
