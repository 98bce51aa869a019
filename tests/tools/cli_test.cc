// The `stepwise` binary as a user runs it: outputs and exit codes of lint,
// test, eval and expr (architecture §6: 0 ok, 1 a check failed, 2 usage).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "stepwise/v1/diff.pb.h"
#include "tests/tools/run_command.h"

namespace stepwise {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;

const std::string kStepwise = STEPWISE_BIN;
const std::string kRules = std::string(STEPWISE_SOURCE_DIR) + "/rules";
const std::string kTestBundle =
    std::string(STEPWISE_SOURCE_DIR) + "/tests/engine/testdata/base";
const std::string kTestData =
    std::string(STEPWISE_SOURCE_DIR) + "/tests/tools/testdata";

// A copy of the test bundle with `path` replaced by `content`.
std::string BundleWith(const std::string& name, const std::string& path,
                       const std::string& content) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::copy(kTestBundle, dir,
                        std::filesystem::copy_options::recursive);
  std::filesystem::create_directories((dir / path).parent_path());
  std::ofstream(dir / path) << content;
  return dir.string();
}

TEST(CliTest, LintAcceptsTheDefaultBundle) {
  const auto r = RunCommand({kStepwise, "lint", kRules});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("ok: persistent-physical-symptoms"));
}

TEST(CliTest, LintReportsFileLineColumnWithACaret) {
  const std::string dir =
      BundleWith("lint-broken", "ruleset.yaml", R"(ruleset: t
version: "1"
steps: {1: a, 2: b}
rules:
  - {id: A, title: t, when: phq9.totl >= 10, action: STAY, rationale: r, follow_up: f, source: s}
default: {action: STAY, rationale: r}
)");
  const auto r = RunCommand({kStepwise, "lint", dir});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("ruleset.yaml:5:29: unknown identifier 'phq9.totl'"));
  // The caret sits under column 29 of the quoted line (indented by two).
  EXPECT_THAT(r.output, HasSubstr("\n" + std::string(2 + 28, ' ') + "^\n"));
}

