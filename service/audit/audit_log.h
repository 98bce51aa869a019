// The embedded audit log (docs/audit-log.md): append-only JSON Lines segment
// files in one folder, one record per decision (and per activation / shadow
// evaluation), chained by SHA-256 so that any edit, removal or reordering is
// detected by `stepwise audit verify`.
//
// Writes are group-committed: callers hand a record to Append() and return at
// once; one writer thread appends everything queued so far, issues a single
// fdatasync for the batch, and only then runs each record's callback. A
// response is released from that callback, so no answer leaves the server
// before its record is on disk, and no request thread blocks while it waits.
//
// Fail closed: a failed write or sync fails every record of the batch (and
// every later one) with UNAVAILABLE; healthy() turns false and stays false.
// The bytes on disk stay a verifiable prefix of the chain.
//
// Thread-safety: Append, healthy and stats may be called from any thread.
// Lock order: mu_ only (the writer never calls out while holding it).
#ifndef STEPWISE_SERVICE_AUDIT_AUDIT_LOG_H_
#define STEPWISE_SERVICE_AUDIT_AUDIT_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/audit/file_system.h"

namespace stepwise::service::audit {

struct AuditLogOptions {
  // The folder holding the segments; created if missing.
  std::string dir;
  // A segment is closed and a new one started past this size. Default: 64 MiB.
  uint64_t segment_bytes = 64ull << 20;
  // Most records in one group commit. Default: 4096.
  size_t max_batch = 4096;
  // File system to write through; default: the real one.
  FileSystem* fs = nullptr;
  // Clock for record times; default: absl::Now.
  std::function<absl::Time()> now;
};

struct AuditStats {
  uint64_t records = 0;
  uint64_t batches = 0;       // group commits (fdatasyncs)
  uint64_t failures = 0;      // records failed with UNAVAILABLE
  uint64_t last_seq = 0;
  std::string head_hash;
};

class AuditLog {
 public:
  // Called once per record, on the writer thread, after the record is durable
  // (OK, with its seq) or has failed (UNAVAILABLE). Must not block.
  using Done = std::function<void(absl::Status status, uint64_t seq)>;

  // Opens (or creates) the log: checks the tail of the newest segment, moves a
  // torn last record aside to a quarantine file (reported in `recovered`),
  // and continues the chain from the last good record.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditLogOptions options);

  virtual ~AuditLog() = default;

  // `kind` is "decision", "activation" or "shadow". `body` is the record's
  // own members as a JSON object text ({"decision_id": ..., ...}); the log adds
  // seq, time, prev_hash and hash. Never blocks on I/O.
  virtual void Append(std::string kind, std::string body, Done done) = 0;

  // False once a write or sync has failed, or after Close().
  virtual bool healthy() const = 0;
  virtual AuditStats stats() const = 0;
  // What start-up recovery did (e.g. "quarantined a torn record of 120 bytes
  // at 000001.jsonl:88 to 000001.jsonl.torn-..."); empty if nothing.
  virtual std::string recovered() const = 0;

  // Writes everything queued, syncs, stops the writer. Idempotent.
  virtual void Close() = 0;
};

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_AUDIT_LOG_H_
