// Never-true detection: what it rejects (at the comparison, and at the whole
// condition) and, as importantly, what it must let through.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/engine/expr/test_facts.h"

namespace stepwise::expr {
namespace {

using testing::ConditionIssues;
using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class NeverTrueTest : public ::testing::TestWithParam<const char*> {};
class PossiblyTrueTest : public ::testing::TestWithParam<const char*> {};

TEST_P(NeverTrueTest, IsRejected) {
  const std::vector<std::string> issues = ConditionIssues(GetParam());
  EXPECT_THAT(issues, Not(IsEmpty()));
  EXPECT_THAT(issues, Each(HasSubstr("can never be true")));
}

TEST_P(PossiblyTrueTest, IsAccepted) {
  EXPECT_THAT(ConditionIssues(GetParam()), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Ranges, NeverTrueTest,
    ::testing::Values(
        "phq9.total > 27", "phq9.total >= 28", "phq9.total < 0",
        "phq9.total <= -1", "phq9.total == 28", "phq9.total == -1",
        "phq9.item9 > 3", "cssrs.q6 == 3", "current_step > 4.5",
        "current_step == 2.5", "current_step in [0, 5, 6]",
        "phq9.total + 1 > 28", "phq9.total * 2 > 54", "2 * phq9.total > 54",
        "phq9.total - gad7.total > 27", "-phq9.total > 0",
        "abs(phq9.change) > 27", "max(phq9.total, gad7.total) > 27",
        "min(phq9.total, gad7.total) > 21",
        "(b ? phq9.total : gad7.total) > 27", "(true ? phq9.total : 100) > 27",
        "(false ? 100 : gad7.total) > 21", "phq9.total + gad7.total > 48",
        "size(s) < 0", "weeks_at_step < 0.0", "phq9.pct_change < -1.0",
        "phq9.total > 9007199254740993",
        // A fact with a declared bound is a number, never NaN.
        "!(weeks_at_step >= 0.0) && b",
        // Closed sets of strings.
        "phq9.severity == 'Severe'", "'moderately severe' == gad7.severity",
        "phq9.severity in ['Severe', 'extreme']", "'red-flag' in flags",
        "(b ? phq9.severity : 'x') == 'y'",
        // Whole conditions.
        "false", "!true", "b && false", "phq9.total > 27 && b",
        "phq9.total > 27 || gad7.total > 21", "!(phq9.total >= 0)",
        "(phq9.total > 30) == true", "b ? phq9.total > 27 : false",
        // Leaves are reported wherever they stand, even when the whole
        // condition could be true: the comparison itself is a mistake.
        "!(phq9.total > 27)", "phq9.total > 27 || b", "1 > 2 || b"));

INSTANTIATE_TEST_SUITE_P(
    Ranges, PossiblyTrueTest,
    ::testing::Values(
        "phq9.total > 26", "phq9.total > 26.5", "phq9.total >= 27",
        "phq9.total <= 0", "phq9.total == 27", "phq9.total != 27",
        "phq9.total == 27.0", "phq9.total < 0.5", "phq9.total != 2.5",
        "phq9.total + gad7.total >= 48", "phq9.total * 2 >= 54",
        "phq9.total - gad7.total <= -21", "phq9.total / 2 > 13",
        "phq9.total % 5 == 4", "phq9.total * phq9.total > 700",
        "abs(phq9.change) >= 27", "-phq9.total <= -27",
        "min(phq9.total, gad7.total) >= 21", "max(phq9.total, 30) > 29",
        "n > 1000000", "d > 1e308", "d != d", "d < d + 1.0",
        // Interval analysis does not relate a fact to itself: sound, if
        // not complete.
        "weeks_at_step != weeks_at_step", "weeks_at_step > 1e308",
        "weeks_at_step * 0.0 != 0.0", "d * 0.0 == 0.0",
        "phq9.pct_change > 1000.0", "phq9.pct_change == -1.0",
        "current_step in [4, 5]", "current_step in [1.0, 7.5]", "size(s) >= 0",
        "size(flags) == 0", "phq9.severity == 'severe'",
        "phq9.severity != 'severe'", "'red_flag' in flags", "s == 'anything'",
        "s in ['x']", "phq9.severity in ['severe', 'x']",
        "phq9.severity == gad7.severity",
        "b ? phq9.total > 20 : gad7.total > 20",
        "has(phq9) && phq9.total >= 20", "!(phq9.total > 26)",
        "(phq9.total > 20) == b", "(phq9.total > 20) != true",
        "9223372036854775807 + n > 0", "n * 2 > 9223372036854775806",
        "cssrs.days_since <= phq9.days_since + 1.0",
        "phq9.total >= 10 && weeks_at_step >= 6.0 && phq9.pct_change > -0.25"));

TEST(NeverTrueTest, OnlyWhenAsked) {
  CompileOptions options;
  options.expected = Type::Bool();
  auto result =
      Compile("phq9.total > 27", testing::TestDeclarations(), options);
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result->issues, IsEmpty());
  ASSERT_NE(result->program, nullptr);
}

}  // namespace
}  // namespace stepwise::expr
