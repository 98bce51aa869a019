// The two YAML files that say who may call (docs/security.md):
//
//   tokens file         bearer tokens, stored as their SHA-256 only
//     tokens:
//       - sha256: 3f0a...   # `stepwise token hash` prints it
//         principal: ehr-gateway
//         roles: [evaluator]
//
//   client certs file   verified client certificates, by subject CN or SAN
//     client_certs:
//       - common_name: ehr-gateway.clinic.example   # or san: ...
//         principal: ehr-gateway
//         roles: [evaluator]
//
// Loading refuses, with file:line:column, unknown keys, missing keys, unknown
// roles, malformed hashes and duplicates; and a tokens file that group or
// others may read or write (a client certs file that they may write). No
// message repeats a hash or a certificate name: a token pasted into the
// sha256 field by mistake must not reach a log.
//
// TokenTable and CertTable are immutable after construction and safe to
// share between threads.
#ifndef STEPWISE_SERVICE_AUTH_CREDENTIAL_FILES_H_
#define STEPWISE_SERVICE_AUTH_CREDENTIAL_FILES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/auth/roles.h"

namespace stepwise::service::auth {

using Sha256 = std::array<uint8_t, 32>;

// SHA-256 of `token`'s bytes.
Sha256 TokenSha256(absl::string_view token);
// The same as 64 lowercase hex digits: what a tokens file holds.
std::string TokenSha256Hex(absl::string_view token);

struct TokenEntry {
  Sha256 sha256{};
  std::string principal;
  RoleSet roles;
};

struct CertEntry {
  enum class Field { kCommonName, kSubjectAltName };
  Field field = Field::kCommonName;
  std::string value;
  std::string principal;
  RoleSet roles;
};

// Parse YAML text already read; `name` prefixes the positions in messages.
// INVALID_ARGUMENT listing every problem, one per line.
absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(absl::string_view text,
                                                       const std::string& name);
absl::StatusOr<std::vector<CertEntry>> ParseClientCertFile(
    absl::string_view text, const std::string& name);

// Read and parse a file. A tokens file must not be readable or writable by
// group or others (chmod 600); a client certs file must not be writable by
// them (its names are not secret, its mapping is). FAILED_PRECONDITION for
// a file that cannot be read or has the wrong mode.
absl::StatusOr<std::vector<TokenEntry>> LoadTokenFile(const std::string& path);
absl::StatusOr<std::vector<CertEntry>> LoadClientCertFile(
    const std::string& path);

// Reads `path` and refuses it if its mode has any of `forbidden_mode` bits
// (e.g. 077). The mode is checked on the opened file, not the path.
absl::StatusOr<std::string> ReadProtectedFile(const std::string& path,
                                              unsigned forbidden_mode);

// Bearer tokens by hash. Find compares the presented token's hash with every
// entry using a constant-time compare and never stops early, so the time
// taken says nothing about which stored hash came close.
class TokenTable {
 public:
  // memcmp-like; 0 means equal. Default: OpenSSL's CRYPTO_memcmp.
  using Equal = int (*)(const void* a, const void* b, size_t n);

  explicit TokenTable(std::vector<TokenEntry> entries, Equal equal = nullptr);

  // The entry for `token`, or null.
  const TokenEntry* Find(absl::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<TokenEntry> entries_;
  Equal equal_;
};

// What a verified client certificate says about its holder.
struct PeerCertificate {
  std::string common_name;                     // "" if the subject has none
  std::vector<std::string> subject_alt_names;  // DNS, URI, email, IP
  std::string pem;                             // the leaf, for fingerprints
};

// Client certificates by subject CN or SAN (exact, byte-for-byte match).
class CertTable {
 public:
  explicit CertTable(std::vector<CertEntry> entries);

  // Every entry the certificate matches (by its CN or any of its SANs);
  // more than one entry is ambiguous and the caller must refuse it.
  std::vector<const CertEntry*> Match(const PeerCertificate& cert) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<CertEntry> entries_;
  absl::flat_hash_map<std::string, size_t> by_common_name_;
  absl::flat_hash_map<std::string, size_t> by_san_;
};

// Principal names: 1..128 of letters, digits and . _ - @ : / + (they appear
// in audit records and log lines). "anonymous" and "system" are reserved.
bool ValidPrincipalName(absl::string_view name);

}  // namespace stepwise::service::auth

#endif  // STEPWISE_SERVICE_AUTH_CREDENTIAL_FILES_H_
