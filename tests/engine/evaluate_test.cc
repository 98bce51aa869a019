// The hit policy and the shape of a Decision: severity order, recommended
// step, referrals, step caps, the default, explanations and undecided rules.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/test_bundle.h"

namespace stepwise::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MustLoadRuleset;
using testing::Request;

// Each rule fires on its own flag-free condition over current_step and the
// PHQ-9 total, so a test picks the matched set through the request.
constexpr char kRuleset[] = R"(
ruleset: combine
version: "1"
steps: {1: one, 2: two, 3: three, 4: four}
flags: [red_flag]
rules:
  - {id: UP-NEXT, title: up next, when: phq9.total >= 10, action: STEP_UP,
     rationale: r, follow_up: f, source: s}
  - {id: UP-TO-3, title: up to 3, when: phq9.total >= 12, action: STEP_UP, to_step: 3,
     rationale: r, follow_up: f, source: s}
  - {id: DOWN-PREV, title: down, when: phq9.total <= 2, action: STEP_DOWN,
     rationale: r, follow_up: f, source: s}
  - {id: DOWN-TO-1, title: down to 1, when: phq9.total == 0, action: STEP_DOWN, to_step: 1,
     rationale: r, follow_up: f, source: s}
  - {id: STAY-LOW, title: stay, when: phq9.total == 1, action: STAY,
     rationale: r, follow_up: f, source: s}
  - {id: REF-SPEC, title: specialist, when: phq9.total >= 20, action: REFER, to_step: 4,
     refer_to: specialist, rationale: r, follow_up: f, source: s}
  - {id: REF-MED, title: medical, when: '"red_flag" in flags', action: REFER,
     to_step: current, refer_to: medical, rationale: r, follow_up: f, source: s}
  - {id: REF-MED-2, title: medical again, when: '"red_flag" in flags && phq9.total >= 0',
     action: REFER, refer_to: medical, rationale: r, follow_up: f, source: s}
  - {id: URGENT, title: urgent, when: phq9.item9 >= 2, action: URGENT_SAFETY,
     rationale: r, follow_up: f, source: s}
  - {id: NEEDS-GAD, title: needs gad7, when: gad7.total >= 10 || phq9.total >= 100 - 90,
     action: STAY, rationale: r, follow_up: f, source: s}
default: {action: STAY, rationale: continue the current step, follow_up: re-measure,
          source: local}
)";

class EvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override { bundle_ = MustLoadRuleset(kRuleset); }

  v1::Decision Decide(int step, int total, const std::string& flags = "[]", int item9 = -1) {
    const std::string phq9 =
        item9 < 0 ? absl::StrCat(R"({"instrument": "phq9", "total": )", total,
                                 R"(, "administeredAt": "2026-11-20T09:00:00Z"})")
                  : absl::StrCat(R"({"instrument": "phq9", "items": {"item1": 3, "item2": 3,
                      "item3": 3, "item4": 3, "item5": 3, "item6": 3, "item7": 3, "item8": 0,
                      "item9": )", item9, R"(}, "administeredAt": "2026-11-20T09:00:00Z"})");
    const auto request = Request(absl::StrCat(
        R"({"subjectId": "s", "currentStep": )", step,
        R"(, "weeksAtStep": 5, "asOf": "2026-11-20T12:00:00Z", "flags": )", flags,
        R"(, "assessments": [)", phq9, "]}"));
    EvaluationResult result = Evaluate(*bundle_, request, absl::UnixEpoch());
    EXPECT_TRUE(result.ok());
    return result.decision;
  }

  static std::vector<std::string> Matched(const v1::Decision& d) {
    std::vector<std::string> ids;
    for (const auto& m : d.matched_rules()) ids.push_back(m.rule_id());
    return ids;
  }

  std::shared_ptr<const Bundle> bundle_;
};

TEST_F(EvaluateTest, StepUpGoesToTheHighestTarget) {
  v1::Decision d = Decide(1, 12);
  EXPECT_EQ(d.action(), v1::STEP_UP);
  EXPECT_EQ(d.recommended_step(), 3);  // UP-NEXT says 2, UP-TO-3 says 3
  EXPECT_THAT(Matched(d), ElementsAre("UP-NEXT", "UP-TO-3", "NEEDS-GAD"));
  d = Decide(3, 11);
  EXPECT_EQ(d.recommended_step(), 4);
}

