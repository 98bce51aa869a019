#include "service/audit/format.h"

#include <openssl/sha.h>

#include <algorithm>
#include <array>

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

std::string Sha256Hex(absl::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         digest.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * digest.size(), '0');
  for (size_t i = 0; i < digest.size(); ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  return out;
}

std::string FormatRecordTime(absl::Time time) {
  return absl::FormatTime(kTimeFormat, time, absl::UTCTimeZone());
}

std::string BuildRecordLine(uint64_t seq, absl::string_view kind,
                            absl::Time time, absl::string_view body_members,
                            absl::string_view prev_hash, std::string* hash) {
  // `line` is first built as P, the record without its hash (docs §2).
  std::string line =
      absl::StrCat("{\"seq\":", seq, ",\"kind\":", JsonQuote(kind),
                   ",\"time\":\"", FormatRecordTime(time), "\"");
  if (!body_members.empty()) absl::StrAppend(&line, ",", body_members);
  absl::StrAppend(&line, ",\"prev_hash\":\"", prev_hash, "\"}");
  *hash = Sha256Hex(line);
  line.pop_back();
  absl::StrAppend(&line, ",\"hash\":\"", *hash, "\"}\n");
  return line;
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
  std::string preimage(line.substr(0, line.size() - kHashSuffixLength));
  preimage.push_back('}');
  return Sha256Hex(preimage) == fields.hash;
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
