#include "service/auth/credential_files.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "yaml-cpp/yaml.h"

namespace stepwise::service::auth {
namespace {

constexpr char kTokensKey[] = "tokens";
constexpr char kClientCertsKey[] = "client_certs";
constexpr size_t kMaxPrincipalLength = 128;

std::string Where(const std::string& name, const YAML::Mark& mark) {
  if (mark.is_null()) return name;
  return absl::StrCat(name, ":", mark.line + 1, ":", mark.column + 1);
}

// Every problem of one file, so an operator fixes them in one pass.
class Problems {
 public:
  explicit Problems(const std::string& name) : name_(name) {}
  void Add(const YAML::Mark& mark, absl::string_view message) {
    errors_.push_back(absl::StrCat(Where(name_, mark), ": ", message));
  }
  const std::string& name() const { return name_; }
  bool empty() const { return errors_.empty(); }
  absl::Status ToStatus() const {
    return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
  }

 private:
  const std::string& name_;
  std::vector<std::string> errors_;
};

// The entries of the one list the file holds under `list_key`; an empty
// vector after reporting when the file is not that shape.
std::vector<YAML::Node> ListEntries(const YAML::Node& root,
                                    const char* list_key, Problems* p) {
  std::vector<YAML::Node> entries;
  if (!root.IsMap()) {
    p->Add(root.Mark(),
           absl::StrCat("expected a map with the key '", list_key, "'"));
    return entries;
  }
  YAML::Node list;
  bool found = false;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (key == list_key && !found) {
      list = kv.second;
      found = true;
    } else if (key == list_key) {
      p->Add(kv.first.Mark(), absl::StrCat("'", list_key, "' is given twice"));
    } else {
      p->Add(kv.first.Mark(), absl::StrCat("unknown key '", key,
                                           "' (expected '", list_key, "')"));
    }
  }
  if (!found) {
    p->Add(root.Mark(), absl::StrCat("missing '", list_key, "'"));
    return entries;
  }
  if (!list.IsSequence() || list.size() == 0) {
    p->Add(list.Mark(),
           absl::StrCat(list_key, ": expected a non-empty list of entries"));
    return entries;
  }
  for (const YAML::Node& entry : list) entries.push_back(entry);
  return entries;
}

// The keys of one list entry, each known key at most once. Unknown and
// repeated keys are reported; the first occurrence wins.
std::map<std::string, YAML::Node> EntryFields(
    const YAML::Node& entry, std::initializer_list<absl::string_view> known,
    Problems* p) {
  std::map<std::string, YAML::Node> fields;
  if (!entry.IsMap()) {
    p->Add(entry.Mark(), absl::StrCat("expected a map with the keys ",
                                      absl::StrJoin(known, ", ")));
    return fields;
  }
  for (const auto& kv : entry) {
    const std::string key = kv.first.as<std::string>();
    bool is_known = false;
    for (absl::string_view k : known) is_known = is_known || k == key;
    if (!is_known) {
      p->Add(kv.first.Mark(), absl::StrCat("unknown key '", key, "' (expected ",
                                           absl::StrJoin(known, ", "), ")"));
      continue;
    }
    if (!fields.emplace(key, kv.second).second) {
      p->Add(kv.first.Mark(), absl::StrCat("'", key, "' is given twice"));
    }
  }
  return fields;
}

const YAML::Node* Field(const std::map<std::string, YAML::Node>& fields,
                        const char* key) {
  auto it = fields.find(key);
  return it == fields.end() ? nullptr : &it->second;
}

// A required scalar; "" after reporting when missing or not a scalar.
std::string RequiredScalar(const std::map<std::string, YAML::Node>& fields,
                           const char* key, const YAML::Node& entry,
                           Problems* p) {
  const YAML::Node* node = Field(fields, key);
  if (node == nullptr) {
    p->Add(entry.Mark(), absl::StrCat("missing '", key, "'"));
    return "";
  }
  if (!node->IsScalar() || node->Scalar().empty()) {
    p->Add(node->Mark(), absl::StrCat(key, ": expected a non-empty string"));
    return "";
  }
  return node->Scalar();
}

std::string ParsePrincipal(const std::map<std::string, YAML::Node>& fields,
                           const YAML::Node& entry, Problems* p) {
  std::string name = RequiredScalar(fields, "principal", entry, p);
  if (name.empty()) return name;
  const YAML::Mark mark = Field(fields, "principal")->Mark();
  if (name == "anonymous" || name == "system") {
    p->Add(mark, absl::StrCat("principal: '", name,
                              "' is reserved (the server uses it itself)"));
    return "";
  }
  if (!ValidPrincipalName(name)) {
    p->Add(mark,
           "principal: use 1..128 letters, digits and . _ - @ : / + "
           "(no spaces or quotes)");
    return "";
  }
  return name;
}

RoleSet ParseRoles(const std::map<std::string, YAML::Node>& fields,
                   const YAML::Node& entry, Problems* p) {
  RoleSet roles;
  const YAML::Node* node = Field(fields, "roles");
  if (node == nullptr) {
    p->Add(entry.Mark(), "missing 'roles'");
    return roles;
  }
  if (!node->IsSequence() || node->size() == 0) {
    p->Add(node->Mark(),
           absl::StrCat("roles: expected a non-empty list, e.g. [evaluator] "
                        "(roles: ",
                        RoleNamesInFiles(), ")"));
    return roles;
  }
  std::set<std::string> listed;
  for (const YAML::Node& item : *node) {
    if (!item.IsScalar()) {
      p->Add(item.Mark(), "roles: expected role names");
      continue;
    }
    const std::string& name = item.Scalar();
    if (!listed.insert(name).second) {
      p->Add(item.Mark(), absl::StrCat("role '", name, "' is listed twice"));
      continue;
    }
    const std::optional<RoleSet> named = RolesNamed(name);
    if (!named.has_value()) {
      p->Add(item.Mark(), absl::StrCat("unknown role '", name,
                                       "' (roles: ", RoleNamesInFiles(), ")"));
      continue;
    }
    roles.Add(*named);
  }
  return roles;
}

bool ParseHexSha256(absl::string_view hex, Sha256* out) {
  if (hex.size() != 64) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  const std::string bytes = absl::HexStringToBytes(hex);
  std::memcpy(out->data(), bytes.data(), out->size());
  return true;
}

absl::StatusOr<YAML::Node> LoadYaml(absl::string_view text,
                                    const std::string& name) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(name, e.mark), ": ", e.msg));
  }
}

