// ReplayAccumulator: decisions made under one bundle, evaluated again under a
// candidate. The recorded side is produced by the engine itself (Evaluate
// under the "before" bundle), as the server would have recorded it.
#include "engine/replay.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/engine/test_bundle.h"

namespace stepwise::engine {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MustLoadRuleset;
using testing::Request;

constexpr char kBase[] = R"(ruleset: test-rules
version: 1.0.0
steps: {1: one, 2: two, 3: three, 4: four}
flags:
  - {id: red_flag, description: a test flag}
define:
  high: phq9.total >= 20
rules:
  - {id: URGENT, title: item 9, when: phq9.item9 >= 1, action: URGENT_SAFETY,
     rationale: r, follow_up: f, source: s}
  - {id: FLAG, title: flagged, when: '"red_flag" in flags', action: URGENT_SAFETY,
     rationale: r, follow_up: f, source: s}
  - {id: UP, title: high, when: high && weeks_at_step >= 4.0, action: STEP_UP,
     rationale: r, follow_up: f, source: s}
  - {id: REF, title: very high, when: phq9.total >= 24, action: REFER, to_step: 4,
     refer_to: specialist, rationale: r, follow_up: f, source: s}
default: {action: STAY, rationale: nothing matched, follow_up: f, source: s}
)";

// kBase with `from` replaced by `to` (which must occur).
std::string Edited(const std::string& from, const std::string& to) {
  const std::string text = absl::StrReplaceAll(kBase, {{from, to}});
  EXPECT_NE(text, kBase) << "no " << from;
  return text;
}

// A PHQ-9 request: items as given (item9 last), weeks at step, step, flags.
v1::EvaluateRequest Phq9Request(const std::vector<int>& items, double weeks,
                                int step, bool red_flag = false) {
  std::string json =
      absl::StrCat(R"({"subjectId": "patient-1", "currentStep": )", step,
                   R"(, "weeksAtStep": )", weeks,
                   R"(, "asOf": "2026-11-20T12:00:00Z", "assessments": [)",
                   R"({"instrument": "phq9", "items": {)");
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StrAppend(&json, i > 0 ? ", " : "", "\"item", i + 1,
                    "\": ", items[i]);
  }
  absl::StrAppend(&json, R"(}, "administeredAt": "2026-11-20T09:00:00Z"}])");
  if (red_flag) absl::StrAppend(&json, R"(, "flags": ["red_flag"])");
  absl::StrAppend(&json, "}");
  return Request(json);
}

// What the audit log would hold for `request` decided under `bundle`.
RecordedDecision Record(const Bundle& bundle,
                        const v1::EvaluateRequest& request, uint64_t seq) {
  const EvaluationResult result = Evaluate(bundle, request, absl::UnixEpoch());
  EXPECT_TRUE(result.ok());
  RecordedDecision r;
  r.seq = seq;
  r.decision_id = absl::StrCat("decision-", seq);
  r.ruleset_sha256 = bundle.sha256();
  // The log never holds the subject_id; the accumulator copes without it.
  *r.mutable_request() = request;
  r.mutable_request()->clear_subject_id();
  r.action = result.decision.action();
  r.recommended_step = result.decision.recommended_step();
  for (const v1::MatchedRule& m : result.decision.matched_rules()) {
    r.matched_rule_ids.push_back(m.rule_id());
  }
  r.refer_to.assign(result.decision.refer_to().begin(),
                    result.decision.refer_to().end());
  return r;
}

// A varied, seeded set of decisions: every rule of kBase fires in some.
std::vector<RecordedDecision> RecordedLog(const Bundle& bundle, size_t n) {
  std::mt19937 rng(20261120);
  std::vector<RecordedDecision> log;
  for (size_t k = 0; k < n; ++k) {
    std::vector<int> items(9);
    const int level = static_cast<int>(rng() % 4);
    for (int i = 0; i < 8; ++i)
      items[i] = std::min(3, level + static_cast<int>(rng() % 2));
    items[8] = rng() % 5 == 0 ? 1 : 0;
    log.push_back(
        Record(bundle,
               Phq9Request(items, static_cast<double>(rng() % 10),
                           1 + static_cast<int>(rng() % 4), rng() % 11 == 0),
               k + 1));
  }
  return log;
}

ReplayReport Replay(const Bundle& candidate,
                    const std::vector<RecordedDecision>& log,
                    ReplayLimits limits = {}) {
  ReplayAccumulator accumulator(candidate, limits);
  for (const RecordedDecision& r : log) accumulator.AddDecision(r);
  return accumulator.Report();
}