TEST(CliTest, MissingBundleIsAUsageError) {
  const auto r = RunCommand({kStepwise, "lint", kTestData + "/no-such-bundle"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(CliTest, TestRunsTheDefaultBundleWithFullCoverage) {
  const auto r = RunCommand({kStepwise, "test", kRules, "--fail-under", "100"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("0 failed; rule coverage 100.0%"));
}

// expect.facts: each named fact derived from the request, absent included;
// a wrong one is shown expected vs actual (the outcome is still checked).
TEST(CliTest, TestComparesTheFactsACaseExpects) {
  const std::string dir = BundleWith("test-facts", "tests/cases.yaml", R"(
defaults:
  request: {subjectId: s, asOf: "2026-11-20T12:00:00Z", currentStep: 2}
cases:
  - name: facts that hold
    request: {assessments: [
      {instrument: phq9, total: 16, administeredAt: "2026-10-20T12:00:00Z"},
      {instrument: phq9, total: 12, administeredAt: "2026-11-20T00:00:00Z"}]}
    expect:
      action: STAY
      step: 2
      matched: []
      facts: {phq9.total: 12, phq9.severity: moderate, phq9.caseness: true,
              phq9.pct_change: -0.25, phq9.days_since: 0.5, gad7.total: null,
              has(baseline.phq9): true}
  - name: facts that do not
    request: {assessments: [{instrument: phq9, total: 9, administeredAt: "2026-11-20T09:00:00Z"}]}
    expect:
      action: STAY
      step: 2
      matched: []
      facts: {phq9.severity: moderate, phq9.caseness: true, phq9.change: 0,
              phq9.item9: 0, phq9.days_since: 0.5}
)");
  const auto r = RunCommand({kStepwise, "test", dir});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("FAIL facts that hold")));
  EXPECT_THAT(r.output, HasSubstr("FAIL facts that do not"));
  EXPECT_THAT(
      r.output,
      HasSubstr("facts.phq9.severity: expected \"moderate\", got \"mild\""));
  EXPECT_THAT(r.output,
              HasSubstr("facts.phq9.caseness: expected true, got false"));
  EXPECT_THAT(r.output, HasSubstr("facts.phq9.change: expected 0, got absent"));
  EXPECT_THAT(r.output, HasSubstr("facts.phq9.item9: expected 0, got absent"));
  EXPECT_THAT(r.output,
              HasSubstr("facts.phq9.days_since: expected 0.5, got 0.125"));
  EXPECT_THAT(r.output, Not(HasSubstr("action: expected")));
  EXPECT_THAT(r.output, HasSubstr("1 cases passed, 1 failed"));
}

TEST(CliTest, TestShowsExpectedVersusActualAndCoverage) {
  const std::string dir = BundleWith("test-failing", "tests/cases.yaml", R"(
defaults:
  request: {subjectId: s, asOf: "2026-11-20T12:00:00Z", currentStep: 2}
cases:
  - name: wrong expectation
    request: {assessments: [{instrument: phq9, total: 21, administeredAt: "2026-11-20T09:00:00Z"}],
              weeksAtStep: 5}
    expect: {action: STAY, step: 2, matched: []}
)");
  const auto r = RunCommand({kStepwise, "test", dir});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("FAIL wrong expectation"));
  EXPECT_THAT(r.output, HasSubstr("action: expected STAY, got STEP_UP"));
  EXPECT_THAT(r.output, HasSubstr("matched: expected [], got [UP]"));
  EXPECT_THAT(r.output, HasSubstr("URGENT"));
  EXPECT_THAT(r.output, HasSubstr("NEVER FIRED"));

  // Coverage under --fail-under fails a run whose cases pass.
  const std::string passing =
      BundleWith("test-coverage", "tests/cases.yaml", R"(
defaults:
  request: {subjectId: s, asOf: "2026-11-20T12:00:00Z", currentStep: 2}
cases:
  - name: step up
    request: {assessments: [{instrument: phq9, total: 21, administeredAt: "2026-11-20T09:00:00Z"}],
              weeksAtStep: 5}
    expect: {action: STEP_UP, step: 3, matched: [UP]}
)");
  EXPECT_EQ(RunCommand({kStepwise, "test", passing}).exit_code, 0);
  const auto under =
      RunCommand({kStepwise, "test", passing, "--fail-under", "60"});
  EXPECT_EQ(under.exit_code, 1) << under.output;
  EXPECT_THAT(under.output, HasSubstr("rule coverage 50.0%"));
}

TEST(CliTest, EvalPrintsTheDecisionAsJson) {
  const auto r =
      RunCommand({kStepwise, "eval", kRules, kTestData + "/request.json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"action\": \"STEP_UP\""));
  EXPECT_THAT(r.output, HasSubstr("\"recommendedStep\": 3"));
  EXPECT_THAT(r.output, HasSubstr("\"ruleId\": \"NR-01\""));
  EXPECT_THAT(r.output, Not(HasSubstr("\"trace\"")));
  const auto explained = RunCommand(
      {kStepwise, "eval", kRules, kTestData + "/request.json", "--explain"});
  EXPECT_EQ(explained.exit_code, 0) << explained.output;
  EXPECT_THAT(explained.output, HasSubstr("\"trace\""));
  EXPECT_THAT(explained.output, HasSubstr("\"unevaluatedRules\""));
}

TEST(CliTest, EvalListsEveryViolationOfABadRequest) {
  const auto r =
      RunCommand({kStepwise, "eval", kRules, kTestData + "/bad_request.json"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("subject_id: required"));
  EXPECT_THAT(r.output, HasSubstr("current_step: 7 is outside the steps 1..4"));
  EXPECT_THAT(
      r.output,
      HasSubstr("assessments[0].items.item4: 4 is outside 0..3 for phq9"));
}

TEST(CliTest, ExprPrintsTypeAndValue) {
  auto r = RunCommand({kStepwise, "expr", "1 + 2", "--bundle", kTestBundle});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "{\"type\": \"int\", \"value\": 3}\n");
  r = RunCommand({kStepwise, "expr", "phq9.pct_change", "--bundle", kRules,
                  "--request", kTestData + "/request.json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("{\"type\": \"double\", \"value\": -0.16666"));
  r = RunCommand({kStepwise, "expr", "phq9.severity", "--request",
                  kTestData + "/request.json", "--bundle", kRules});
  EXPECT_EQ(r.output, "{\"type\": \"string\", \"value\": \"moderate\"}\n");
}

TEST(CliTest, ExprAbsentFactIsAnErrorLine) {
  const auto r = RunCommand(
      {kStepwise, "expr", "phq9.total >= 10", "--bundle", kTestBundle});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("{\"error\": \"no value: absent phq9.total\"}"));
}

TEST(CliTest, ExprParseErrorIsExitTwoWithAPosition) {
  const auto r =
      RunCommand({kStepwise, "expr", "1 +", "--bundle", kTestBundle});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("<expr>:1:"));
}

