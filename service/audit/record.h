// The bodies of audit records (docs/audit-log.md §3) and a parser that reads a
// record line back.
//
// A decision record holds what a replay needs to make the same decision again
// — the request (scores, steps, flags, as_of), the bundle's name, version and
// sha256, the outcome and the matched rule ids — plus who asked and a keyed
// hash of the subject. It never holds subject_id or request_id in clear.
// Embedded messages use protobuf's JSON mapping (proto field names), so a
// replay parses them back with JsonStringToMessage.
//
// Thread-safety: free functions without state.
#ifndef STEPWISE_SERVICE_AUDIT_RECORD_H_
#define STEPWISE_SERVICE_AUDIT_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/audit/audit_log.h"
#include "stepwise/v1/decision.pb.h"
#include "stepwise/v1/service.pb.h"

namespace stepwise::service::audit {

// The body of a "decision" record, for AuditLog::Append(kDecision, ...).
// `subject_hash` is SubjectKey::Hash(request.subject_id()) (64 hex digits;
// anything else is refused, so that a subject_id cannot be passed by
// mistake). The request's as_of, or else the decision's, must be set.
absl::StatusOr<std::string> DecisionRecordBody(
    const stepwise::v1::EvaluateRequest& request,
    const stepwise::v1::Decision& decision, absl::string_view principal,
    absl::string_view subject_hash);

// The body of a "shadow" record: `candidate` is the outcome under the shadow
// bundle of the request answered by decision `decision_id`.
absl::StatusOr<std::string> ShadowRecordBody(
    const stepwise::v1::EvaluateRequest& request,
    const stepwise::v1::Decision& candidate, absl::string_view principal,
    absl::string_view subject_hash, absl::string_view decision_id);

// The body of an "activation" record; `previous_sha256` is empty at start-up.
absl::StatusOr<std::string> ActivationRecordBody(
    const stepwise::v1::RulesetInfo& activated,
    absl::string_view previous_sha256, absl::string_view principal);

// The same bodies as RecordBody, for AuditLog::AppendBody, which appends them
// without parsing them again.
absl::StatusOr<RecordBody> DecisionRecord(
    const stepwise::v1::EvaluateRequest& request,
    const stepwise::v1::Decision& decision, absl::string_view principal,
    absl::string_view subject_hash);
absl::StatusOr<RecordBody> ShadowRecord(
    const stepwise::v1::EvaluateRequest& request,
    const stepwise::v1::Decision& candidate, absl::string_view principal,
    absl::string_view subject_hash, absl::string_view decision_id);
absl::StatusOr<RecordBody> ActivationRecord(
    const stepwise::v1::RulesetInfo& activated,
    absl::string_view previous_sha256, absl::string_view principal);

// A record read back from its line. Members a kind does not have are empty.
struct ParsedRecord {
  uint64_t seq = 0;
  std::string kind;
  absl::Time time;
  std::string decision_id;
  std::string principal;
  std::string subject;  // the keyed hash
  // Without subject_id and request_id, which are never written.
  stepwise::v1::EvaluateRequest request;
  stepwise::v1::Decision decision;  // the outcome (audit_seq not set)
  stepwise::v1::RulesetRef ruleset;
  std::string previous_sha256;  // activation records
  std::string prev_hash;
  std::string hash;
  std::string json;  // the line as written, without its line feed
};

// Parses one record line (without its line feed); checks its shape and hash
// but not its place in the chain (see Verify in reader.h).
absl::StatusOr<ParsedRecord> ParseRecord(absl::string_view line);

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_RECORD_H_
