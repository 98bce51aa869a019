#include "engine/replay.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "google/protobuf/util/json_util.h"

namespace stepwise::engine {
namespace {

// Recorded actions outside the enum (a newer writer) count as UNSPECIFIED.
int ActionIndex(v1::Action action) {
  return v1::Action_IsValid(action) ? static_cast<int>(action) : 0;
}

bool Contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool SeqOrder(const v1::ReplayedDecision& a, const v1::ReplayedDecision& b) {
  if (a.seq() != b.seq()) return a.seq() < b.seq();
  return a.decision_id() < b.decision_id();  // only in a damaged log
}

}  // namespace

RecordedDecision::RecordedDecision()
    : own_request_(std::make_unique<v1::EvaluateRequest>()),
      request_(own_request_.get()) {}

RecordedDecision::~RecordedDecision() = default;
RecordedDecision::RecordedDecision(RecordedDecision&&) noexcept = default;
RecordedDecision& RecordedDecision::operator=(RecordedDecision&&) noexcept =
    default;

RecordedDecision::RecordedDecision(const RecordedDecision& other)
    : RecordedDecision() {
  *this = other;
}

RecordedDecision& RecordedDecision::operator=(const RecordedDecision& other) {
  if (this == &other) return *this;
  seq = other.seq;
  decision_id = other.decision_id;
  ruleset_sha256 = other.ruleset_sha256;
  action = other.action;
  recommended_step = other.recommended_step;
  matched_rule_ids = other.matched_rule_ids;
  refer_to = other.refer_to;
  own_request_->CopyFrom(*other.request_);
  request_ = own_request_.get();
  return *this;
}

void RecordedDecision::ClearOutcome() {
  seq = 0;
  decision_id.clear();
  ruleset_sha256.clear();
  action = v1::ACTION_UNSPECIFIED;
  recommended_step = 0;
  matched_rule_ids.clear();
  refer_to.clear();
}

void RecordedDecision::Clear() {
  ClearOutcome();
  own_request_->Clear();
  request_ = own_request_.get();
}

ReplayAccumulator::ReplayAccumulator(const Bundle& candidate,
                                     const ReplayLimits& limits)
    : candidate_(&candidate), limits_(limits) {}

void ReplayAccumulator::AddSkipped(SkippedKind kind) {
  switch (kind) {
    case SkippedKind::kActivation:
      ++skipped_activation_;
      break;
    case SkippedKind::kShadow:
      ++skipped_shadow_;
      break;
    case SkippedKind::kOther:
      ++skipped_other_;
      break;
  }
}

void ReplayAccumulator::AddDecision(const RecordedDecision& recorded) {
  first_seq_ =
      decisions_ == 0 ? recorded.seq : std::min(first_seq_, recorded.seq);
  last_seq_ =
      decisions_ == 0 ? recorded.seq : std::max(last_seq_, recorded.seq);
  ++decisions_;
  const bool same_bundle = recorded.ruleset_sha256 == candidate_->sha256();
  if (same_bundle) ++decided_by_candidate_;

  // The request carries its recorded as_of, so the receipt time is unused.
  // The log never holds a subject_id; a reader that did not put the keyed
  // subject hash in its place gets a stand-in, so that the candidate does
  // not reject the request for the log's own redaction.
  const v1::EvaluateRequest* request = &recorded.request();
  v1::EvaluateRequest with_subject;
  if (request->subject_id().empty()) {
    with_subject = *request;
    with_subject.set_subject_id("(not recorded)");
    request = &with_subject;
  }
  const Outcome now = EvaluateOutcome(*candidate_, *request, absl::UnixEpoch());
  const int from = ActionIndex(recorded.action);
  const std::vector<RuleSummary>& rules = candidate_->rules();

  bool changed;
  if (!now.ok()) {
    ++transitions_[from][kRejectedColumn];
    changed = true;
  } else {
    ++transitions_[from][ActionIndex(now.action)];
    changed = now.action != recorded.action ||
              now.recommended_step != recorded.recommended_step ||
              now.refer_to != recorded.refer_to ||
              now.matched.size() != recorded.matched_rule_ids.size();
    // Equal sizes of two duplicate-free sets: one inclusion suffices.
    for (size_t k = 0; !changed && k < now.matched.size(); ++k) {
      changed = !Contains(recorded.matched_rule_ids, rules[now.matched[k]].id);
    }
  }
  if (!changed) return;

  ++changed_;
  if (same_bundle) ++decided_by_candidate_changed_;
  const bool blocking = recorded.action == v1::URGENT_SAFETY &&
                        (!now.ok() || now.action != v1::URGENT_SAFETY);

  v1::ReplayedDecision d;
  d.set_seq(recorded.seq);
  d.set_decision_id(recorded.decision_id);
  d.set_decided_by_sha256(recorded.ruleset_sha256);
  d.set_from_action(static_cast<v1::Action>(from));
  d.set_from_step(recorded.recommended_step);
  d.set_blocking(blocking);
  if (!now.ok()) {
    ++rejected_;
    d.set_rejected(true);
    for (const FieldViolation& v : now.violations) {
      d.add_violations(absl::StrCat(v.field, ": ", v.description));
    }
    for (const std::string& id : recorded.matched_rule_ids)
      d.add_rules_only_before(id);
    for (const std::string& target : recorded.refer_to)
      d.add_refer_to_before(target);
  } else {
    d.set_to_action(now.action);
    d.set_to_step(now.recommended_step);
    std::vector<std::string> now_ids;
    now_ids.reserve(now.matched.size());
    for (uint32_t i : now.matched) now_ids.push_back(rules[i].id);
    for (const std::string& id : recorded.matched_rule_ids) {
      if (!Contains(now_ids, id)) d.add_rules_only_before(id);
    }
    for (const std::string& id : now_ids) {
      if (Contains(recorded.matched_rule_ids, id)) {
        d.add_rules_matched_both(id);
      } else {
        d.add_rules_only_now(id);
      }
    }
    if (now.refer_to != recorded.refer_to) {
      for (const std::string& target : recorded.refer_to)
        d.add_refer_to_before(target);
      for (const std::string& target : now.refer_to) d.add_refer_to_now(target);
    }
  }
  std::vector<v1::ReplayedDecision>* list =
      blocking ? &blocking_findings_ : &changes_;
  if (blocking) ++blocking_;
  list->push_back(std::move(d));
  Trim(list, /*final_trim=*/false);
}

void ReplayAccumulator::Trim(std::vector<v1::ReplayedDecision>* list,
                             bool final_trim) const {
  const uint64_t max = limits_.max_listed;
  // Between merges the list may grow to twice the limit, so that sorting is
  // amortised over many decisions.
  if (max == 0 || (!final_trim && list->size() <= 2 * max)) {
    if (final_trim) std::sort(list->begin(), list->end(), SeqOrder);
    return;
  }
  std::sort(list->begin(), list->end(), SeqOrder);
  if (list->size() > max) list->resize(max);
}

void ReplayAccumulator::Merge(ReplayAccumulator&& other) {
  for (int from = 0; from < kActions; ++from) {
    for (int to = 0; to <= kActions; ++to)
      transitions_[from][to] += other.transitions_[from][to];
  }
  if (other.decisions_ > 0) {
    first_seq_ = decisions_ == 0 ? other.first_seq_
                                 : std::min(first_seq_, other.first_seq_);
    last_seq_ = decisions_ == 0 ? other.last_seq_
                                : std::max(last_seq_, other.last_seq_);
  }
  decisions_ += other.decisions_;
  skipped_activation_ += other.skipped_activation_;
  skipped_shadow_ += other.skipped_shadow_;
  skipped_other_ += other.skipped_other_;
  decided_by_candidate_ += other.decided_by_candidate_;
  decided_by_candidate_changed_ += other.decided_by_candidate_changed_;
  changed_ += other.changed_;
  rejected_ += other.rejected_;
  blocking_ += other.blocking_;
  for (auto [mine, theirs] :
       {std::pair{&blocking_findings_, &other.blocking_findings_},
        std::pair{&changes_, &other.changes_}}) {
    mine->insert(mine->end(), std::make_move_iterator(theirs->begin()),
                 std::make_move_iterator(theirs->end()));
    theirs->clear();
    Trim(mine, /*final_trim=*/false);
  }
  other = ReplayAccumulator(*candidate_, limits_);
}

ReplayReport ReplayAccumulator::Report() const {
  ReplayReport report;
  *report.mutable_candidate() = candidate_->ref();
  report.set_records(decisions_ + skipped_activation_ + skipped_shadow_ +
                     skipped_other_);
  report.set_decisions(decisions_);
  report.set_skipped_activation(skipped_activation_);
  report.set_skipped_shadow(skipped_shadow_);
  report.set_skipped_other(skipped_other_);
  report.set_decided_by_candidate(decided_by_candidate_);
  report.set_decided_by_candidate_changed(decided_by_candidate_changed_);
  report.set_unchanged(decisions_ - changed_);
  report.set_changed(changed_);
  report.set_rejected(rejected_);
  report.set_blocking(blocking_);
  report.set_first_seq(first_seq_);
  report.set_last_seq(last_seq_);
  report.set_chain_verified(false);
  for (int from = 0; from < kActions; ++from) {
    for (int to = 0; to <= kActions; ++to) {
      if (transitions_[from][to] == 0) continue;
      v1::ActionTransition* t = report.add_transitions();
      t->set_from_action(static_cast<v1::Action>(from));
      if (to == kRejectedColumn) {
        t->set_rejected(true);
      } else {
        t->set_to_action(static_cast<v1::Action>(to));
      }
      t->set_count(transitions_[from][to]);
    }
  }
  std::vector<v1::ReplayedDecision> blocking = blocking_findings_;
  Trim(&blocking, /*final_trim=*/true);
  for (v1::ReplayedDecision& d : blocking)
    *report.add_blocking_findings() = std::move(d);
  report.set_blocking_omitted(
      blocking_ - static_cast<uint64_t>(report.blocking_findings_size()));
  std::vector<v1::ReplayedDecision> changes = changes_;
  Trim(&changes, /*final_trim=*/true);
  for (v1::ReplayedDecision& d : changes) *report.add_changes() = std::move(d);
  report.set_changes_omitted(changed_ - blocking_ -
                             static_cast<uint64_t>(report.changes_size()));
  return report;
}

// ---------------------------------------------------------------------------
// Rendering.

namespace {

std::string StepText(v1::Action action, int step) {
  return absl::StrCat(v1::Action_Name(action), " step ", step);
}

std::string IdList(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  return ids.empty() ? std::string("(none)") : absl::StrJoin(ids, ", ");
}

void AppendDecision(const v1::ReplayedDecision& d, std::string* out) {
  absl::StrAppend(out, d.blocking() ? "  ! " : "    ", "seq ", d.seq(), "  ",
                  d.decision_id(), "  ",
                  StepText(d.from_action(), d.from_step()), " -> ");
  if (d.rejected()) {
    absl::StrAppend(out, "rejected as bad input by the candidate\n");
    for (const std::string& v : d.violations())
      absl::StrAppend(out, "        ", v, "\n");
  } else {
    absl::StrAppend(out, StepText(d.to_action(), d.to_step()), "\n");
  }
  if (!d.rules_only_before().empty() || !d.rules_only_now().empty()) {
    absl::StrAppend(
        out,
        "        rules matched only before: ", IdList(d.rules_only_before()),
        "\n        rules matched only now:    ", IdList(d.rules_only_now()),
        "\n");
  }
  if (!d.rules_matched_both().empty()) {
    absl::StrAppend(out, "        rules matched both times:  ",
                    IdList(d.rules_matched_both()), "\n");
  }
  if (!d.refer_to_before().empty() || !d.refer_to_now().empty()) {
    absl::StrAppend(out, "        refer to: ", IdList(d.refer_to_before()),
                    " -> ", IdList(d.refer_to_now()), "\n");
  }
}

void AppendTransitions(const ReplayReport& r, std::string* out) {
  constexpr int kColumns = 7;  // the six actions, then "rejected"
  auto column = [](const v1::ActionTransition& t) {
    return t.rejected() ? kColumns - 1 : static_cast<int>(t.to_action());
  };
  bool row_used[kColumns] = {};
  bool column_used[kColumns] = {};
  uint64_t cells[kColumns][kColumns] = {};
  for (const v1::ActionTransition& t : r.transitions()) {
    const int from = ActionIndex(t.from_action());
    row_used[from] = column_used[column(t)] = true;
    cells[from][column(t)] += t.count();
  }
  auto name = [](int index) {
    return index == kColumns - 1
               ? std::string("rejected")
               : v1::Action_Name(static_cast<v1::Action>(index));
  };
  size_t label_width = 8;
  for (int i = 0; i < kColumns - 1; ++i) {
    if (row_used[i]) label_width = std::max(label_width, name(i).size());
  }
  absl::StrAppend(
      out,
      "\ntransitions (rows: as recorded; columns: under the candidate)\n  ",
      std::string(label_width, ' '));
  for (int c = 0; c < kColumns; ++c) {
    if (column_used[c]) absl::StrAppend(out, "  ", name(c));
  }
  absl::StrAppend(out, "\n");
  for (int row = 0; row < kColumns - 1; ++row) {
    if (!row_used[row]) continue;
    absl::StrAppend(
        out, "  ",
        absl::StrFormat("%-*s", static_cast<int>(label_width), name(row)));
    for (int c = 0; c < kColumns; ++c) {
      if (!column_used[c]) continue;
      absl::StrAppend(out, "  ",
                      absl::StrFormat("%*d", static_cast<int>(name(c).size()),
                                      cells[row][c]));
    }
    absl::StrAppend(out, "\n");
  }
}

}  // namespace

std::string FormatReplayText(const ReplayReport& r) {
  std::string out;
  absl::StrAppend(&out, "candidate: ", r.candidate().name(), " ",
                  r.candidate().version(), " (sha256 ", r.candidate().sha256(),
                  ")\n");
  absl::StrAppend(&out, "records: ", r.records(),
                  ", decisions replayed: ", r.decisions());
  if (r.decisions() > 0)
    absl::StrAppend(&out, " (seq ", r.first_seq(), "..", r.last_seq(), ")");
  absl::StrAppend(&out, "; skipped: ", r.skipped_activation(), " activation, ",
                  r.skipped_shadow(), " shadow");
  if (r.skipped_other() > 0)
    absl::StrAppend(&out, ", ", r.skipped_other(), " of other kinds");
  absl::StrAppend(&out, "\n");
  if (r.seconds() > 0) {
    absl::StrAppend(
        &out, absl::StrFormat("time: %.3f s, %.0f records/s, %d thread%s\n",
                              r.seconds(), r.records_per_second(), r.threads(),
                              r.threads() == 1 ? "" : "s"));
  }
  if (!r.chain_verified()) {
    absl::StrAppend(&out,
                    "hash chain: not verified by replay (stepwise audit verify "
                    "does that)\n");
  }
  absl::StrAppend(&out, "decided under the candidate's own sha256: ",
                  r.decided_by_candidate(), " (",
                  r.decided_by_candidate_changed(), " of them change)\n");
  absl::StrAppend(&out, "outcome: ", r.unchanged(), " unchanged, ", r.changed(),
                  " changed (", r.rejected(), " rejected as bad input), ",
                  r.blocking(), " blocking\n");
  if (!r.transitions().empty()) AppendTransitions(r, &out);

  if (r.blocking() > 0) {
    absl::StrAppend(
        &out, "\nBLOCKING: ", r.blocking(), " decision",
        r.blocking() == 1 ? "" : "s",
        " recorded URGENT_SAFETY would no longer be URGENT_SAFETY\n");
    for (const v1::ReplayedDecision& d : r.blocking_findings())
      AppendDecision(d, &out);
    if (r.blocking_omitted() > 0) {
      absl::StrAppend(&out, "  ! ... and ", r.blocking_omitted(),
                      " more not listed\n");
    }
  }
  const uint64_t other_changes = r.changed() - r.blocking();
  if (other_changes > 0) {
    absl::StrAppend(
        &out, "\nchanged", r.blocking() > 0 ? " (not blocking)" : "", ": ",
        other_changes, " decision", other_changes == 1 ? "" : "s", "\n");
    for (const v1::ReplayedDecision& d : r.changes()) AppendDecision(d, &out);
    if (r.changes_omitted() > 0) {
      absl::StrAppend(&out, "    ... and ", r.changes_omitted(),
                      " more not listed\n");
    }
  }
  absl::StrAppend(&out, "\n",
                  r.blocking() == 0
                      ? std::string("no blocking findings")
                      : absl::StrCat(r.blocking(), " blocking finding",
                                     r.blocking() == 1 ? "" : "s"),
                  "\n");
  return out;
}

std::string FormatReplayJson(const ReplayReport& report) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  // Zero counts are printed: "blocking": "0" says more than a missing key.
  options.always_print_primitive_fields = true;
  std::string out;
  // Printing a message built here cannot fail (no Any, no invalid enums).
  (void)google::protobuf::util::MessageToJsonString(report, &out, options);
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  return out;
}

}  // namespace stepwise::engine
