// Instrument scoring and fact derivation, seen through the engine's public
// surface: EvaluateExpression reads one fact, Evaluate/ValidateRequest report
// violations and warnings.
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
using testing::MustLoad;
using testing::Request;

class ScoringTest : public ::testing::Test {
 protected:
  void SetUp() override { bundle_ = MustLoad(testing::BaseFiles()); }

  // `assessments` is the JSON array body.
  v1::EvaluateRequest Make(const std::string& assessments,
                           const std::string& extra = "") {
    return Request(absl::StrCat(
        R"({"subjectId": "s", "currentStep": 2, "weeksAtStep": 3,
            "asOf": "2026-11-20T12:00:00Z", "assessments": [)",
        assessments, "]", extra, "}"));
  }

  // The fact's value as JSON, or its error.
  std::string Fact(const v1::EvaluateRequest& request,
                   const std::string& expr) {
    ExpressionResult r =
        EvaluateExpression(*bundle_, expr, &request, absl::UnixEpoch());
    EXPECT_THAT(r.issues, IsEmpty());
    if (!r.violations.empty()) return "violation: " + r.violations[0].field;
    return r.error.empty() ? r.json_value : "error: " + r.error;
  }

  std::vector<std::string> ViolationFields(const v1::EvaluateRequest& request) {
    std::vector<std::string> fields;
    for (const FieldViolation& v :
         ValidateRequest(*bundle_, request, absl::UnixEpoch())) {
      fields.push_back(v.field);
    }
    return fields;
  }

  std::shared_ptr<const Bundle> bundle_;
};

constexpr char kPhq9Full[] =
    R"({"instrument": "phq9", "items": {"item1": 1, "item2": 1, "item3": 1, "item4": 1,
        "item5": 1, "item6": 1, "item7": 1, "item8": 1, "item9": 0},
        "administeredAt": "2026-11-20T09:00:00Z"})";

TEST_F(ScoringTest, TotalIsTheSumOfTheItems) {
  const auto request = Make(kPhq9Full);
  EXPECT_EQ(Fact(request, "phq9.total"), "8");
  EXPECT_EQ(Fact(request, "phq9.severity"), "\"mild\"");
  EXPECT_EQ(Fact(request, "phq9.caseness"), "false");
  EXPECT_EQ(Fact(request, "phq9.item9"), "0");
  EXPECT_EQ(Fact(request, "phq9.count"), "1");
  EXPECT_EQ(Fact(request, "phq9.days_since"), "0.125");
  EXPECT_EQ(Fact(request, "has(previous.phq9)"), "false");
  EXPECT_THAT(Fact(request, "phq9.change"), HasSubstr("absent phq9.change"));
}

TEST_F(ScoringTest, ProrationRoundsHalfUpAndLeavesMissingItemsAbsent) {
  // Seven items of 1 and one missing: 7 * 9 / 8 = 7.875 -> 8.
  auto request = Make(
      R"({"instrument": "phq9", "items": {"item1": 1, "item2": 1, "item3": 1, "item5": 1,
          "item6": 1, "item7": 1, "item8": 1, "item9": 0},
          "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_EQ(Fact(request, "phq9.total"), "8");
  EXPECT_EQ(Fact(request, "has(phq9.item4)"), "false");
  // 2+2+2+2+2+2+2 = 14 over 7 answered -> 14 * 9 / 7 = 18 exactly.
  request = Make(
      R"({"instrument": "phq9", "items": {"item1": 2, "item2": 2, "item3": 2, "item5": 2,
          "item6": 2, "item7": 2, "item8": 2},
          "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_EQ(Fact(request, "phq9.total"), "18");
  // Item 9 is prorated into the total but never imputed itself.
  EXPECT_EQ(Fact(request, "has(phq9.item9)"), "false");
  // Exactly half: eight answered items summing to 4 -> 4 * 9 / 8 = 4.5 -> 5.
  request = Make(
      R"({"instrument": "phq9", "items": {"item1": 1, "item2": 1, "item3": 1, "item4": 1,
          "item5": 0, "item6": 0, "item7": 0, "item8": 0},
          "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_EQ(Fact(request, "phq9.total"), "5");
}