TEST_F(EvaluateTest, StepUpAtTheTopBecomesStayWithAWarning) {
  const v1::Decision d = Decide(4, 11);
  EXPECT_EQ(d.action(), v1::STAY);
  EXPECT_EQ(d.recommended_step(), 4);
  ASSERT_EQ(d.warnings_size(), 1);
  EXPECT_THAT(d.warnings(0), HasSubstr("STEP_UP capped"));
}

TEST_F(EvaluateTest, StayOutranksStepDown) {
  // total 1: DOWN-PREV and STAY-LOW match; STAY wins.
  v1::Decision d = Decide(3, 1);
  EXPECT_EQ(d.action(), v1::STAY);
  EXPECT_EQ(d.recommended_step(), 3);
  // total 2: only DOWN-PREV.
  d = Decide(3, 2);
  EXPECT_EQ(d.action(), v1::STEP_DOWN);
  EXPECT_EQ(d.recommended_step(), 2);
}

TEST_F(EvaluateTest, StepDownTakesTheSmallestStepAndIsCappedAtOne) {
  // total 0: DOWN-PREV says 2, DOWN-TO-1 says 1; the smallest step down wins.
  v1::Decision d = Decide(3, 0);
  EXPECT_EQ(d.action(), v1::STEP_DOWN);
  EXPECT_EQ(d.recommended_step(), 2);
  d = Decide(1, 2);
  EXPECT_EQ(d.action(), v1::STAY);
  EXPECT_EQ(d.recommended_step(), 1);
  ASSERT_EQ(d.warnings_size(), 1);
  EXPECT_THAT(d.warnings(0), HasSubstr("STEP_DOWN capped"));
}

TEST_F(EvaluateTest, ReferralsListEveryTargetSortedOnceWhateverWins) {
  v1::Decision d = Decide(2, 21, R"(["red_flag"])");
  EXPECT_EQ(d.action(), v1::REFER);
  EXPECT_EQ(d.recommended_step(), 4);  // specialist 4 beats medical (current 2)
  EXPECT_THAT(d.refer_to(), ElementsAre("medical", "specialist"));
  d = Decide(2, 5, R"(["red_flag"])");
  EXPECT_EQ(d.action(), v1::REFER);
  EXPECT_EQ(d.recommended_step(), 2);  // medical re-evaluation keeps the step
  EXPECT_THAT(d.refer_to(), ElementsAre("medical"));
  // URGENT_SAFETY wins, referrals still shown; step is the current one.
  d = Decide(2, 0, R"(["red_flag"])", /*item9=*/3);
  EXPECT_EQ(d.action(), v1::URGENT_SAFETY);
  EXPECT_EQ(d.recommended_step(), 2);
  EXPECT_THAT(d.refer_to(), ElementsAre("medical", "specialist"));
}

TEST_F(EvaluateTest, NothingMatchedGivesTheDefault) {
  const v1::Decision d = Decide(2, 5);
  EXPECT_EQ(d.action(), v1::STAY);
  EXPECT_EQ(d.recommended_step(), 2);
  EXPECT_THAT(d.matched_rules(), IsEmpty());
  EXPECT_EQ(d.default_rule().rationale(), "continue the current step");
  EXPECT_EQ(d.default_rule().follow_up(), "re-measure");
  EXPECT_EQ(d.ruleset().name(), "combine");
  EXPECT_EQ(d.ruleset().sha256(), bundle_->sha256());
}

TEST_F(EvaluateTest, MatchedRulesCarryTheirTextAndTheValuesTheySaw) {
  const v1::Decision d = Decide(2, 0, "[]", /*item9=*/2);
  ASSERT_FALSE(d.matched_rules().empty());
  const v1::MatchedRule* urgent = nullptr;
  for (const auto& m : d.matched_rules()) {
    if (m.rule_id() == "URGENT") urgent = &m;
  }
  ASSERT_NE(urgent, nullptr);
  EXPECT_EQ(urgent->title(), "urgent");
  EXPECT_EQ(urgent->rationale(), "r");
  EXPECT_EQ(urgent->follow_up(), "f");
  EXPECT_EQ(urgent->source(), "s");
  EXPECT_EQ(urgent->explanation(), "phq9.item9 = 2 >= 2");
}