TEST(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCommand({kStepwise}).exit_code, 2);
  EXPECT_EQ(RunCommand({kStepwise, "frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunCommand({kStepwise, "eval", kRules}).exit_code, 2);
  EXPECT_EQ(RunCommand({kStepwise, "--help"}).exit_code, 0);
}

// A copy of the default bundle with `from` replaced by `to` in its ruleset.
std::string RulesWith(const std::string& name, const std::string& from,
                      const std::string& to) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::copy(kRules, dir, std::filesystem::copy_options::recursive);
  std::ifstream in(dir / "ruleset.yaml", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  in.close();
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  std::ofstream(dir / "ruleset.yaml", std::ios::binary) << text;
  return dir.string();
}

TEST(CliTest, DiffOfABundleWithItselfFindsNoDifferences) {
  const auto r = RunCommand({kStepwise, "diff", kRules, kRules});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\nNo differences.\n"));
}

TEST(CliTest, DiffReportsAThresholdAsTextAndAsJson) {
  const std::string changed =
      RulesWith("diff-threshold", "phq9.total >= 16'", "phq9.total >= 15'");
  const auto text = RunCommand({kStepwise, "diff", kRules, changed});
  // Differences are a report, not a failure.
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(text.output,
              HasSubstr("  ~ SEV-01  More severe depression at a low step\n"
                        "      threshold of phq9.total >=: 16 \u2192 15"));

  const auto json = RunCommand({kStepwise, "diff", kRules, changed, "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.output;
  v1::BundleDiff diff;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(json.output, &diff).ok())
      << json.output;
  ASSERT_EQ(diff.rules_changed_size(), 1);
  EXPECT_EQ(diff.rules_changed(0).id(), "SEV-01");
  ASSERT_EQ(diff.rules_changed(0).changes_size(), 1);
  ASSERT_EQ(diff.rules_changed(0).changes(0).thresholds_size(), 1);
  EXPECT_EQ(diff.rules_changed(0).changes(0).thresholds(0).old_value(), "16");
  EXPECT_EQ(diff.rules_changed(0).changes(0).thresholds(0).new_value(), "15");
  EXPECT_NE(diff.old_bundle().sha256(), diff.new_bundle().sha256());
}

TEST(CliTest, DiffNeedsTwoBundlesThatLint) {
  const std::string broken =
      BundleWith("diff-broken", "ruleset.yaml", R"(ruleset: t
version: "1"
steps: {1: a, 2: b}
rules:
  - {id: A, title: t, when: phq9.totl >= 10, action: STAY, rationale: r, follow_up: f, source: s}
default: {action: STAY, rationale: r}
)");
  const auto r = RunCommand({kStepwise, "diff", kRules, broken});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("ruleset.yaml:5:29: unknown identifier 'phq9.totl'"));
  EXPECT_THAT(r.output, Not(HasSubstr("Rule bundle diff")));
  EXPECT_EQ(RunCommand({kStepwise, "diff", kRules}).exit_code, 2);
  EXPECT_EQ(
      RunCommand({kStepwise, "diff", kRules, kTestData + "/no-such-bundle"})
          .exit_code,
      2);
}

}  // namespace
}  // namespace stepwise