TEST_F(ScoringTest, TooManyMissingItemsGiveNoTotalAndAWarning) {
  const auto request = Make(
      R"({"instrument": "phq9", "items": {"item1": 3, "item2": 3, "item3": 3, "item4": 3,
          "item5": 3, "item9": 1}, "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_THAT(Fact(request, "phq9.total"), HasSubstr("absent phq9.total"));
  EXPECT_EQ(Fact(request, "phq9.item9"), "1");
  EvaluationResult result = Evaluate(*bundle_, request, absl::UnixEpoch());
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result.decision.warnings_size(), 1);
  EXPECT_THAT(result.decision.warnings(0), HasSubstr("no total"));
}

TEST_F(ScoringTest, GivenTotalMustAgreeWithTheItems) {
  // Full items summing to 8 with total 9: rejected.
  auto request = Make(absl::StrCat(
      std::string(kPhq9Full).substr(0, std::string(kPhq9Full).size() - 1),
      R"(, "total": 9})"));
  EXPECT_THAT(ViolationFields(request), ElementsAre("assessments[0].total"));
  // With too many missing, the total must lie in [sum, sum + max of missing].
  const std::string partial =
      R"({"instrument": "phq9", "items": {"item1": 1, "item2": 1, "item3": 1, "item4": 1,
          "item5": 1, "item9": 0}, "administeredAt": "2026-11-20T09:00:00Z", "total": )";
  EXPECT_THAT(ViolationFields(Make(partial + "4}")),
              ElementsAre("assessments[0].total"));
  EXPECT_THAT(ViolationFields(Make(partial + "5}")), IsEmpty());
  EXPECT_THAT(ViolationFields(Make(partial + "14}")), IsEmpty());
  EXPECT_THAT(ViolationFields(Make(partial + "15}")),
              ElementsAre("assessments[0].total"));
  // Consistent, but not used: too many items are missing for a total (the
  // spec's facts table), so phq9.total is absent and a warning says why.
  EXPECT_EQ(Fact(Make(partial + "14}"), "has(phq9.total)"), "false");
  // A total alone: items absent.
  request = Make(
      R"({"instrument": "phq9", "total": 12, "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_EQ(Fact(request, "phq9.total"), "12");
  EXPECT_EQ(Fact(request, "has(phq9.item9)"), "false");
}