TEST_F(EvaluateTest, UndecidedRulesNameTheFactsTheyLacked) {
  const v1::Decision d = Decide(2, 5);
  // A total without items: phq9.item9 is absent, so URGENT is undecided;
  // NEEDS-GAD: gad7 absent and phq9.total >= 10 false -> undecided.
  ASSERT_EQ(d.unevaluated_rules_size(), 2);
  EXPECT_EQ(d.unevaluated_rules(0).rule_id(), "URGENT");
  EXPECT_THAT(d.unevaluated_rules(0).missing_facts(), ElementsAre("phq9.item9"));
  EXPECT_EQ(d.unevaluated_rules(1).rule_id(), "NEEDS-GAD");
  EXPECT_THAT(d.unevaluated_rules(1).missing_facts(), ElementsAre("gad7.total"));
}

TEST_F(EvaluateTest, ExplainTracesEveryRule) {
  const auto request = Request(
      R"({"subjectId": "s", "currentStep": 2, "asOf": "2026-11-20T12:00:00Z",
          "assessments": [{"instrument": "phq9", "total": 12,
                           "administeredAt": "2026-11-20T09:00:00Z"}]})");
  EvaluateOptions options;
  options.explain = true;
  const EvaluationResult result = Evaluate(*bundle_, request, absl::UnixEpoch(), options);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result.decision.trace_size(), static_cast<int>(bundle_->rules().size()));
  EXPECT_EQ(result.decision.trace(0).rule_id(), "UP-NEXT");
  EXPECT_EQ(result.decision.trace(0).outcome(), v1::RuleTrace::MATCHED);
  EXPECT_EQ(result.decision.trace(0).explanation(), "phq9.total = 12 >= 10");
  EXPECT_EQ(result.decision.trace(2).outcome(), v1::RuleTrace::NOT_MATCHED);
  EXPECT_EQ(result.decision.trace(8).outcome(), v1::RuleTrace::UNDECIDED);
}

}  // namespace
}  // namespace stepwise::engine

namespace stepwise::engine {
namespace {

TEST(EvaluateOutcomeTest, AgreesWithEvaluate) {
  std::shared_ptr<const Bundle> bundle = testing::MustLoadRuleset(kRuleset);
  for (const char* flags : {"[]", R"(["red_flag"])"}) {
    for (int step = 1; step <= 4; ++step) {
      for (int total = 0; total <= 27; ++total) {
        const auto request = testing::Request(absl::StrCat(
            R"({"subjectId": "s", "currentStep": )", step,
            R"(, "asOf": "2026-11-20T12:00:00Z", "flags": )", flags,
            R"(, "assessments": [{"instrument": "phq9", "total": )", total,
            R"(, "administeredAt": "2026-11-20T09:00:00Z"}]})"));
        const EvaluationResult full = Evaluate(*bundle, request, absl::UnixEpoch());
        const Outcome outcome = EvaluateOutcome(*bundle, request, absl::UnixEpoch());
        ASSERT_TRUE(full.ok() && outcome.ok());
        EXPECT_EQ(outcome.action, full.decision.action());
        EXPECT_EQ(outcome.recommended_step, full.decision.recommended_step());
        std::vector<std::string> ids;
        for (uint32_t i : outcome.matched) ids.push_back(bundle->rules()[i].id);
        std::vector<std::string> expected;
        for (const auto& m : full.decision.matched_rules()) expected.push_back(m.rule_id());
        EXPECT_EQ(ids, expected);
        EXPECT_EQ(outcome.refer_to, std::vector<std::string>(full.decision.refer_to().begin(),
                                                             full.decision.refer_to().end()));
      }
    }
  }
}

}  // namespace
}  // namespace stepwise::engine
