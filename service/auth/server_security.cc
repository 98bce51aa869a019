#include "service/auth/server_security.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace stepwise::service::auth {
namespace {

std::string Count(size_t n, absl::string_view noun) {
  return absl::StrCat(n, " ", noun, n == 1 ? "" : "s");
}

std::string TlsSummary(const TlsFiles& tls) {
  if (tls.cert_chain.empty()) return "TLS off";
  if (tls.client_ca.empty()) return "TLS on";
  return tls.require_client_cert
             ? "TLS on, client certificates required"
             : "TLS on, client certificates verified when sent";
}

}  // namespace

bool IsLoopbackAddress(absl::string_view address) {
  std::string host(address);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::StatusOr<ServerSecurity> SetUpServerSecurity(
    const SecurityOptions& options, metrics::Registry* registry, LogSink log) {
  if (!log) log = StderrLogSink();
  const bool authenticated =
      !options.tokens_file.empty() || !options.client_certs_file.empty();
  const bool loopback = IsLoopbackAddress(options.address);
  // First, before any file is read or port bound: an open server on a
  // reachable address is never started by accident.
  if (!authenticated && !loopback) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no authentication configured, so the server listens on loopback "
        "only (127.0.0.1, ::1, localhost), not on ",
        options.address,
        ": configure tokens_file and/or client_certs_file "
        "(docs/security.md)"));
  }
  if (!options.client_certs_file.empty() && options.tls.client_ca.empty()) {
    return absl::FailedPreconditionError(
        "client_certs_file needs tls_client_ca: a certificate the server has "
        "not verified names no principal");
  }

  AuthorizerOptions authorizer;
  authorizer.anonymous = !authenticated;
  authorizer.registry = registry;
  authorizer.log = log;
  if (!options.tokens_file.empty()) {
    absl::StatusOr<std::vector<TokenEntry>> tokens =
        LoadTokenFile(options.tokens_file);
    if (!tokens.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("tokens_file: ", tokens.status().message()));
    }
    authorizer.tokens = *std::move(tokens);
  }
  if (!options.client_certs_file.empty()) {
    absl::StatusOr<std::vector<CertEntry>> certs =
        LoadClientCertFile(options.client_certs_file);
    if (!certs.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("client_certs_file: ", certs.status().message()));
    }
    authorizer.client_certs = *std::move(certs);
  }

  ServerSecurity security;
  if (options.tls.cert_chain.empty()) {
    security.credentials = grpc::InsecureServerCredentials();
  } else {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        MakeServerCredentials(options.tls);
    if (!credentials.ok()) return credentials.status();
    security.credentials = *std::move(credentials);
  }
  security.authorizer = std::make_unique<Authorizer>(std::move(authorizer));

  const Authorizer& a = *security.authorizer;
  if (a.anonymous()) {
    log(absl::StrCat(
        "no authentication configured: listening on loopback only; every "
        "caller is \"anonymous\" with every role (",
        TlsSummary(options.tls), ")"));
  } else {
    log(absl::StrCat(Count(a.token_count(), "bearer token"), ", ",
                     Count(a.client_cert_count(), "client certificate mapping"),
                     "; ", TlsSummary(options.tls)));
    if (a.token_count() > 0 && options.tls.cert_chain.empty() && !loopback) {
      log(absl::StrCat(
          "warning: bearer tokens would cross the network in plaintext on ",
          options.address,
          ": terminate TLS here (tls_cert, tls_key) or in front of the "
          "server"));
    }
  }
  return security;
}

}  // namespace stepwise::service::auth