std::string ModeText(mode_t mode) {
  return absl::StrFormat("%04o", static_cast<unsigned>(mode & 07777));
}

}  // namespace

Sha256 TokenSha256(absl::string_view token) {
  Sha256 digest;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest.data());
  return digest;
}

std::string TokenSha256Hex(absl::string_view token) {
  const Sha256 digest = TokenSha256(token);
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(digest.data()), digest.size()));
}

bool ValidPrincipalName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxPrincipalLength) return false;
  if (name == "anonymous" || name == "system") return false;
  for (char c : name) {
    const bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                    c == '.' || c == '_' || c == '-' || c == '@' || c == ':' ||
                    c == '/' || c == '+';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(
    absl::string_view text, const std::string& name) {
  absl::StatusOr<YAML::Node> root = LoadYaml(text, name);
  if (!root.ok()) return root.status();
  Problems p(name);
  std::vector<TokenEntry> tokens;
  try {
    std::map<Sha256, YAML::Mark> seen;
    for (const YAML::Node& entry : ListEntries(*root, kTokensKey, &p)) {
      const auto fields =
          EntryFields(entry, {"sha256", "principal", "roles"}, &p);
      if (!entry.IsMap()) continue;
      TokenEntry token;
      const std::string hex = RequiredScalar(fields, "sha256", entry, &p);
      if (!hex.empty()) {
        const YAML::Mark mark = Field(fields, "sha256")->Mark();
        // The value is never echoed: it might be a token pasted by mistake.
        if (!ParseHexSha256(hex, &token.sha256)) {
          p.Add(mark,
                absl::StrCat("sha256: expected 64 hex digits (the SHA-256 of "
                             "the token, as `stepwise token hash` prints "
                             "it), got ",
                             hex.size(), " characters"));
        } else if (auto [it, inserted] = seen.emplace(token.sha256, mark);
                   !inserted) {
          p.Add(mark, absl::StrCat("sha256: the same token hash is already "
                                   "listed at ",
                                   Where(name, it->second)));
        }
      }
      token.principal = ParsePrincipal(fields, entry, &p);
      token.roles = ParseRoles(fields, entry, &p);
      tokens.push_back(std::move(token));
    }
  } catch (const YAML::Exception& e) {
    p.Add(e.mark, e.msg);
  }
  if (!p.empty()) return p.ToStatus();
  return tokens;
}

absl::StatusOr<std::vector<CertEntry>> ParseClientCertFile(
    absl::string_view text, const std::string& name) {
  absl::StatusOr<YAML::Node> root = LoadYaml(text, name);
  if (!root.ok()) return root.status();
  Problems p(name);
  std::vector<CertEntry> certs;
  try {
    std::map<std::pair<CertEntry::Field, std::string>, YAML::Mark> seen;
    for (const YAML::Node& entry : ListEntries(*root, kClientCertsKey, &p)) {
      const auto fields =
          EntryFields(entry, {"common_name", "san", "principal", "roles"}, &p);
      if (!entry.IsMap()) continue;
      CertEntry cert;
      const bool has_cn = Field(fields, "common_name") != nullptr;
      const bool has_san = Field(fields, "san") != nullptr;
      if (has_cn == has_san) {
        p.Add(entry.Mark(),
              "give exactly one of 'common_name' and 'san' (the certificate "
              "field this entry matches)");
      } else {
        const char* key = has_cn ? "common_name" : "san";
        cert.field = has_cn ? CertEntry::Field::kCommonName
                            : CertEntry::Field::kSubjectAltName;
        cert.value = RequiredScalar(fields, key, entry, &p);
        if (!cert.value.empty()) {
          const YAML::Mark mark = Field(fields, key)->Mark();
          if (auto [it, inserted] =
                  seen.emplace(std::make_pair(cert.field, cert.value), mark);
              !inserted) {
            p.Add(mark, absl::StrCat(key, ": the same ", key,
                                     " is already listed at ",
                                     Where(name, it->second)));
          }
        }
      }
      cert.principal = ParsePrincipal(fields, entry, &p);
      cert.roles = ParseRoles(fields, entry, &p);
      certs.push_back(std::move(cert));
    }
  } catch (const YAML::Exception& e) {
    p.Add(e.mark, e.msg);
  }
  if (!p.empty()) return p.ToStatus();
  return certs;
}

absl::StatusOr<std::string> ReadProtectedFile(const std::string& path,
                                              unsigned forbidden_mode) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", path, ": not a regular file"));
  }
  if ((st.st_mode & forbidden_mode) != 0) {
    close(fd);
    const bool readable = (st.st_mode & forbidden_mode & 044) != 0;
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": mode ", ModeText(st.st_mode), " lets group or others ",
        readable ? "read" : "write", " it; chmod ",
        ModeText(st.st_mode & ~forbidden_mode & 0777), " ", path));
  }
  std::string text;
  char buf[8192];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read ", path, ": ", strerror(err)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