uint64_t Cell(const ReplayReport& report, v1::Action from, v1::Action to,
              bool rejected = false) {
  for (const v1::ActionTransition& t : report.transitions()) {
    if (t.from_action() == from && t.to_action() == to &&
        t.rejected() == rejected) {
      return t.count();
    }
  }
  return 0;
}

TEST(ReplayTest, ReplayingABundleAgainstItselfChangesNothing) {
  auto bundle = MustLoadRuleset(kBase);
  ASSERT_NE(bundle, nullptr);
  const std::vector<RecordedDecision> log = RecordedLog(*bundle, 500);
  const ReplayReport report = Replay(*bundle, log);
  EXPECT_EQ(report.decisions(), 500u);
  EXPECT_EQ(report.records(), 500u);
  EXPECT_EQ(report.changed(), 0u);
  EXPECT_EQ(report.unchanged(), 500u);
  EXPECT_EQ(report.blocking(), 0u);
  EXPECT_EQ(report.decided_by_candidate(), 500u);
  EXPECT_EQ(report.decided_by_candidate_changed(), 0u);
  EXPECT_THAT(report.changes(), IsEmpty());
  EXPECT_THAT(report.blocking_findings(), IsEmpty());
  EXPECT_EQ(report.first_seq(), 1u);
  EXPECT_EQ(report.last_seq(), 500u);
  EXPECT_EQ(report.candidate().sha256(), bundle->sha256());
  // Only the diagonal, and every action the log holds.
  uint64_t total = 0;
  for (const v1::ActionTransition& t : report.transitions()) {
    EXPECT_EQ(t.from_action(), t.to_action());
    EXPECT_FALSE(t.rejected());
    total += t.count();
  }
  EXPECT_EQ(total, 500u);
  EXPECT_GT(Cell(report, v1::URGENT_SAFETY, v1::URGENT_SAFETY), 0u);
  EXPECT_GT(Cell(report, v1::STEP_UP, v1::STEP_UP), 0u);
  EXPECT_GT(Cell(report, v1::REFER, v1::REFER), 0u);
  EXPECT_GT(Cell(report, v1::STAY, v1::STAY), 0u);
}

TEST(ReplayTest,
     ARaisedThresholdShowsAsTransitionsWithTheRuleThatNoLongerMatches) {
  auto before = MustLoadRuleset(kBase);
  auto after =
      MustLoadRuleset(Edited("weeks_at_step >= 4.0", "weeks_at_step >= 8.0"));
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  const std::vector<RecordedDecision> log = {
      Record(*before, Phq9Request({3, 3, 3, 3, 3, 3, 2, 0, 0}, 5, 2),
             1),  // UP fires at 5 weeks
      Record(*before, Phq9Request({3, 3, 3, 3, 3, 3, 2, 0, 0}, 9, 2),
             2),  // and at 9
      Record(*before, Phq9Request({0, 0, 0, 0, 0, 0, 0, 0, 0}, 5, 2),
             3),  // nothing
  };
  ASSERT_EQ(log[0].action, v1::STEP_UP);
  const ReplayReport report = Replay(*after, log);
  EXPECT_EQ(report.decisions(), 3u);
  EXPECT_EQ(report.changed(), 1u);
  EXPECT_EQ(report.unchanged(), 2u);
  EXPECT_EQ(report.blocking(), 0u);
  EXPECT_EQ(report.decided_by_candidate(), 0u);
  EXPECT_EQ(Cell(report, v1::STEP_UP, v1::STAY), 1u);
  EXPECT_EQ(Cell(report, v1::STEP_UP, v1::STEP_UP), 1u);
  EXPECT_EQ(Cell(report, v1::STAY, v1::STAY), 1u);
  ASSERT_EQ(report.changes_size(), 1);
  const v1::ReplayedDecision& d = report.changes(0);
  EXPECT_EQ(d.seq(), 1u);
  EXPECT_EQ(d.decision_id(), "decision-1");
  EXPECT_EQ(d.from_action(), v1::STEP_UP);
  EXPECT_EQ(d.from_step(), 3);
  EXPECT_EQ(d.to_action(), v1::STAY);
  EXPECT_EQ(d.to_step(), 2);
  EXPECT_THAT(d.rules_only_before(), ElementsAre("UP"));
  EXPECT_THAT(d.rules_only_now(), IsEmpty());
  EXPECT_FALSE(d.blocking());
  EXPECT_FALSE(d.rejected());
  EXPECT_EQ(d.decided_by_sha256(), before->sha256());
}

