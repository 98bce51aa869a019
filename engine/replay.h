// Replay: what a candidate bundle would have changed in decisions already
// made. Each audited decision (its request with the recorded as_of, and the
// recorded outcome) is evaluated again under the candidate and compared;
// a ReplayAccumulator gathers the transition table (recorded action ->
// candidate action), the decisions that change and the blocking findings (a
// decision recorded URGENT_SAFETY that would no longer be). docs/replay.md
// is the reference; `stepwise replay` (tools/replay_commands.cc) reads the
// audit log and drives this.
//
// No I/O. A ReplayAccumulator is used by one thread at a time; give each
// worker its own and Merge() them at the end: the report is the same
// whatever the number of workers and however the records were shared out.
// The candidate bundle is shared, immutable, and must outlive the
// accumulators.
#ifndef STEPWISE_ENGINE_REPLAY_H_
#define STEPWISE_ENGINE_REPLAY_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/bundle.h"
#include "stepwise/v1/decision.pb.h"
#include "stepwise/v1/replay.pb.h"

namespace stepwise::engine {

using ReplayReport = v1::ReplayReport;

// One decision as the audit log recorded it: what replay needs of a
// "decision" record (docs/audit-log.md §3). Reused from record to record by
// a reader, so that its strings and vectors keep their capacity.
struct RecordedDecision {
  RecordedDecision();
  // A copy holds its own copy of the request, wherever the original's was.
  RecordedDecision(const RecordedDecision& other);
  RecordedDecision& operator=(const RecordedDecision& other);
  RecordedDecision(RecordedDecision&&) noexcept;
  RecordedDecision& operator=(RecordedDecision&&) noexcept;
  ~RecordedDecision();

  uint64_t seq = 0;
  std::string decision_id;
  // The sha256 of the bundle that decided (the record's `ruleset`).
  std::string ruleset_sha256;
  v1::Action action = v1::ACTION_UNSPECIFIED;
  int recommended_step = 0;
  // Ids of the matched rules, as recorded (rule order of the deciding
  // bundle).
  std::vector<std::string> matched_rule_ids;
  // Sorted, each once, as recorded.
  std::vector<std::string> refer_to;

  // The request as recorded: as_of is set, request_id is not, and
  // subject_id, which is never written to the log, holds the record's keyed
  // subject hash instead (readers fill it in; the engine requires a
  // subject_id, and a request without one is evaluated with a stand-in).
  const v1::EvaluateRequest& request() const { return *request_; }
  // The decision's own request, which request() shows from now on.
  v1::EvaluateRequest* mutable_request() {
    request_ = own_request_.get();
    return own_request_.get();
  }
  // Shows `request` (not owned; it must outlive its use through request())
  // instead of the decision's own: replay's fast reader fills one request
  // in place record after record, keeping its item maps, which costs no
  // allocation when the next record has the same item names.
  void set_request_view(const v1::EvaluateRequest* request) {
    request_ = request;
  }

  // Everything empty again, the request too (the decision's own request is
  // shown again).
  void Clear();
  // Everything but the request empty again.
  void ClearOutcome();

 private:
  std::unique_ptr<v1::EvaluateRequest> own_request_;
  const v1::EvaluateRequest* request_;  // own_request_ or a view
};

// Records that are not decisions, skipped by replay but counted.
enum class SkippedKind { kActivation, kShadow, kOther };

struct ReplayLimits {
  // Most blocking findings, and most other changed decisions, kept in the
  // report (the lowest seqs); the rest are only counted. 0: keep all.
  // Default: 50.
  uint64_t max_listed = 50;
};

class ReplayAccumulator {
 public:
  ReplayAccumulator(const Bundle& candidate, const ReplayLimits& limits = {});

  ReplayAccumulator(const ReplayAccumulator&) = delete;
  ReplayAccumulator& operator=(const ReplayAccumulator&) = delete;
  ReplayAccumulator(ReplayAccumulator&&) = default;
  ReplayAccumulator& operator=(ReplayAccumulator&&) = default;

  // Evaluates `recorded.request()` under the candidate (as of the request's
  // as_of) and compares the outcome with the recorded one.
  void AddDecision(const RecordedDecision& recorded);
  void AddSkipped(SkippedKind kind);

  // Folds `other` (built over the same candidate) into this one.
  void Merge(ReplayAccumulator&& other);

  // The report: counts, the transition table, and the listed decisions
  // sorted by seq. The run fields (threads, seconds, records/s) are left
  // for the caller.
  ReplayReport Report() const;

 private:
  // Transition counts: rows are the recorded Action, columns the
  // candidate's Action, and one more column for "rejected".
  static constexpr int kActions = 6;
  static constexpr int kRejectedColumn = kActions;
  using TransitionTable =
      std::array<std::array<uint64_t, kActions + 1>, kActions>;

  // Keeps at most max_listed decisions of `list`, the lowest seqs.
  void Trim(std::vector<v1::ReplayedDecision>* list, bool final_trim) const;

  const Bundle* candidate_;
  ReplayLimits limits_;
  TransitionTable transitions_{};
  uint64_t decisions_ = 0;
  uint64_t skipped_activation_ = 0;
  uint64_t skipped_shadow_ = 0;
  uint64_t skipped_other_ = 0;
  uint64_t decided_by_candidate_ = 0;
  uint64_t decided_by_candidate_changed_ = 0;
  uint64_t changed_ = 0;
  uint64_t rejected_ = 0;
  uint64_t blocking_ = 0;
  uint64_t first_seq_ = 0;
  uint64_t last_seq_ = 0;
  std::vector<v1::ReplayedDecision> blocking_findings_;
  std::vector<v1::ReplayedDecision> changes_;
};

// The report for a reviewer: a header with the counts (and the run's time
// and rate when set), the transition table as a matrix, the blocking
// findings marked with '!', then the other changed decisions, each with the
// rules that differ.
std::string FormatReplayText(const ReplayReport& report);

// The report as one JSON object in protobuf's JSON mapping, ending in a
// newline.
std::string FormatReplayJson(const ReplayReport& report);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_REPLAY_H_