TEST_F(ScoringTest, CssrsSkipLogicCountsUnaskedItemsAsZero) {
  auto request = Make(
      R"({"instrument": "cssrs", "items": {"q1": 1, "q2": 0, "q6": 0},
          "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_THAT(ViolationFields(request), IsEmpty());
  EXPECT_EQ(Fact(request, "cssrs.q4"), "0");
  EXPECT_EQ(Fact(request, "has(cssrs.q3)"), "true");
  // q2 = 1: q3..q5 must be answered; an incomplete screen is bad input.
  request = Make(
      R"({"instrument": "cssrs", "items": {"q1": 1, "q2": 1, "q6": 0},
          "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_THAT(ViolationFields(request),
              ElementsAre("assessments[0].items.q3", "assessments[0].items.q4",
                          "assessments[0].items.q5"));
  // q1 missing is never skipped.
  request = Make(
      R"({"instrument": "cssrs", "items": {"q2": 0, "q6": 0},
          "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_THAT(ViolationFields(request), ElementsAre("assessments[0].items.q1"));
  // No total exists for the C-SSRS.
  request = Make(
      R"({"instrument": "cssrs", "total": 2, "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_THAT(ViolationFields(request), ElementsAre("assessments[0].total"));
}

TEST_F(ScoringTest, CurrentPreviousAndBaselineFollowTimeNotRequestOrder) {
  const auto request = Make(
      R"({"instrument": "phq9", "total": 10, "administeredAt": "2026-11-13T09:00:00Z"},
         {"instrument": "phq9", "total": 20, "administeredAt": "2026-10-01T09:00:00Z"},
         {"instrument": "phq9", "total": 15, "administeredAt": "2026-11-20T09:00:00Z"},
         {"instrument": "gad7", "total": 0, "administeredAt": "2026-10-01T09:00:00Z"},
         {"instrument": "gad7", "total": 9, "administeredAt": "2026-11-20T09:00:00Z"})");
  EXPECT_EQ(Fact(request, "phq9.total"), "15");
  EXPECT_EQ(Fact(request, "previous.phq9.total"), "10");
  EXPECT_EQ(Fact(request, "baseline.phq9.total"), "20");
  EXPECT_EQ(Fact(request, "phq9.count"), "3");
  EXPECT_EQ(Fact(request, "phq9.change"), "-5");
  EXPECT_EQ(Fact(request, "phq9.pct_change"), "-0.25");
  EXPECT_EQ(Fact(request, "phq9.reliable_improvement"), "false");
  EXPECT_EQ(Fact(request, "phq9.reliable_deterioration"), "false");
  EXPECT_EQ(Fact(request, "gad7.change"), "9");
  // pct_change is absent when the baseline total is 0.
  EXPECT_THAT(Fact(request, "gad7.pct_change"),
              HasSubstr("absent gad7.pct_change"));
  EXPECT_EQ(Fact(request, "gad7.reliable_deterioration"), "true");
}

TEST_F(ScoringTest, EveryViolationIsReportedAtOnce) {
  const auto request = Request(R"({
      "currentStep": 9, "weeksAtStep": -1, "flags": ["red_flag", "nonsense"],
      "asOf": "2026-11-20T12:00:00Z",
      "assessments": [
        {"instrument": "phq9", "items": {"item1": 4, "item10": 1}, "administeredAt": "2026-11-20T09:00:00Z"},
        {"instrument": "bdi", "total": 3, "administeredAt": "2026-11-20T09:00:00Z"},
        {"instrument": "gad7", "administeredAt": "2026-11-20T09:00:00Z"},
        {"instrument": "gad7", "total": 3},
        {"instrument": "gad7", "total": 3, "administeredAt": "2026-11-21T09:00:00Z"},
        {"instrument": "cssrs", "items": {"q1": 0, "q2": 0, "q6": 0}, "administeredAt": "2026-11-19T09:00:00Z"},
        {"instrument": "cssrs", "items": {"q1": 0, "q2": 0, "q6": 0}, "administeredAt": "2026-11-19T09:00:00Z"}
      ]})");
  EXPECT_THAT(
      ViolationFields(request),
      ElementsAre("subject_id", "current_step", "weeks_at_step", "flags[1]",
                  "assessments[0].items.item1", "assessments[0].items.item10",
                  "assessments[1].instrument", "assessments[2]",
                  "assessments[3].administered_at",
                  "assessments[4].administered_at"));
  // The same-instant C-SSRS pair is reported once the rest is fixed.
  const auto twins = Request(R"({
      "subjectId": "s", "currentStep": 1, "asOf": "2026-11-20T12:00:00Z",
      "assessments": [
        {"instrument": "cssrs", "items": {"q1": 0, "q2": 0, "q6": 0}, "administeredAt": "2026-11-19T09:00:00Z"},
        {"instrument": "cssrs", "items": {"q1": 1, "q2": 0, "q6": 0}, "administeredAt": "2026-11-19T09:00:00Z"}
      ]})");
  EXPECT_THAT(ViolationFields(twins),
              ElementsAre("assessments[1].administered_at"));
  std::vector<FieldViolation> v =
      ValidateRequest(*bundle_, request, absl::UnixEpoch());
  EXPECT_EQ(v[4].description, "4 is outside 0..3 for phq9");
}

TEST_F(ScoringTest, AsOfDefaultsToTheReceivedTime) {
  auto request = Make(kPhq9Full);
  request.clear_as_of();
  const absl::Time received =
      absl::FromUnixSeconds(1795780800);  // 2026-11-27T12:00:00Z
  ExpressionResult r =
      EvaluateExpression(*bundle_, "phq9.days_since", &request, received);
  EXPECT_EQ(r.json_value, "7.125");
  // An administration after as_of is bad input.
  request.mutable_as_of()->set_seconds(1763640000);  // 2025-11-20T12:00:00Z
  EXPECT_THAT(ViolationFields(request),
              ElementsAre("assessments[0].administered_at"));
}

TEST_F(ScoringTest, NoAssessmentsIsValid) {
  const auto request = Request(
      R"({"subjectId": "s", "currentStep": 1, "asOf": "2026-11-20T12:00:00Z", "flags": ["red_flag"]})");
  EXPECT_THAT(ViolationFields(request), IsEmpty());
  EXPECT_EQ(Fact(request, "has(phq9)"), "false");
  EXPECT_EQ(Fact(request, "\"red_flag\" in flags"), "true");
}

}  // namespace
}  // namespace stepwise::engine