TEST(ReplayTest, SameActionWithDifferentRulesOrStepOrReferralIsAChange) {
  auto before = MustLoadRuleset(kBase);
  ASSERT_NE(before, nullptr);
  const v1::EvaluateRequest very_high =
      Phq9Request({3, 3, 3, 3, 3, 3, 3, 3, 0}, 1, 2);
  const std::vector<RecordedDecision> log = {Record(*before, very_high, 1)};
  ASSERT_EQ(log[0].action, v1::REFER);

  // The same action and step, reached by a renamed rule.
  auto renamed = MustLoadRuleset(Edited("id: REF,", "id: REF-2,"));
  ASSERT_NE(renamed, nullptr);
  ReplayReport report = Replay(*renamed, log);
  ASSERT_EQ(report.changes_size(), 1);
  EXPECT_EQ(report.changes(0).to_action(), v1::REFER);
  EXPECT_THAT(report.changes(0).rules_only_before(), ElementsAre("REF"));
  EXPECT_THAT(report.changes(0).rules_only_now(), ElementsAre("REF-2"));
  EXPECT_THAT(report.changes(0).refer_to_before(), IsEmpty());
  EXPECT_EQ(Cell(report, v1::REFER, v1::REFER), 1u);

  // Another referral target: the rules are the same, the targets are not.
  auto retargeted =
      MustLoadRuleset(Edited("refer_to: specialist", "refer_to: psychiatry"));
  ASSERT_NE(retargeted, nullptr);
  report = Replay(*retargeted, log);
  ASSERT_EQ(report.changes_size(), 1);
  EXPECT_THAT(report.changes(0).rules_only_before(), IsEmpty());
  EXPECT_THAT(report.changes(0).refer_to_before(), ElementsAre("specialist"));
  EXPECT_THAT(report.changes(0).refer_to_now(), ElementsAre("psychiatry"));

  // Another step.
  auto restepped = MustLoadRuleset(Edited("to_step: 4", "to_step: 3"));
  ASSERT_NE(restepped, nullptr);
  report = Replay(*restepped, log);
  ASSERT_EQ(report.changes_size(), 1);
  EXPECT_EQ(report.changes(0).from_step(), 4);
  EXPECT_EQ(report.changes(0).to_step(), 3);
}

