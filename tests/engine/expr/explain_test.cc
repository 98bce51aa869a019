// Explanations: the condition re-rendered with the values it saw, the absent
// facts an undecided result lacked and the errors it met.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "engine/expr/program.h"
#include "tests/engine/expr/test_facts.h"

namespace stepwise::expr {
namespace {

using ::testing::ElementsAre;
using testing::FactTable;
using ::testing::IsEmpty;
using testing::MustCompile;
using testing::TestDeclarations;

struct Explained {
  std::string value;
  Explanation explanation;
};

Explained Explain(const std::string& text, const FactTable& facts,
                  const Defines* defines = nullptr) {
  Explained out;
  auto program = MustCompile(text, defines);
  if (program == nullptr) return out;
  const Value v = program->Explain(facts.slots(), &out.explanation);
  out.value = FormatValue(v);
  EXPECT_EQ(out.value, FormatValue(program->Evaluate(facts.slots())));
  return out;
}

std::string Text(const std::string& text, const char* facts) {
  FactTable table;
  table.SetAll(facts);
  return Explain(text, table).explanation.text;
}

TEST(ExplainTest, ShowsTheValuesSeen) {
  EXPECT_EQ(Text("phq9.item9 >= 1", "phq9.item9=2"), "phq9.item9 = 2 >= 1");
  EXPECT_EQ(Text("weeks_at_step >= 8 && phq9.total >= 10 && "
                 "phq9.pct_change > -0.5",
                 "weeks_at_step=9.0; phq9.total=13; phq9.pct_change=-0.2"),
            "weeks_at_step = 9.0 >= 8.0 && phq9.total = 13 >= 10 && "
            "phq9.pct_change = -0.2 > -0.5");
  EXPECT_EQ(Text("phq9.total >= 10", ""), "phq9.total = <absent> >= 10");
  EXPECT_EQ(Text("10 <= phq9.total", "phq9.total=13"), "10 <= phq9.total = 13");
  EXPECT_EQ(Text("phq9.total > 26.5", "phq9.total=13"),
            "phq9.total = 13 > 26.5");
  EXPECT_EQ(Text("phq9.severity == 'severe'", "phq9.severity='mild'"),
            "phq9.severity = \"mild\" == \"severe\"");
  EXPECT_EQ(Text("d < 1.0", "d=0.0 / 0.0"), "d = nan < 1.0");
  // Constant subexpressions are shown by their value.
  EXPECT_EQ(Text("n > 2 * 5", "n=13"), "n = 13 > 10");
}

TEST(ExplainTest, SkipsWhatDidNotMatter) {
  EXPECT_EQ(Text("has(cssrs) && (cssrs.q4 == 1 || cssrs.q5 == 1)", ""),
            "has(cssrs) = false && (...)");
  EXPECT_EQ(Text("b && n > 0 && m > 0", "b=false"),
            "b = false && (...) && (...)");
  EXPECT_EQ(Text("b || n > 0", "b=true"), "b = true || (...)");
  // Operands before the deciding one are shown: they were evaluated.
  EXPECT_EQ(Text("n > 0 && b", "b=false"), "n = <absent> > 0 && b = false");
  EXPECT_EQ(Text("b ? n : m", "b=true; n=1"), "b = true ? n = 1 : (...)");
  EXPECT_EQ(Text("b ? n : m", "b=false; m=2"), "b = false ? (...) : m = 2");
  EXPECT_EQ(Text("b ? n : m", ""), "b = <absent> ? (...) : (...)");
}

TEST(ExplainTest, Operators) {
  EXPECT_EQ(
      Text("phq9.total + gad7.total >= 20", "phq9.total=13; gad7.total=9"),
      "(phq9.total = 13) + (gad7.total = 9) >= 20");
  EXPECT_EQ(Text("(n + m) * 2 > n - (m - 1)", "n=1; m=2"),
            "((n = 1) + (m = 2)) * 2 > (n = 1) - ((m = 2) - 1)");
  EXPECT_EQ(Text("cssrs.days_since <= phq9.days_since + 1.0",
                 "cssrs.days_since=3.0; phq9.days_since=2.0"),
            "cssrs.days_since = 3.0 <= (phq9.days_since = 2.0) + 1.0");
  EXPECT_EQ(Text("!has(cssrs)", ""), "!(has(cssrs) = false)");
  EXPECT_EQ(Text("!(b && c)", "b=true; c=true"), "!(b = true && c = true)");
  EXPECT_EQ(Text("(b || c) && n > 0", "b=true; n=1"),
            "(b = true || (...)) && n = 1 > 0");
  EXPECT_EQ(Text("-n < -(-1)", "n=3"), "-(n = 3) < 1");
  EXPECT_EQ(Text("'red_flag' in flags", "flags=['red_flag']"),
            "\"red_flag\" in flags = [\"red_flag\"]");
  EXPECT_EQ(Text("n in [m, 3]", "n=3; m=1"), "n = 3 in [m = 1, 3]");
  EXPECT_EQ(Text("n in [1, 2.5]", "n=3"), "n = 3 in [1.0, 2.5]");
  EXPECT_EQ(
      Text("max(phq9.total, gad7.total) >= 10", "phq9.total=13; gad7.total=9"),
      "max(phq9.total = 13, gad7.total = 9) = 13 >= 10");
  EXPECT_EQ(Text("size(flags) > 0", "flags=['red_flag']"),
            "size(flags = [\"red_flag\"]) = 1 > 0");
  EXPECT_EQ(Text("size([n, m]) == 2", "n=1"),
            "size([n = 1, m = <absent>]) = <absent> == 2");
  EXPECT_EQ(Text("abs(n) > 1", "n=-3"), "abs(n = -3) = 3 > 1");
  EXPECT_EQ(Text("s < t", "s='a'; t='b'"), "s = \"a\" < t = \"b\"");
  EXPECT_EQ(Text("b == c", "b=true; c=true"), "b = true == c = true");
}

TEST(ExplainTest, MissingFactsAndErrors) {
  FactTable none;
  Explained e = Explain("n > 0 && m > 0 || n < 0", none);
  EXPECT_EQ(e.value, "<absent>");
  EXPECT_THAT(e.explanation.missing_facts, ElementsAre("m", "n"));
  EXPECT_THAT(e.explanation.errors, IsEmpty());

  FactTable zero;
  zero.SetAll("n=1; m=0");
  e = Explain("n / m > 1", zero);
  EXPECT_EQ(e.value, "<error: division by zero>");
  EXPECT_EQ(e.explanation.text, "(n = 1) / (m = 0) > 1");
  EXPECT_THAT(e.explanation.missing_facts, IsEmpty());
  EXPECT_THAT(e.explanation.errors, ElementsAre("division by zero"));

  e = Explain("n / m > 0 && d > 0.0 && n % m > 0", zero);
  EXPECT_EQ(e.value, "<absent>");
  EXPECT_THAT(e.explanation.missing_facts, ElementsAre("d"));
  EXPECT_THAT(e.explanation.errors,
              ElementsAre("division by zero", "modulus by zero"));

  // A decided result depended on no absent fact.
  e = Explain("n > 5 && d > 0.0", zero);
  EXPECT_EQ(e.value, "false");
  EXPECT_THAT(e.explanation.missing_facts, IsEmpty());

  // Only the branch taken counts.
  FactTable branch;
  branch.Set("b", "true");
  e = Explain("b ? n > 0 : m > 0", branch);
  EXPECT_THAT(e.explanation.missing_facts, ElementsAre("n"));

  FactTable broken;
  broken.Set("n", "1 / 0");
  broken.Set("s", "3");
  e = Explain("n + 1 > 0 || s == 'x'", broken);
  EXPECT_EQ(e.explanation.text,
            "(n = <error: division by zero>) + 1 > 0 || s = 3 == \"x\"");
  EXPECT_THAT(e.explanation.errors,
              ElementsAre("division by zero", "fact value of the wrong type"));

  e = Explain("9223372036854775807 + n > 0", zero);
  EXPECT_THAT(e.explanation.errors, ElementsAre("integer overflow"));
  // Each fact once, sorted, wherever it was read.
  e = Explain("d > 1.0 || d < -1.0 || e > d", none);
  EXPECT_THAT(e.explanation.missing_facts, ElementsAre("d", "e"));
}

class ExplainDefinesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<Issue> issues;
    ASSERT_TRUE(defines_.Add("non_response",
                             "weeks_at_step >= 8 && phq9.pct_change > -0.5",
                             TestDeclarations(), Limits(), &issues));
    ASSERT_TRUE(
        defines_.Add("cutoff", "5 * 2", TestDeclarations(), Limits(), &issues));
    ASSERT_TRUE(defines_.Add("score", "phq9.total + gad7.total",
                             TestDeclarations(), Limits(), &issues));
    ASSERT_TRUE(defines_.Add("severe", "score >= 30", TestDeclarations(),
                             Limits(), &issues));
    ASSERT_THAT(issues, IsEmpty());
  }
  Defines defines_;
};

