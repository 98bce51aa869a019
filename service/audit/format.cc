#include "service/audit/format.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/audit/json.h"

namespace stepwise::service::audit {
namespace {

constexpr absl::string_view kSegmentSuffix = ".jsonl";
constexpr absl::string_view kTimeFormat = "%Y-%m-%d%ET%H:%M:%E6SZ";

bool IsLowerHex64(absl::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The 64 hex digits of a raw JSON string `"…"`, or empty if it is not one.
absl::string_view HashLiteral(absl::string_view raw) {
  if (raw.size() != 66 || raw.front() != '"' || raw.back() != '"') return {};
  raw = raw.substr(1, 64);
  return IsLowerHex64(raw) ? raw : absl::string_view();
}

bool IsReservedMember(absl::string_view name) {
  return name == "seq" || name == "kind" || name == "time" ||
         name == "prev_hash" || name == "hash";
}

}  // namespace

std::string SegmentFileName(uint64_t number) {
  return absl::StrFormat("%06d%s", number, kSegmentSuffix);
}

std::optional<uint64_t> ParseSegmentFileName(absl::string_view name) {
  if (name.size() < 6 + kSegmentSuffix.size() ||
      name.substr(name.size() - kSegmentSuffix.size()) != kSegmentSuffix) {
    return std::nullopt;
  }
  const absl::string_view digits =
      name.substr(0, name.size() - kSegmentSuffix.size());
  if (!std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
    return std::nullopt;
  }
  uint64_t number;
  if (!absl::SimpleAtoi(digits, &number) || number == 0) return std::nullopt;
  // Exactly one spelling per number, so that two files never share one.
  if (SegmentFileName(number) != name) return std::nullopt;
  return number;
}

std::string QuarantineFileName(absl::string_view segment, int k) {
  return absl::StrCat(segment, ".torn-", k);
}

absl::StatusOr<std::vector<Segment>> ListSegments(FileSystem& fs,
                                                  const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(dir);
  if (!names.ok()) return names.status();
  std::vector<Segment> segments;
  for (std::string& name : *names) {
    if (std::optional<uint64_t> number = ParseSegmentFileName(name)) {
      segments.push_back({*number, std::move(name)});
    }
  }
  std::sort(
      segments.begin(), segments.end(),
      [](const Segment& a, const Segment& b) { return a.number < b.number; });
  return segments;
}

void Sha256Of(std::initializer_list<absl::string_view> parts,
              unsigned char digest[32]) {
  // OpenSSL 3's one-shot SHA256() fetches the algorithm from the provider
  // store and allocates a context on every call, a third of the cost of
  // hashing a record; fetch once, keep one context per thread.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct ContextDeleter {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  thread_local const std::unique_ptr<EVP_MD_CTX, ContextDeleter> ctx(
      EVP_MD_CTX_new());
  bool ok = md != nullptr && ctx != nullptr &&
            EVP_DigestInit_ex2(ctx.get(), md, nullptr) == 1;
  for (absl::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1;
  }
  unsigned int size = 0;
  ok = ok && EVP_DigestFinal_ex(ctx.get(), digest, &size) == 1 && size == 32;
  if (!ok) {
    // Only a broken OpenSSL gets here; a record must never get a wrong hash.
    std::fputs("fatal: SHA-256 is not available from OpenSSL\n", stderr);
    std::abort();
  }
}

void Sha256HexTo(absl::string_view data, char* hex) {
  unsigned char digest[32];
  Sha256Of({data}, digest);
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < 32; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 0xF];
  }
}

std::string Sha256Hex(absl::string_view data) {
  std::string out(64, '0');
  Sha256HexTo(data, out.data());
  return out;
}

std::string FormatRecordTime(absl::Time time) {
  return absl::FormatTime(kTimeFormat, time, absl::UTCTimeZone());
}

std::string BuildRecordLine(uint64_t seq, absl::string_view kind,
                            absl::Time time, absl::string_view body_members,
                            absl::string_view prev_hash, std::string* hash) {
  std::string line;
  AppendRecordLine(seq, kind, FormatRecordTime(time), body_members, prev_hash,
                   &line, hash);
  return line;
}

void AppendRecordLine(uint64_t seq, absl::string_view kind,
                      absl::string_view time, absl::string_view body_members,
                      absl::string_view prev_hash, std::string* out,
                      std::string* hash) {
  const size_t start = out->size();
  out->reserve(start + body_members.size() + kind.size() + time.size() +
               prev_hash.size() + 64 + 64);
  // The line is first built as P, the record without its hash (docs §2).
  char number[absl::numbers_internal::kFastToBufferSize];
  const char* number_end = absl::numbers_internal::FastIntToBuffer(seq, number);
  out->append("{\"seq\":");
  out->append(number, static_cast<size_t>(number_end - number));
  out->append(",\"kind\":");
  if (kind.find_first_of("\"\\") == absl::string_view::npos &&
      std::all_of(kind.begin(), kind.end(),
                  [](char c) { return c >= 0x20 && c < 0x7f; })) {
    out->push_back('"');
    out->append(kind.data(), kind.size());
    out->push_back('"');
  } else {
    out->append(JsonQuote(kind));
  }
  out->append(",\"time\":\"");
  out->append(time.data(), time.size());
  out->push_back('"');
  if (!body_members.empty()) {
    out->push_back(',');
    out->append(body_members.data(), body_members.size());
  }
  out->append(",\"prev_hash\":\"");
  out->append(prev_hash.data(), prev_hash.size());
  out->append("\"}");
  hash->resize(64);
  Sha256HexTo(absl::string_view(*out).substr(start), hash->data());
  out->pop_back();
  out->append(",\"hash\":\"");
  out->append(*hash);
  out->append("\"}\n");
}