TEST(ReplayTest, LosingUrgentSafetyIsBlockingAndSoIsARejectedUrgentRequest) {
  auto before = MustLoadRuleset(kBase);
  ASSERT_NE(before, nullptr);
  const std::vector<RecordedDecision> log = {
      Record(*before, Phq9Request({0, 0, 0, 0, 0, 0, 0, 0, 2}, 1, 2),
             7),  // URGENT
      Record(*before, Phq9Request({0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 2, true),
             8),  // FLAG
      Record(*before, Phq9Request({0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 2),
             9),  // STAY
  };
  ASSERT_EQ(log[0].action, v1::URGENT_SAFETY);
  ASSERT_EQ(log[1].action, v1::URGENT_SAFETY);
  // The candidate demotes item 9 to a STAY and no longer declares the flag,
  // so the flagged request is bad input to it.
  auto candidate = MustLoadRuleset(absl::StrReplaceAll(
      kBase,
      {{"when: phq9.item9 >= 1, action: URGENT_SAFETY",
        "when: phq9.item9 >= 1, action: STAY"},
       {"  - {id: red_flag, description: a test flag}\n", ""},
       {"flags:\n", "flags: []\n"},
       {"when: '\"red_flag\" in flags'", "when: 'weeks_at_step > 100.0'"}}));
  ASSERT_NE(candidate, nullptr);
  const ReplayReport report = Replay(*candidate, log);
  EXPECT_EQ(report.blocking(), 2u);
  EXPECT_EQ(report.rejected(), 1u);
  EXPECT_EQ(report.changed(), 2u);
  EXPECT_EQ(Cell(report, v1::URGENT_SAFETY, v1::STAY), 1u);
  EXPECT_EQ(Cell(report, v1::URGENT_SAFETY, v1::ACTION_UNSPECIFIED,
                 /*rejected=*/true),
            1u);
  EXPECT_EQ(Cell(report, v1::STAY, v1::STAY), 1u);
  ASSERT_EQ(report.blocking_findings_size(), 2);
  EXPECT_THAT(report.changes(), IsEmpty());
  const v1::ReplayedDecision& demoted = report.blocking_findings(0);
  EXPECT_EQ(demoted.seq(), 7u);
  EXPECT_TRUE(demoted.blocking());
  EXPECT_EQ(demoted.to_action(), v1::STAY);
  EXPECT_THAT(demoted.rules_only_before(),
              IsEmpty());  // URGENT still matches, as a STAY
  EXPECT_THAT(demoted.rules_matched_both(), ElementsAre("URGENT"));
  const v1::ReplayedDecision& rejected = report.blocking_findings(1);
  EXPECT_EQ(rejected.seq(), 8u);
  EXPECT_TRUE(rejected.rejected());
  EXPECT_TRUE(rejected.blocking());
  EXPECT_EQ(rejected.to_action(), v1::ACTION_UNSPECIFIED);
  EXPECT_THAT(rejected.violations(), ElementsAre(HasSubstr("flags")));
  EXPECT_THAT(rejected.rules_only_before(), ElementsAre("FLAG"));

  const std::string text = FormatReplayText(report);
  EXPECT_THAT(text, HasSubstr("BLOCKING: 2 decisions recorded URGENT_SAFETY"));
  EXPECT_THAT(
      text,
      HasSubstr("  ! seq 7  decision-7  URGENT_SAFETY step 2 -> STAY step 2\n"
                "        rules matched both times:  URGENT\n"));
  EXPECT_THAT(
      text,
      HasSubstr("  ! seq 8  decision-8  URGENT_SAFETY step 2 -> rejected"));
  EXPECT_THAT(text, HasSubstr("2 blocking findings\n"));
  EXPECT_THAT(text, HasSubstr("hash chain: not verified"));
}

TEST(ReplayTest, ARejectedRequestThatWasNotUrgentIsAChangeButNotBlocking) {
  auto before = MustLoadRuleset(kBase);
  ASSERT_NE(before, nullptr);
  v1::EvaluateRequest request = Phq9Request({0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 4);
  const std::vector<RecordedDecision> log = {Record(*before, request, 1)};
  auto three_steps = MustLoadRuleset(
      absl::StrReplaceAll(kBase, {{"steps: {1: one, 2: two, 3: three, 4: four}",
                                   "steps: {1: one, 2: two, 3: three}"},
                                  {"to_step: 4", "to_step: 3"}}));
  ASSERT_NE(three_steps, nullptr);
  const ReplayReport report = Replay(*three_steps, log);
  EXPECT_EQ(report.rejected(), 1u);
  EXPECT_EQ(report.blocking(), 0u);
  EXPECT_EQ(Cell(report, v1::STAY, v1::ACTION_UNSPECIFIED, /*rejected=*/true),
            1u);
  ASSERT_EQ(report.changes_size(), 1);
  EXPECT_TRUE(report.changes(0).rejected());
  EXPECT_FALSE(report.changes(0).blocking());
  EXPECT_THAT(FormatReplayText(report), HasSubstr("no blocking findings\n"));
}

// The report is the same however the decisions are shared out among
// accumulators and in whatever order those are merged.
TEST(ReplayTest, MergedReportsDoNotDependOnHowTheWorkWasShared) {
  auto before = MustLoadRuleset(kBase);
  auto after = MustLoadRuleset(Edited("phq9.item9 >= 1", "phq9.item9 >= 2"));
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  const std::vector<RecordedDecision> log = RecordedLog(*before, 400);
  for (uint64_t max_listed : {uint64_t{0}, uint64_t{3}, uint64_t{50}}) {
    const ReplayLimits limits{max_listed};
    const ReplayReport single = Replay(*after, log, limits);
    ASSERT_GT(single.blocking(), 3u);
    std::mt19937 rng(static_cast<uint32_t>(max_listed) + 1);
    for (int round = 0; round < 20; ++round) {
      const size_t parts = 1 + rng() % 5;
      std::vector<ReplayAccumulator> accumulators;
      for (size_t i = 0; i < parts; ++i)
        accumulators.emplace_back(*after, limits);
      // Contiguous runs to random parts, as chunks are handed out.
      for (size_t k = 0; k < log.size();) {
        const size_t run = 1 + rng() % 40;
        ReplayAccumulator& target = accumulators[rng() % parts];
        for (size_t end = std::min(log.size(), k + run); k < end; ++k)
          target.AddDecision(log[k]);
      }
      std::shuffle(accumulators.begin(), accumulators.end(), rng);
      for (size_t i = 1; i < parts; ++i)
        accumulators[0].Merge(std::move(accumulators[i]));
      const ReplayReport merged = accumulators[0].Report();
      EXPECT_TRUE(MessageDifferencer::Equals(single, merged))
          << "max_listed " << max_listed << ", round " << round << "\n"
          << FormatReplayText(single) << "\nvs\n"
          << FormatReplayText(merged);
    }
  }
}

TEST(ReplayTest, ListsAreCappedToTheLowestSeqsAndTheRestCounted) {
  auto before = MustLoadRuleset(kBase);
  auto after = MustLoadRuleset(Edited("phq9.item9 >= 1", "phq9.item9 >= 2"));
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  std::vector<RecordedDecision> log;
  for (uint64_t seq = 1; seq <= 30; ++seq) {
    log.push_back(
        Record(*before, Phq9Request({0, 0, 0, 0, 0, 0, 0, 0, 1}, 1, 2), seq));
  }
  std::reverse(log.begin(), log.end());  // order of arrival does not matter
  const ReplayReport report = Replay(*after, log, ReplayLimits{4});
  EXPECT_EQ(report.blocking(), 30u);
  ASSERT_EQ(report.blocking_findings_size(), 4);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(report.blocking_findings(i).seq(), uint64_t(i + 1));
  EXPECT_EQ(report.blocking_omitted(), 26u);
  EXPECT_THAT(FormatReplayText(report),
              HasSubstr("... and 26 more not listed"));
}

TEST(ReplayTest, SkippedRecordsAreCountedByKind) {
  auto bundle = MustLoadRuleset(kBase);
  ASSERT_NE(bundle, nullptr);
  ReplayAccumulator accumulator(*bundle);
  accumulator.AddSkipped(SkippedKind::kActivation);
  accumulator.AddSkipped(SkippedKind::kShadow);
  accumulator.AddSkipped(SkippedKind::kShadow);
  accumulator.AddSkipped(SkippedKind::kOther);
  const ReplayReport report = accumulator.Report();
  EXPECT_EQ(report.records(), 4u);
  EXPECT_EQ(report.decisions(), 0u);
  EXPECT_EQ(report.skipped_activation(), 1u);
  EXPECT_EQ(report.skipped_shadow(), 2u);
  EXPECT_EQ(report.skipped_other(), 1u);
  EXPECT_EQ(report.first_seq(), 0u);
  EXPECT_THAT(report.transitions(), IsEmpty());
}

TEST(ReplayTest, TextShowsTheTransitionMatrixAndJsonParsesBack) {
  auto before = MustLoadRuleset(kBase);
  auto after =
      MustLoadRuleset(Edited("weeks_at_step >= 4.0", "weeks_at_step >= 8.0"));
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  const std::vector<RecordedDecision> log = {
      Record(*before, Phq9Request({3, 3, 3, 3, 3, 3, 2, 0, 0}, 5, 2), 1),
      Record(*before, Phq9Request({3, 3, 3, 3, 3, 3, 2, 0, 0}, 9, 2), 2),
      Record(*before, Phq9Request({0, 0, 0, 0, 0, 0, 0, 0, 0}, 5, 2), 3),
  };
  ReplayReport report = Replay(*after, log);
  report.set_seconds(0.5);
  report.set_records_per_second(6);
  report.set_threads(2);
  const std::string text = FormatReplayText(report);
  EXPECT_THAT(text, HasSubstr("records: 3, decisions replayed: 3 (seq 1..3)"));
  EXPECT_THAT(text, HasSubstr("time: 0.500 s, 6 records/s, 2 threads"));
  EXPECT_THAT(
      text,
      HasSubstr("outcome: 2 unchanged, 1 changed (0 rejected as bad input), 0 "
                "blocking"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "transitions (rows: as recorded; columns: under the candidate)\n"
          "            STAY  STEP_UP\n"
          "  STAY         1        0\n"
          "  STEP_UP      1        1\n"));
  EXPECT_THAT(text,
              HasSubstr("    seq 1  decision-1  STEP_UP step 3 -> STAY step 2\n"
                        "        rules matched only before: UP\n"
                        "        rules matched only now:    (none)\n"));
  EXPECT_THAT(text, HasSubstr("no blocking findings"));

  ReplayReport parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  FormatReplayJson(report), &parsed)
                  .ok());
  EXPECT_TRUE(MessageDifferencer::Equals(report, parsed));
}

}  // namespace
}  // namespace stepwise::engine
