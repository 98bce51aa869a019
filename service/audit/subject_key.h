// The secret key that keeps patient references out of the audit log: records
// hold HMAC-SHA256(key, subject_id), never the subject_id (docs/audit-log.md
// §4). The key lives in a key file created on first start.
//
// Thread-safety: a SubjectKey is immutable once loaded; Hash may be called
// from any thread.
#ifndef STEPWISE_SERVICE_AUDIT_SUBJECT_KEY_H_
#define STEPWISE_SERVICE_AUDIT_SUBJECT_KEY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/audit/file_system.h"

namespace stepwise::service::audit {

inline constexpr size_t kSubjectKeyBytes = 32;

class SubjectKey {
 public:
  // Loads the key from `path`; if there is no file there, creates one
  // (exclusively, mode 0600) holding 32 bytes from RAND_bytes as hex. Fails
  // with FAILED_PRECONDITION if the file can be read or written by group or
  // others, or does not hold a key.
  static absl::StatusOr<SubjectKey> LoadOrCreate(
      const std::string& path, FileSystem& fs = *DefaultFileSystem());

  // A key from its 32 raw bytes (tests, tools).
  static absl::StatusOr<SubjectKey> FromBytes(absl::string_view bytes);

  SubjectKey(const SubjectKey&) = default;
  SubjectKey& operator=(const SubjectKey&) = default;
  ~SubjectKey();

  // Lowercase hex HMAC-SHA256(key, subject_id): 64 characters.
  std::string Hash(absl::string_view subject_id) const;

 private:
  explicit SubjectKey(std::string bytes);

  std::string bytes_;
  // HMAC's padded keys (RFC 2104): the key, zero-padded to SHA-256's 64-byte
  // block, XOR 0x36 and XOR 0x5c. Kept so that a Hash() is two plain SHA-256
  // passes on a reused context instead of OpenSSL's HMAC(), which fetches
  // the algorithm and allocates its contexts on every call.
  std::string inner_pad_;
  std::string outer_pad_;
};

// The same as key.Hash(subject_id).
std::string SubjectHash(const SubjectKey& key, absl::string_view subject_id);

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_SUBJECT_KEY_H_
