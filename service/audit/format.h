// The on-disk format of docs/audit-log.md, shared by the writer (audit_log.cc)
// and the reader (reader.cc): segment and quarantine file names, the record
// line and its hash, and the chain check that both start-up recovery and
// `stepwise audit verify` apply line by line.
//
// Thread-safety: free functions without state; a ChainChecker is used by one
// thread.
#ifndef STEPWISE_SERVICE_AUDIT_FORMAT_H_
#define STEPWISE_SERVICE_AUDIT_FORMAT_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/audit/file_system.h"

namespace stepwise::service::audit {

// prev_hash of the first record.
inline constexpr absl::string_view kZeroHash =
    "0000000000000000000000000000000000000000000000000000000000000000";
// Length of `,"hash":"` + 64 hex digits + `"}`, the end of every record line.
inline constexpr size_t kHashSuffixLength = 75;

// The audit log folder the server and `stepwise audit show ID` use when
// none is given (relative to the working directory).
inline constexpr absl::string_view kDefaultAuditDir = "stepwise-audit";
// The file a writer holds locked while the folder is its (FileSystem::LockDir).
inline constexpr absl::string_view kLockFileName = "LOCK";

inline constexpr absl::string_view kKindDecision = "decision";
inline constexpr absl::string_view kKindActivation = "activation";
inline constexpr absl::string_view kKindShadow = "shadow";

// "000001.jsonl" for 1.
std::string SegmentFileName(uint64_t number);
// The number of a segment file name, or nullopt for any other name.
std::optional<uint64_t> ParseSegmentFileName(absl::string_view name);
// "000001.jsonl.torn-2".
std::string QuarantineFileName(absl::string_view segment, int k);

struct Segment {
  uint64_t number;
  std::string name;  // file name, not path
};
// The segments of `dir`, by number; other files are ignored.
absl::StatusOr<std::vector<Segment>> ListSegments(FileSystem& fs,
                                                  const std::string& dir);

// Lowercase hex SHA-256 of `data`. Each thread keeps one digest context, so
// a call allocates nothing but its result.
std::string Sha256Hex(absl::string_view data);
// The same, into `hex` (64 characters, no terminator).
void Sha256HexTo(absl::string_view data, char* hex);
// The raw SHA-256 of the concatenation of `parts`, on the same context.
void Sha256Of(std::initializer_list<absl::string_view> parts,
              unsigned char digest[32]);

// RFC 3339, UTC, microseconds: "2026-11-20T09:30:00.123456Z".
std::string FormatRecordTime(absl::Time time);

// The record line for seq/kind/time/body/prev_hash, with its final line feed.
// `body_members` is the inside of the body object (no braces; may be empty).
// Sets `*hash` to the record's hash.
std::string BuildRecordLine(uint64_t seq, absl::string_view kind,
                            absl::Time time, absl::string_view body_members,
                            absl::string_view prev_hash, std::string* hash);
// The same line appended to `out`, which may already hold earlier lines: the
// group commit builds a whole batch in one buffer. `time` is
// FormatRecordTime's text (records of one batch share it), `kind` a plain
// ASCII name. Sets `*hash` (reusing its capacity).
void AppendRecordLine(uint64_t seq, absl::string_view kind,
                      absl::string_view time, absl::string_view body_members,
                      absl::string_view prev_hash, std::string* out,
                      std::string* hash);

// What CheckRecordLine read from a well-formed line.
struct RecordLineFields {
  uint64_t seq = 0;
  absl::string_view kind;  // raw, quotes included
  absl::string_view prev_hash;
  absl::string_view hash;
};

// Reads one line (without its line feed) of the shape of §2 of
// docs/audit-log.md, without checking its hash. The error message is a plain
// reason ("not valid JSON: ...").
absl::StatusOr<RecordLineFields> ParseRecordLine(absl::string_view line);
// Whether `fields.hash` (read from `line` by ParseRecordLine) is the hash of
// `line`.
bool RecordHashMatches(absl::string_view line, const RecordLineFields& fields);
// Both: the line's shape and its hash.
absl::StatusOr<RecordLineFields> CheckRecordLine(absl::string_view line);

// One line of a segment's contents. `terminated` is false only for a last
// line without a line feed.
struct SegmentLine {
  absl::string_view text;  // without the line feed
  uint64_t number;         // 1-based
  uint64_t offset;         // byte offset of the line in the segment
  bool terminated;
};
std::vector<SegmentLine> SplitSegmentLines(absl::string_view contents);

// Follows the chain record by record: each line must be intact and link to the
// one before (seq + 1, prev_hash = its hash).
class ChainChecker {
 public:
  // Starts after the record `last_seq` with hash `last_hash` (0 and
  // kZeroHash for an empty log).
  ChainChecker(uint64_t last_seq, std::string last_hash)
      : last_seq_(last_seq), last_hash_(std::move(last_hash)) {}
  ChainChecker() : ChainChecker(0, std::string(kZeroHash)) {}

  struct Break {
    uint64_t seq;  // the line's own seq if it could be read, else expected
    std::string reason;
    // True when the line itself is unreadable or fails its hash (what a torn
    // write leaves), false when it is intact but does not link.
    bool damaged;
  };

  // Checks `line` as the next record; on success the chain advances.
  std::optional<Break> Next(const SegmentLine& line);

  uint64_t last_seq() const { return last_seq_; }
  const std::string& last_hash() const { return last_hash_; }

 private:
  uint64_t last_seq_;
  std::string last_hash_;
};

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_FORMAT_H_