TEST_F(ExplainDefinesTest, ShowsNameValueAndExpansion) {
  FactTable facts;
  facts.SetAll(
      "weeks_at_step=9.0; phq9.pct_change=-0.2; phq9.total=13; gad7.total=9");
  EXPECT_EQ(Explain("non_response && phq9.total >= 10", facts, &defines_)
                .explanation.text,
            "non_response = true {weeks_at_step = 9.0 >= 8.0 && "
            "phq9.pct_change = -0.2 > -0.5} && phq9.total = 13 >= 10");
  EXPECT_EQ(Explain("phq9.total >= cutoff", facts, &defines_).explanation.text,
            "phq9.total = 13 >= cutoff = 10");
  EXPECT_EQ(Explain("severe", facts, &defines_).explanation.text,
            "severe = false {score = 22 {(phq9.total = 13) + (gad7.total = "
            "9)} >= 30}");
  FactTable missing;
  Explained e = Explain("non_response", missing, &defines_);
  EXPECT_EQ(e.value, "<absent>");
  EXPECT_THAT(e.explanation.missing_facts,
              ElementsAre("phq9.pct_change", "weeks_at_step"));
}

TEST_F(ExplainDefinesTest, ProgramsOutliveTheirDefines) {
  std::unique_ptr<Program> program;
  {
    Defines moved = std::move(defines_);
    program = MustCompile("non_response || severe", &moved);
  }
  FactTable facts;
  facts.SetAll("weeks_at_step=9.0; phq9.pct_change=-0.2");
  Explanation e;
  EXPECT_TRUE(program->Explain(facts.slots(), &e).is_true());
  EXPECT_EQ(e.text,
            "non_response = true {weeks_at_step = 9.0 >= 8.0 && "
            "phq9.pct_change = -0.2 > -0.5} || (...)");
}

}  // namespace
}  // namespace stepwise::expr