absl::StatusOr<RecordLineFields> ParseRecordLine(absl::string_view line) {
  absl::StatusOr<std::vector<JsonMember>> members = SplitJsonObject(line);
  if (!members.ok()) {
    return absl::DataLossError(
        absl::StrCat("not valid JSON (", members.status().message(), ")"));
  }
  const std::vector<JsonMember>& m = *members;
  const auto fail = [](absl::string_view why) {
    return absl::DataLossError(why);
  };
  if (m.size() < 5 || m[0].name != "seq" || m[1].name != "kind" ||
      m[2].name != "time" || m[m.size() - 2].name != "prev_hash" ||
      m.back().name != "hash") {
    return fail(
        "not a record: members must start with seq, kind, time and end with "
        "prev_hash, hash");
  }
  RecordLineFields fields;
  const absl::string_view seq = m[0].value;
  if (!absl::StartsWith(line, "{\"seq\":") || seq.empty() || seq[0] == '0' ||
      !std::all_of(seq.begin(), seq.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(seq, &fields.seq)) {
    return fail("seq is not a positive integer written plainly");
  }
  if (m[1].value.size() < 3 || m[1].value.front() != '"') {
    return fail("kind is not a non-empty string");
  }
  fields.kind = m[1].value;
  absl::StatusOr<std::string> time = m[2].value.front() == '"'
                                         ? JsonUnquote(m[2].value)
                                         : absl::InvalidArgumentError("");
  absl::Time parsed_time;
  std::string error;
  if (!time.ok() ||
      !absl::ParseTime(absl::RFC3339_full, *time, &parsed_time, &error)) {
    return fail("time is not an RFC 3339 time");
  }
  fields.prev_hash = HashLiteral(m[m.size() - 2].value);
  fields.hash = HashLiteral(m.back().value);
  if (fields.prev_hash.empty() || fields.hash.empty()) {
    return fail("prev_hash and hash must be 64 lowercase hex digits");
  }
  // The hash is defined on these exact bytes at the end of the line.
  const std::string tail = absl::StrCat(",\"prev_hash\":\"", fields.prev_hash,
                                        "\",\"hash\":\"", fields.hash, "\"}");
  if (!absl::EndsWith(line, tail)) {
    return fail(
        "prev_hash and hash are not written as "
        ",\"prev_hash\":\"…\",\"hash\":\"…\"} at the end of the line");
  }
  for (size_t i = 3; i + 2 < m.size(); ++i) {
    if (IsReservedMember(m[i].name)) {
      return fail(absl::StrCat("member \"", m[i].name, "\" appears twice"));
    }
  }
  return fields;
}

bool RecordHashMatches(absl::string_view line, const RecordLineFields& fields) {
  if (line.size() < kHashSuffixLength) return false;
  // The preimage P is the line without its hash suffix, then "}".
  unsigned char digest[32];
  Sha256Of({line.substr(0, line.size() - kHashSuffixLength), "}"}, digest);
  static constexpr char kHex[] = "0123456789abcdef";
  if (fields.hash.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    if (fields.hash[2 * i] != kHex[digest[i] >> 4] ||
        fields.hash[2 * i + 1] != kHex[digest[i] & 0xF]) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<RecordLineFields> CheckRecordLine(absl::string_view line) {
  absl::StatusOr<RecordLineFields> fields = ParseRecordLine(line);
  if (!fields.ok()) return fields.status();
  if (!RecordHashMatches(line, *fields)) {
    return absl::DataLossError("hash does not match the record");
  }
  return fields;
}

std::vector<SegmentLine> SplitSegmentLines(absl::string_view contents) {
  std::vector<SegmentLine> lines;
  uint64_t offset = 0;
  uint64_t number = 1;
  while (offset < contents.size()) {
    const size_t end = contents.find('\n', offset);
    if (end == absl::string_view::npos) {
      lines.push_back({contents.substr(offset), number, offset, false});
      break;
    }
    lines.push_back(
        {contents.substr(offset, end - offset), number, offset, true});
    offset = end + 1;
    ++number;
  }
  return lines;
}

std::optional<ChainChecker::Break> ChainChecker::Next(const SegmentLine& line) {
  absl::StatusOr<RecordLineFields> fields = ParseRecordLine(line.text);
  if (!fields.ok()) {
    return Break{last_seq_ + 1,
                 line.terminated ? std::string(fields.status().message())
                                 : "no line feed at the end (a torn write)",
                 true};
  }
  if (!line.terminated) {
    return Break{fields->seq, "no line feed at the end (a torn write)", true};
  }
  if (!RecordHashMatches(line.text, *fields)) {
    return Break{fields->seq, "hash does not match the record", true};
  }
  if (fields->seq != last_seq_ + 1) {
    return Break{
        fields->seq,
        absl::StrCat("expected seq ", last_seq_ + 1,
                     last_seq_ == 0 ? " (the first record)"
                                    : absl::StrCat(" after seq ", last_seq_)),
        false};
  }
  if (fields->prev_hash != last_hash_) {
    return Break{
        fields->seq,
        last_seq_ == 0
            ? std::string("prev_hash of the first record is not 64 zeros")
            : absl::StrCat("prev_hash does not match the hash of seq ",
                           last_seq_),
        false};
  }
  last_seq_ = fields->seq;
  last_hash_ = std::string(fields->hash);
  return std::nullopt;
}

}  // namespace stepwise::service::audit
