#include "service/audit/subject_key.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/status_macros.h"
#include "service/audit/format.h"

namespace stepwise::service::audit {
namespace {

std::string Hex(const unsigned char* data, size_t size) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(data), size));
}

// The key in a key file's contents: 64 hex digits (optionally followed by a
// line feed) or 32 raw bytes.
absl::StatusOr<std::string> DecodeKeyFile(const std::string& path,
                                          absl::string_view contents) {
  absl::string_view hex = contents;
  if (hex.size() == 2 * kSubjectKeyBytes + 1 && hex.back() == '\n') {
    hex.remove_suffix(1);
  }
  if (hex.size() == 2 * kSubjectKeyBytes &&
      hex.find_first_not_of("0123456789abcdefABCDEF") ==
          absl::string_view::npos) {
    return absl::HexStringToBytes(hex);
  }
  if (contents.size() == kSubjectKeyBytes) return std::string(contents);
  return absl::FailedPreconditionError(absl::StrCat(
      "subject key file ", path, " holds ", contents.size(),
      " bytes, not a key (64 hex digits). If a start-up was interrupted while "
      "creating it and no audit record was written with it, remove it to "
      "create a new key"));
}

absl::StatusOr<std::string> CreateKeyFile(const std::string& path,
                                          FileSystem& fs) {
  std::array<unsigned char, kSubjectKeyBytes> key;
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    return absl::InternalError("RAND_bytes failed to make a subject key");
  }
  std::string raw(reinterpret_cast<const char*>(key.data()), key.size());
  OPENSSL_cleanse(key.data(), key.size());
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs.CreateExclusive(path);
  if (!file.ok()) return file.status();
  std::string text = absl::StrCat(
      Hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size()),
      "\n");
  absl::Status status = (*file)->Append(text);
  OPENSSL_cleanse(text.data(), text.size());
  if (status.ok()) status = (*file)->Sync();
  if (absl::Status closed = (*file)->Close(); status.ok()) status = closed;
  if (status.ok()) status = fs.SetOwnerOnly(path);
  if (status.ok()) status = fs.SyncDir(ParentDir(path));
  if (!status.ok()) {
    // Leave no half-written key behind to be refused at the next start.
    fs.Remove(path).IgnoreError();
    return status;
  }
  return raw;
}

}  // namespace

absl::StatusOr<SubjectKey> SubjectKey::LoadOrCreate(const std::string& path,
                                                    FileSystem& fs) {
  STEPWISE_ASSIGN_OR_RETURN(const bool exists, fs.FileExists(path));
  if (!exists) {
    absl::StatusOr<std::string> created = CreateKeyFile(path, fs);
    if (created.ok()) return SubjectKey(*std::move(created));
    // Another process created it first: use theirs.
    if (!absl::IsAlreadyExists(created.status())) return created.status();
  }
  STEPWISE_ASSIGN_OR_RETURN(const uint32_t mode, fs.Permissions(path));
  if ((mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "subject key file %s has mode %04o: group or others can use it; run "
        "`chmod 600 %s` (and consider whether the key has leaked)",
        path, mode, path));
  }
  STEPWISE_ASSIGN_OR_RETURN(std::string contents, fs.ReadFile(path));
  absl::StatusOr<std::string> key = DecodeKeyFile(path, contents);
  OPENSSL_cleanse(contents.data(), contents.size());
  if (!key.ok()) return key.status();
  return SubjectKey(*std::move(key));
}

absl::StatusOr<SubjectKey> SubjectKey::FromBytes(absl::string_view bytes) {
  if (bytes.size() != kSubjectKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a subject key is ", kSubjectKeyBytes, " bytes, not ", bytes.size()));
  }
  return SubjectKey(std::string(bytes));
}

constexpr size_t kSha256BlockBytes = 64;

SubjectKey::SubjectKey(std::string bytes)
    : bytes_(std::move(bytes)),
      inner_pad_(kSha256BlockBytes, '\x36'),
      outer_pad_(kSha256BlockBytes, '\x5c') {
  // Keys are 32 bytes (FromBytes, DecodeKeyFile), shorter than a block, so
  // HMAC uses them zero-padded as they are.
  for (size_t i = 0; i < bytes_.size() && i < kSha256BlockBytes; ++i) {
    inner_pad_[i] = static_cast<char>(inner_pad_[i] ^ bytes_[i]);
    outer_pad_[i] = static_cast<char>(outer_pad_[i] ^ bytes_[i]);
  }
}

SubjectKey::~SubjectKey() {
  OPENSSL_cleanse(bytes_.data(), bytes_.size());
  OPENSSL_cleanse(inner_pad_.data(), inner_pad_.size());
  OPENSSL_cleanse(outer_pad_.data(), outer_pad_.size());
}

std::string SubjectKey::Hash(absl::string_view subject_id) const {
  // HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)).
  unsigned char inner[32];
  Sha256Of({inner_pad_, subject_id}, inner);
  unsigned char mac[32];
  Sha256Of({outer_pad_, absl::string_view(reinterpret_cast<const char*>(inner),
                                          sizeof(inner))},
           mac);
  OPENSSL_cleanse(inner, sizeof(inner));
  return Hex(mac, sizeof(mac));
}

std::string SubjectHash(const SubjectKey& key, absl::string_view subject_id) {
  return key.Hash(subject_id);
}

}  // namespace stepwise::service::audit
