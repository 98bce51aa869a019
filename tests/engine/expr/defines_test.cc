// The define block: named expressions compiled in order, usable by later
// defines and by conditions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/expr/program.h"
#include "tests/engine/expr/test_facts.h"

namespace stepwise::expr {
namespace {

using testing::ConditionIssues;
using ::testing::ElementsAre;
using testing::FactTable;
using testing::FormatIssue;
using ::testing::IsEmpty;
using testing::MustCompile;
using testing::TestDeclarations;

std::vector<std::string> AddIssues(Defines& defines, const std::string& name,
                                   const std::string& text,
                                   Limits limits = Limits()) {
  std::vector<Issue> issues;
  const bool ok = defines.Add(name, text, TestDeclarations(), limits, &issues);
  std::vector<std::string> out;
  for (const Issue& issue : issues) out.push_back(FormatIssue(issue));
  EXPECT_EQ(ok, out.empty()) << name;
  return out;
}

TEST(DefinesTest, LaterDefinesAndConditionsUseEarlierOnes) {
  Defines defines;
  EXPECT_THAT(AddIssues(defines, "score", "phq9.total + gad7.total"),
              IsEmpty());
  EXPECT_THAT(AddIssues(defines, "high", "score >= 20"), IsEmpty());
  EXPECT_TRUE(defines.Contains("score"));
  EXPECT_THAT(
      defines.Texts(),
      ElementsAre(
          std::make_pair(std::string("score"),
                         std::string("phq9.total + gad7.total")),
          std::make_pair(std::string("high"), std::string("score >= 20"))));
  EXPECT_TRUE(defines.Contains("high"));
  EXPECT_FALSE(defines.Contains("low"));
  auto program = MustCompile("high && score < 40", &defines);
  FactTable facts;
  facts.SetAll("phq9.total=13; gad7.total=9");
  EXPECT_TRUE(program->Evaluate(facts.slots()).is_true());
  facts.Set("gad7.total", "2");
  EXPECT_TRUE(program->Evaluate(facts.slots()).is_false());
  // A define may not name a later one: there are no cycles.
  EXPECT_THAT(AddIssues(defines, "early", "late > 1"),
              ElementsAre("1:1: unknown identifier 'late'"));
}

TEST(DefinesTest, TypesOfDefines) {
  Defines defines;
  EXPECT_THAT(AddIssues(defines, "label", "phq9.severity"), IsEmpty());
  EXPECT_THAT(AddIssues(defines, "risk_flags",
                        "['red_flag', 'clinician_risk_concern']"),
              IsEmpty());
  EXPECT_THAT(AddIssues(defines, "scores", "[phq9.total, gad7.total]"),
              IsEmpty());
  EXPECT_THAT(ConditionIssues("label == 'severe' && 'red_flag' in risk_flags",
                              &defines),
              IsEmpty());
  EXPECT_THAT(ConditionIssues("20 in scores || size(scores) > 1", &defines),
              IsEmpty());
  EXPECT_THAT(ConditionIssues("scores == [1, 2]", &defines),
              ElementsAre("1:1: the define 'scores' is a list holding facts: "
                          "it can only follow 'in' or be the argument of "
                          "size()"));
  EXPECT_THAT(ConditionIssues("risk_flags == ['red_flag']", &defines),
              ElementsAre("1:12: lists cannot be compared with '=='"));
  EXPECT_THAT(ConditionIssues("label > 2", &defines),
              ElementsAre("1:7: cannot compare string with int"));
  EXPECT_THAT(ConditionIssues("has(label)", &defines),
              ElementsAre("1:5: has() takes a fact path or an instrument, not "
                          "the define 'label'"));
  auto program = MustCompile("21 in scores", &defines);
  ASSERT_NE(program, nullptr);
  FactTable facts;
  facts.SetAll("phq9.total=21; gad7.total=3");
  EXPECT_TRUE(program->Evaluate(facts.slots()).is_true());
}

TEST(DefinesTest, Names) {
  Defines defines;
  EXPECT_THAT(AddIssues(defines, "non-response", "true"),
              ElementsAre("1:1: 'non-response' is not a valid define name "
                          "(letters, digits and '_', not starting with a "
                          "digit)"));
  EXPECT_THAT(AddIssues(defines, "1st", "true"),
              ElementsAre("1:1: '1st' is not a valid define name (letters, "
                          "digits and '_', not starting with a digit)"));
  EXPECT_THAT(AddIssues(defines, "", "true"),
              ElementsAre("1:1: '' is not a valid define name (letters, "
                          "digits and '_', not starting with a digit)"));
  EXPECT_THAT(AddIssues(defines, "in", "true"),
              ElementsAre("1:1: 'in' is a reserved word, not a name"));
  EXPECT_THAT(AddIssues(defines, "true", "true"),
              ElementsAre("1:1: 'true' is a reserved word, not a name"));
  EXPECT_THAT(AddIssues(defines, "flags", "true"),
              ElementsAre("1:1: the define 'flags' would hide the fact "
                          "'flags'"));
  EXPECT_THAT(AddIssues(defines, "phq9", "true"),
              ElementsAre("1:1: the define 'phq9' would hide the instrument "
                          "'phq9'"));
  EXPECT_THAT(AddIssues(defines, "ok", "true"), IsEmpty());
  EXPECT_THAT(AddIssues(defines, "ok", "false"),
              ElementsAre("1:1: 'ok' is defined twice"));
  // A name that is a prefix of fact paths is fine: paths win.
  EXPECT_THAT(AddIssues(defines, "previous", "1"), IsEmpty());
  EXPECT_THAT(ConditionIssues("previous.phq9.total > previous", &defines),
              IsEmpty());
}

TEST(DefinesTest, MistakesInADefinePointIntoItsText) {
  Defines defines;
  EXPECT_THAT(AddIssues(defines, "bad", "has(phq9) &&\n  phq9.totl > 2"),
              ElementsAre("2:3: unknown identifier 'phq9.totl' (did you mean "
                          "'phq9.total'?)"));
  EXPECT_FALSE(defines.Contains("bad"));
  EXPECT_THAT(ConditionIssues("bad", &defines),
              ElementsAre("1:1: unknown identifier 'bad'"));
  EXPECT_THAT(AddIssues(defines, "badly", "phq9.total >"),
              ElementsAre("1:13: the expression ends where a value is "
                          "expected"));
}

TEST(DefinesTest, SuggestsDefines) {
  Defines defines;
  EXPECT_THAT(AddIssues(defines, "non_response", "weeks_at_step > 8.0"),
              IsEmpty());
  EXPECT_THAT(ConditionIssues("non_respnse", &defines),
              ElementsAre("1:1: unknown identifier 'non_respnse' (did you "
                          "mean 'non_response'?)"));
}

TEST(DefinesTest, NeverTrueThroughDefines) {
  Defines defines;
  EXPECT_THAT(AddIssues(defines, "impossible", "phq9.total > 27"), IsEmpty());
  EXPECT_THAT(AddIssues(defines, "cutoff", "27"), IsEmpty());
  EXPECT_THAT(ConditionIssues("impossible && b", &defines),
              ElementsAre("1:1: this condition can never be true given the "
                          "declared ranges of its facts"));
  EXPECT_THAT(ConditionIssues("phq9.total > cutoff", &defines),
              ElementsAre("1:12: can never be true: phq9.total is at most "
                          "27 and cutoff is always 27"));
  EXPECT_THAT(ConditionIssues("impossible || b", &defines), IsEmpty());
  EXPECT_THAT(ConditionIssues("phq9.total >= cutoff", &defines), IsEmpty());
}

TEST(DefinesTest, ExpansionLimits) {
  // Each define doubles the one before: the expansion is exponential, and
  // bounded by Limits::max_nodes (16384): d12 expands to 16383 nodes.
  Defines defines;
  EXPECT_THAT(AddIssues(defines, "d0", "n > 0"), IsEmpty());
  for (int i = 1; i <= 12; ++i) {
    EXPECT_THAT(AddIssues(defines, absl::StrCat("d", i),
                          absl::StrCat("d", i - 1, " || d", i - 1)),
                IsEmpty());
  }
  EXPECT_THAT(AddIssues(defines, "d13", "d12 || d12"),
              ElementsAre("1:1: the expression is too large once its "
                          "defines are expanded (32767 nodes; the limit "
                          "is 16384)"));
  EXPECT_THAT(ConditionIssues("d12", &defines), IsEmpty());
  EXPECT_THAT(ConditionIssues("d12 && b", &defines),
              ElementsAre("1:1: the expression is too large once its "
                          "defines are expanded (16385 nodes; the limit "
                          "is 16384)"));
  // Depth adds up across defines too.
  Defines deep;
  std::string text = "n";
  for (int i = 0; i < 30; ++i) text = absl::StrCat("-(", text, ")");
  EXPECT_THAT(AddIssues(deep, "deep", text), IsEmpty());
  EXPECT_THAT(AddIssues(deep, "deeper", absl::StrCat("-(-(deep))")),
              ElementsAre("1:1: the expression nests too deeply once its "
                          "defines are expanded (65 levels; the limit is 64)"));
}

}  // namespace
}  // namespace stepwise::expr
