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
// Batches grow without added latency where callers say a record is coming:
// a caller that has admitted a request it will record holds an AppendIntent
// (BeginAppend/EndAppend) while it evaluates. When the writer finds records
// queued while such calls are still on their way, it waits for them (at most
// `group_commit_wait`) so that they share the fdatasync, instead of syncing
// one batch now and the next one a few microseconds later. A lone call is
// never held: with nothing on its way the writer starts at once.
//
// Fail closed: a failed write or sync fails every record of the batch (and
// every later one) with UNAVAILABLE; healthy() turns false and stays false.
// The bytes on disk stay a verifiable prefix of the chain.
//
// Thread-safety: every member may be called from any thread. The
// implementation holds one mutex and never calls out (callbacks, file
// system) while holding it.
#ifndef STEPWISE_SERVICE_AUDIT_AUDIT_LOG_H_
#define STEPWISE_SERVICE_AUDIT_AUDIT_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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
  // File system to write through; not owned. Default: DefaultFileSystem().
  FileSystem* fs = nullptr;
  // Clock for record times. Default: absl::Now.
  std::function<absl::Time()> now;
  // Longest a queued record waits for records announced by BeginAppend()
  // before its batch is written. 0 turns the wait off. Default: 1 ms.
  absl::Duration group_commit_wait = absl::Milliseconds(1);
};

// A distribution in Prometheus' histogram shape, for metrics.
struct Histogram {
  // Upper bounds of the buckets, increasing; a +Inf bucket is implied.
  std::vector<double> bounds;
  // cumulative[i] = observations <= bounds[i] (Prometheus `le` buckets); the
  // +Inf bucket is `count`.
  std::vector<uint64_t> cumulative;
  uint64_t count = 0;
  double sum = 0;
};

struct AuditStats {
  uint64_t records = 0;   // records made durable since Open
  uint64_t batches = 0;   // group commits since Open
  uint64_t syncs = 0;     // fdatasyncs (a batch that rotates takes two)
  uint64_t failures = 0;  // records failed with UNAVAILABLE
  uint64_t rejected = 0;  // records refused with INVALID_ARGUMENT
  uint64_t last_seq = 0;  // the newest durable record (0: none)
  std::string head_hash;  // its hash (64 zeros: none)
  uint64_t segment = 0;   // number of the segment being written
  uint64_t holds = 0;     // batches held back for announced records
  // CPU time the writer thread spent on the log's own work (record lines,
  // the chain hash, write, fdatasync), not counting the callers' callbacks
  // it runs afterwards (which, in the server, answer the calls).
  double writer_cpu_seconds = 0;
  Histogram batch_size;    // records per group commit
  Histogram sync_seconds;  // fdatasync latency
};

// A record body the log appends without checking it again: made only by the
// builders of record.h (DecisionRecord, ShadowRecord, ActivationRecord),
// whose bodies are well-formed by construction (a JSON object on one line,
// no member the log writes itself). Re-validating a body the server built a
// moment before cost as much as building it.
class RecordBody {
 public:
  RecordBody(RecordBody&&) noexcept = default;
  RecordBody& operator=(RecordBody&&) noexcept = default;

  // "decision", "activation" or "shadow".
  absl::string_view kind() const { return kind_; }
  // The body object, "{...}".
  const std::string& json() const { return json_; }
  // Its members, without the braces.
  absl::string_view members() const {
    return absl::string_view(json_).substr(1, json_.size() - 2);
  }
  std::string TakeJson() && { return std::move(json_); }

 private:
  friend class RecordBodies;  // record.cc
  RecordBody(absl::string_view kind, std::string json)
      : kind_(kind), json_(std::move(json)) {}

  absl::string_view kind_;  // one of the kind constants of format.h
  std::string json_;
};

class AuditLog {
 public:
  // Called once per record, on the writer thread, after the record is durable
  // (OK, with its seq) or has failed (UNAVAILABLE; INVALID_ARGUMENT for a
  // malformed body or unknown kind; seq 0). Must not block. Only after
  // Close() is it called at once on the caller's thread (UNAVAILABLE).
  using Done = std::function<void(absl::Status status, uint64_t seq)>;

  // Opens (or creates) the log: checks the newest segment and its link to the
  // one before, moves a torn last record aside to a quarantine file
  // (reported in `recovered`), and continues the chain from the last good
  // record. Damage before the last line is not repaired: DATA_LOSS naming
  // file:line. INVALID_ARGUMENT for bad options; other errors are I/O.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(
      AuditLogOptions options);

  virtual ~AuditLog() = default;

  // `kind` is "decision", "activation" or "shadow". `body` is the record's
  // own members as a JSON object text on one line ({"decision_id": ...}; see
  // record.h), without seq, kind, time, prev_hash or hash, which the log
  // adds. Never blocks on I/O.
  virtual void Append(std::string kind, std::string body, Done done) = 0;

  // The same for a body from record.h's builders, appended as it is.
  virtual void AppendBody(RecordBody body, Done done) {
    std::string kind(body.kind());
    Append(std::move(kind), std::move(body).TakeJson(), std::move(done));
  }

  // Announce a record that is coming (its request is being evaluated), and
  // end the announcement once it was appended or will not be. Each
  // BeginAppend() needs exactly one EndAppend(); AppendIntent pairs them.
  // Both are hints for batching and never block.
  virtual void BeginAppend() {}
  virtual void EndAppend() {}

  // False once a write or sync has failed, or after Close().
  virtual bool healthy() const = 0;
  virtual AuditStats stats() const = 0;
  // What start-up recovery did, for the server to log (e.g. "quarantined a
  // torn record of 120 bytes at 000001.jsonl:88 (hash does not match the
  // record) to 000001.jsonl.torn-1"); empty if nothing.
  virtual std::string recovered() const = 0;

  // Writes everything queued, syncs, stops the writer. Idempotent. Never call
  // it from a Done callback: it joins the thread that runs the callbacks.
  virtual void Close() = 0;
};

// BeginAppend() on construction, EndAppend() on destruction: held by a call
// from admission until it has appended its record (or given up), e.g.
//   AppendIntent intent(log);  ... evaluate ...  log->Append(...);
// `log` may be null (nothing is announced). Movable, not copyable.
class AppendIntent {
 public:
  explicit AppendIntent(AuditLog* log) : log_(log) {
    if (log_ != nullptr) log_->BeginAppend();
  }
  AppendIntent(AppendIntent&& other) noexcept : log_(other.log_) {
    other.log_ = nullptr;
  }
  AppendIntent& operator=(AppendIntent&& other) noexcept {
    if (this != &other) {
      Release();
      log_ = other.log_;
      other.log_ = nullptr;
    }
    return *this;
  }
  AppendIntent(const AppendIntent&) = delete;
  AppendIntent& operator=(const AppendIntent&) = delete;
  ~AppendIntent() { Release(); }

  // Ends the announcement now (e.g. right after Append).
  void Release() {
    if (log_ != nullptr) log_->EndAppend();
    log_ = nullptr;
  }

 private:
  AuditLog* log_;
};

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_AUDIT_LOG_H_