absl::StatusOr<std::vector<TokenEntry>> LoadTokenFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadProtectedFile(path, 077);
  if (!text.ok()) return text.status();
  return ParseTokenFile(*text, path);
}

absl::StatusOr<std::vector<CertEntry>> LoadClientCertFile(
    const std::string& path) {
  absl::StatusOr<std::string> text = ReadProtectedFile(path, 022);
  if (!text.ok()) return text.status();
  return ParseClientCertFile(*text, path);
}

TokenTable::TokenTable(std::vector<TokenEntry> entries, Equal equal)
    : entries_(std::move(entries)),
      equal_(equal != nullptr ? equal : &CRYPTO_memcmp) {}

const TokenEntry* TokenTable::Find(absl::string_view token) const {
  const Sha256 digest = TokenSha256(token);
  const TokenEntry* found = nullptr;
  for (const TokenEntry& entry : entries_) {
    // Every entry is compared, also after a match: hashes are unique (the
    // loader refuses duplicates), so at most one matches.
    const bool equal =
        equal_(entry.sha256.data(), digest.data(), digest.size()) == 0;
    found = equal ? &entry : found;
  }
  return found;
}

CertTable::CertTable(std::vector<CertEntry> entries)
    : entries_(std::move(entries)) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    auto& index = entries_[i].field == CertEntry::Field::kCommonName
                      ? by_common_name_
                      : by_san_;
    index.emplace(entries_[i].value, i);
  }
}

std::vector<const CertEntry*> CertTable::Match(
    const PeerCertificate& cert) const {
  std::vector<const CertEntry*> matched;
  auto add = [&](size_t i) {
    const CertEntry* entry = &entries_[i];
    for (const CertEntry* m : matched) {
      if (m == entry) return;
    }
    matched.push_back(entry);
  };
  if (!cert.common_name.empty()) {
    auto it = by_common_name_.find(cert.common_name);
    if (it != by_common_name_.end()) add(it->second);
  }
  for (const std::string& san : cert.subject_alt_names) {
    auto it = by_san_.find(san);
    if (it != by_san_.end()) add(it->second);
  }
  return matched;
}

}  // namespace stepwise::service::auth
