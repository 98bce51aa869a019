// Reading an audit log folder without writing to it: iterate its records in
// order across segments, verify the whole hash chain, find one decision. Used
// by `stepwise audit verify|show`, by `stepwise replay` and by the
// GovernanceService (VerifyAudit, GetDecision) while the log is being
// written.
//
// Thread-safety: free functions; they only read, so they may run beside a
// writer (see VerifyOptions::through_seq for a consistent view).
#ifndef STEPWISE_SERVICE_AUDIT_READER_H_
#define STEPWISE_SERVICE_AUDIT_READER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/audit/file_system.h"
#include "service/audit/record.h"

namespace stepwise::service::audit {

// One line of a segment, as handed to ForEachRecord.
struct RecordRef {
  absl::string_view file;  // segment file name, e.g. "000002.jsonl"
  uint64_t line;           // 1-based line number in that file
  absl::string_view json;  // the line without its line feed
};

// Calls `fn` for every line of every segment, in order. A last line without a
// line feed (a write in progress, or a torn tail not yet recovered) is
// skipped. Stops at, and returns, the first non-OK status from `fn`. The
// lines are not checked; use Verify for that, or ParseRecord per line.
absl::Status ForEachRecord(
    FileSystem& fs, const std::string& dir,
    const std::function<absl::Status(const RecordRef&)>& fn);

struct VerifyOptions {
  // Stop after the record with this seq (0: check everything). A live log's
  // writer may be in the middle of a write; pass AuditLog::stats().last_seq
  // to check exactly what has been acknowledged.
  uint64_t through_seq = 0;
};

struct ChainBreak {
  std::string file;  // segment file name
  uint64_t line = 0;
  uint64_t seq = 0;  // the record's seq if readable, else the one expected
  std::string reason;
};

struct VerifyResult {
  uint64_t records_checked = 0;
  std::string head_hash;  // hash of the last good record; 64 zeros if none
  std::optional<ChainBreak> first_break;

  bool ok() const { return !first_break.has_value(); }
  // "000002.jsonl:17: seq 42: reason", or "" when ok.
  std::string FirstBreakText() const;
};

// Recomputes the whole chain (docs/audit-log.md §6). A broken chain is an OK
// status with `first_break` set; a non-OK status means the folder could not
// be read. `through_seq` beyond the last record is a break ("ends at seq N").
absl::StatusOr<VerifyResult> Verify(FileSystem& fs, const std::string& dir,
                                    const VerifyOptions& options = {});

struct FoundRecord {
  std::string file;
  uint64_t line = 0;
  ParsedRecord record;
};

// The "decision" record of `decision_id`; NOT_FOUND if there is none. Reads
// every segment (newest first); a record that fails its own hash is
// DATA_LOSS.
absl::StatusOr<FoundRecord> FindDecision(FileSystem& fs, const std::string& dir,
                                         absl::string_view decision_id);

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_READER_H_
