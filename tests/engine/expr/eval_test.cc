// CEL semantics, as a table: expression, fact values, expected result
// (FormatValue of it: "true", "3", "2.5", "<absent>", "<error: ...>").
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "engine/expr/program.h"
#include "tests/engine/expr/test_facts.h"

namespace stepwise::expr {
namespace {

using testing::FactTable;
using testing::MustCompile;

struct Row {
  const char* expr;
  const char* facts;  // "path=literal; ..." (unset facts are absent)
  const char* want;
};

void PrintTo(const Row& row, std::ostream* os) {
  *os << row.expr << " {" << row.facts << "}";
}

class EvalTableTest : public ::testing::TestWithParam<Row> {};

TEST_P(EvalTableTest, Evaluates) {
  const Row& row = GetParam();
  FactTable facts;
  facts.SetAll(row.facts);
  auto program = MustCompile(row.expr);
  ASSERT_NE(program, nullptr);
  const Value v = program->Evaluate(facts.slots());
  EXPECT_EQ(FormatValue(v), row.want);
  // Explain gives the same value.
  Explanation explanation;
  const Value explained = program->Explain(facts.slots(), &explanation);
  EXPECT_EQ(FormatValue(explained), FormatValue(v));
  EXPECT_EQ(explained.tag, v.tag);
  EXPECT_EQ(explained.aux, v.aux);
}

constexpr Row kPrecedence[] = {
    {"1 + 2 * 3", "", "7"},
    {"(1 + 2) * 3", "", "9"},
    {"10 - 4 - 3", "", "3"},
    {"100 / 10 / 5", "", "2"},
    {"7 % 4 * 2", "", "6"},
    {"2 * 3 % 4", "", "2"},
    {"2 * 3 + 4 * 5", "", "26"},
    {"-2 * 3", "", "-6"},
    {"- 2 + 3", "", "1"},
    {"1 - -1", "", "2"},
    {"--1", "", "1"},
    {"-(-1)", "", "1"},
    {"!!true", "", "true"},
    {"!true || true", "", "true"},
    {"!false == true", "", "true"},
    {"true || false && false", "", "true"},
    {"false && false || true", "", "true"},
    {"(true || false) && false", "", "false"},
    {"1 < 2 == true", "", "true"},
    {"2 > 1 != false", "", "true"},
    {"1 + 1 == 2 && 3 > 2", "", "true"},
    {"true ? 1 : 2 + 3", "", "1"},
    {"false ? 1 : 2 + 3", "", "5"},
    {"false ? 1 : true ? 2 : 3", "", "2"},
    {"false ? 1 : false ? 2 : 3", "", "3"},
    {"true ? 1 : false ? 2 : 3", "", "1"},
    {"1 < 2 ? 10 : 20", "", "10"},
    {"n > 1 ? n * 2 : n - 1", "n=5", "10"},
    {"n > 1 ? n * 2 : n - 1", "n=1", "0"},
    {"10 / 3", "", "3"},
    {"-7 / 2", "", "-3"},
    {"-7 % 3", "", "-1"},
    {"7 % -3", "", "1"},
    {"n / m", "n=-7; m=2", "-3"},
    {"n % m", "n=-7; m=3", "-1"},
    {"1 + 2 * 3 - 4 / 2 % 3", "", "5"},
    {"n - m - 1", "n=10; m=3", "6"},
    {"n / m / 2", "n=100; m=5", "10"},
};
INSTANTIATE_TEST_SUITE_P(Precedence, EvalTableTest,
                         ::testing::ValuesIn(kPrecedence));

constexpr Row kAbsentAndErrors[] = {
    // && and || decide whatever the other side is, in both orders.
    {"false && n > 0", "", "false"},
    {"n > 0 && false", "", "false"},
    {"true || n > 0", "", "true"},
    {"n > 0 || true", "", "true"},
    {"n > 0 && true", "", "<absent>"},
    {"true && n > 0", "", "<absent>"},
    {"n > 0 || false", "", "<absent>"},
    {"false || n > 0", "", "<absent>"},
    {"n > 0 && m > 0", "", "<absent>"},
    {"n > 0 && m > 0", "n=1", "<absent>"},
    {"n > 0 && m > 0", "n=0", "false"},
    {"n > 0 && m > 0", "m=0", "false"},
    {"n > 0 || m > 0", "m=1", "true"},
    {"n > 0 && m > 0 && true", "n=1; m=1", "true"},
    {"!(n > 0)", "", "<absent>"},
    {"!b", "", "<absent>"},
    {"!b", "b=false", "true"},
    {"n > 0 ? 1 : 2", "", "<absent>"},
    {"true ? 1 : n", "", "1"},
    {"false ? n : 2", "", "2"},
    {"true ? n : 2", "", "<absent>"},
    {"b ? 1 : 1 / 0", "b=true", "1"},
    {"b ? 1 / 0 : 2", "b=false", "2"},
    {"n + 1", "", "<absent>"},
    {"1 + n", "", "<absent>"},
    {"n == n", "", "<absent>"},
    {"-n", "", "<absent>"},
    {"n in [1, 2]", "", "<absent>"},
    {"1 in [n, 1]", "", "<absent>"},
    {"1 in [1, n]", "", "<absent>"},
    {"1 in [1, n]", "n=5", "true"},
    {"size([n, m])", "m=1", "<absent>"},
    {"size([n, m])", "n=1; m=1", "2"},
    {"min(n, 1)", "", "<absent>"},
    {"max(1, n)", "", "<absent>"},
    {"abs(n)", "", "<absent>"},
    {"size(s)", "", "<absent>"},
    {"s == 'a'", "", "<absent>"},
    {"'red_flag' in flags", "", "<absent>"},
    {"n in ints", "n=1", "<absent>"},
    // Errors follow the same rules.
    {"false && 1 / 0 == 1", "", "false"},
    {"1 / 0 == 1 && false", "", "false"},
    {"true || 1 / 0 == 1", "", "true"},
    {"1 / 0 == 1 || true", "", "true"},
    {"1 / 0 == 1 && true", "", "<error: division by zero>"},
    {"!(1 / 0 == 1)", "", "<error: division by zero>"},
    {"1 / 0 == 1 ? 1 : 2", "", "<error: division by zero>"},
    {"n / m > 0 && b", "n=1; m=0; b=false", "false"},
    {"n / m > 0 && b", "n=1; m=0; b=true", "<error: division by zero>"},
    // Elsewhere the left operand's reason comes first.
    {"n + 1 / m", "m=0", "<absent>"},
    {"n / m + m", "n=1; m=0", "<error: division by zero>"},
    {"n + m", "n=1 / 0", "<error: division by zero>"},
    {"n + m", "m=1 / 0", "<absent>"},
    {"min(n / m, d)", "n=1; m=0", "<error: division by zero>"},
};

// In && and ||, an absent fact is reported before an error (as CEL reports
// unknowns before errors), wherever it stands.
constexpr Row kAbsentBeforeError[] = {
    {"n / m > 0 && d > 0.0", "n=1; m=0", "<absent>"},
    {"d > 0.0 && n / m > 0", "n=1; m=0", "<absent>"},
    {"n / m > 0 || d > 0.0", "n=1; m=0", "<absent>"},
    {"n / m > 0 && n % m > 0", "n=1; m=0", "<error: division by zero>"},
    {"n % m > 0 && n / m > 0", "n=1; m=0", "<error: modulus by zero>"},
};

constexpr Row kOverflow[] = {
    {"9223372036854775807", "", "9223372036854775807"},
    {"-9223372036854775808", "", "-9223372036854775808"},
    {"0x7FFFFFFFFFFFFFFF", "", "9223372036854775807"},
    {"-0x8000000000000000", "", "-9223372036854775808"},
    {"0x1F", "", "31"},
    {"9223372036854775807 + 1", "", "<error: integer overflow>"},
    {"-9223372036854775808 - 1", "", "<error: integer overflow>"},
    {"-9223372036854775807 - 1", "", "-9223372036854775808"},
    {"9223372036854775807 * 2", "", "<error: integer overflow>"},
    {"-9223372036854775808 * -1", "", "<error: integer overflow>"},
    {"-(-9223372036854775808)", "", "<error: integer overflow>"},
    {"abs(-9223372036854775808)", "", "<error: integer overflow>"},
    {"-9223372036854775808 / -1", "", "<error: integer overflow>"},
    {"-9223372036854775808 % -1", "", "<error: integer overflow>"},
    {"-9223372036854775808 / 1", "", "-9223372036854775808"},
    {"-9223372036854775808 % 1", "", "0"},
    {"1 / 0", "", "<error: division by zero>"},
    {"1 % 0", "", "<error: modulus by zero>"},
    {"0 / 0", "", "<error: division by zero>"},
    // The same at run time, through facts.
    {"n + m", "n=9223372036854775807; m=1", "<error: integer overflow>"},
    {"n - m", "n=-9223372036854775808; m=1", "<error: integer overflow>"},
    {"n * m", "n=4611686018427387904; m=2", "<error: integer overflow>"},
    {"n * m", "n=-4611686018427387904; m=2", "-9223372036854775808"},
    {"n / m", "n=-9223372036854775808; m=-1", "<error: integer overflow>"},
    {"n % m", "n=-9223372036854775808; m=-1", "<error: integer overflow>"},
    {"n / m", "n=5; m=0", "<error: division by zero>"},
    {"n % m", "n=5; m=0", "<error: modulus by zero>"},
    {"-n", "n=-9223372036854775808", "<error: integer overflow>"},
    {"abs(n)", "n=-9223372036854775808", "<error: integer overflow>"},
    {"abs(n)", "n=-9223372036854775807", "9223372036854775807"},
    {"n + 1 > 0", "n=9223372036854775807", "<error: integer overflow>"},
    {"n > 0 || n + 1 > 0", "n=9223372036854775807", "true"},
};

constexpr Row kNumbers[] = {
    // int and double mix, the int promoted to double.
    {"1 + 1.5", "", "2.5"},
    {"1.5 + 1", "", "2.5"},
    {"3 / 2.0", "", "1.5"},
    {"3 / 2", "", "1"},
    {"1 == 1.0", "", "true"},
    {"2 > 1.5", "", "true"},
    {"n > 1.5", "n=2", "true"},
    {"n > 26.5", "n=27", "true"},
    {"n > 26.5", "n=26", "false"},
    {"n == 2.5", "n=2", "false"},
    {"n != 2.5", "n=2", "true"},
    {"1.5 < n", "n=2", "true"},
    {"d + n", "d=0.5; n=2", "2.5"},
    {"n * 1.0", "n=3", "3.0"},
    {"d > 2.5", "d=3", "true"},  // an int in a double slot is promoted
    {"d * 2.0", "d=3", "6.0"},
    {"true ? 1 : 2.5", "", "1.0"},
    {"b ? n : d", "b=true; n=2; d=0.5", "2.0"},
    {"min(1, 2.5)", "", "1.0"},
    {"max(2, 3)", "", "3"},
    {"min(3, 1, 2)", "", "1"},
    {"max(n, m, 0)", "n=-5; m=-7", "0"},
    {"max(d, n)", "d=1.5; n=2", "2.0"},
    {"abs(-2.5)", "", "2.5"},
    {"abs(-3)", "", "3"},
    {"abs(d)", "d=-0.0", "0.0"},
    {"[1, 2.5]", "", "[1.0, 2.5]"},
    {"[1, 2]", "", "[1, 2]"},
    {"9007199254740993 == 9007199254740992.0", "", "true"},
    {".5", "", "0.5"},
    {"1e3", "", "1000.0"},
    {"1.5e-3", "", "0.0015"},
    {"2.5E+2", "", "250.0"},
    {"0.1 + 0.2", "", "0.30000000000000004"},
    {"1e300 * 1e10", "", "inf"},
    {"1e-320 > 0.0", "", "true"},
    // IEEE 754 doubles.
    {"1.0 / 0.0", "", "inf"},
    {"-1.0 / 0.0", "", "-inf"},
    {"0.0 / 0.0", "", "nan"},
    {"0.0 / 0.0 == 0.0 / 0.0", "", "false"},
    {"0.0 / 0.0 != 0.0 / 0.0", "", "true"},
    {"-0.0 == 0.0", "", "true"},
    {"-0.0", "", "-0.0"},
    {"1.0 / 0.0 > 1e308", "", "true"},
    {"d < 1.0", "d=0.0 / 0.0", "false"},
    {"d <= 1.0", "d=0.0 / 0.0", "false"},
    {"d > 1.0", "d=0.0 / 0.0", "false"},
    {"d >= 1.0", "d=0.0 / 0.0", "false"},
    {"d == d", "d=0.0 / 0.0", "false"},
    {"d != 1.0", "d=0.0 / 0.0", "true"},
    {"d == 1.0", "d=0.0 / 0.0", "false"},
    {"d < e", "d=0.0 / 0.0; e=1.0", "false"},
    {"d != e", "d=0.0 / 0.0; e=1.0", "true"},
    {"d < 0.0 / 0.0", "d=1.0", "false"},
    {"d != 0.0 / 0.0", "d=1.0", "true"},
    {"d == 0.0 / 0.0", "d=1.0", "false"},
    {"n < 0.0 / 0.0", "n=1", "false"},
    {"n != 0.0 / 0.0", "n=1", "true"},
    {"d in [1.0, 0.0 / 0.0]", "d=0.0 / 0.0", "false"},
    {"min(d, 1.0)", "d=0.0 / 0.0", "nan"},
    {"min(1.0, d)", "d=0.0 / 0.0", "nan"},
    {"max(1.0, d, 2.0)", "d=0.0 / 0.0", "nan"},
    {"d < -1.0 / 0.0", "d=-1.0 / 0.0", "false"},
    {"d <= -1.0 / 0.0", "d=-1.0 / 0.0", "true"},
    {"d > 1.0 / 0.0", "d=1.0 / 0.0", "false"},
    {"d >= 1.0 / 0.0", "d=1.0 / 0.0", "true"},
    {"d > 1e308", "d=1.0 / 0.0", "true"},
    {"d < 0.0", "d=-0.0", "false"},
    {"d <= -0.0", "d=0.0", "true"},
    {"d > -0.0", "d=0.0", "false"},
    {"d == 0.0", "d=-0.0", "true"},
    {"d < 5e-324", "d=0.0", "true"},
    {"d > 0.0", "d=5e-324", "true"},
    // Fused comparisons at the ends of the int range.
    {"n < -9223372036854775808", "n=-9223372036854775808", "false"},
    {"n <= -9223372036854775808", "n=-9223372036854775808", "true"},
    {"n > 9223372036854775807", "n=9223372036854775807", "false"},
    {"n >= 9223372036854775807", "n=9223372036854775807", "true"},
    {"n != 9223372036854775807", "n=9223372036854775807", "false"},
    {"n < 0", "n=-1", "true"},
    {"n < 5", "n=5", "false"},
    {"n < 5", "n=4", "true"},
    {"n <= 5", "n=5", "true"},
    {"n <= 5", "n=6", "false"},
    {"n > 5", "n=5", "false"},
    {"n > 5", "n=6", "true"},
    {"n >= 5", "n=5", "true"},
    {"n >= 5", "n=4", "false"},
    {"n == 5", "n=4", "false"},
    {"n != 5", "n=5", "false"},
    {"n != 5", "n=4", "true"},
    {"5 > n", "n=5", "false"},
    {"5 >= n", "n=5", "true"},
    {"5 < n", "n=5", "false"},
    {"5 <= n", "n=5", "true"},
    {"d < 2.5", "d=2.5", "false"},
    {"d <= 2.5", "d=2.5", "true"},
    {"d > 2.5", "d=2.5", "false"},
    {"d >= 2.5", "d=2.5", "true"},
    {"d < 2", "d=2.0", "false"},
    {"d <= 2", "d=2.0", "true"},
    {"n < 2.0", "n=2", "false"},
    {"n <= 2.0", "n=2", "true"},
    {"n > 2.0", "n=2", "false"},
    {"n >= 2.0", "n=2", "true"},
    {"n <= 0", "n=1", "false"},
    {"n == 0", "n=0", "true"},
    {"0 < n", "n=1", "true"},
    {"0 >= n", "n=1", "false"},
    {"0 != n", "n=0", "false"},
};

constexpr Row kStringsListsHas[] = {
    {"'abc' < 'abd'", "", "true"},
    {"'b' > 'abc'", "", "true"},
    {"'a' <= 'a'", "", "true"},
    {"'' < 'a'", "", "true"},
    {"s == 'mild'", "s='mild'", "true"},
    {"s != 'mild'", "s='mild'", "false"},
    {"'mild' == s", "s='severe'", "false"},
    {"s < t", "s='a'; t='b'", "true"},
    {"s >= t", "s='a'; t='b'", "false"},
    {"size('h\xC3\xA9llo')", "", "5"},  // code points, as CEL counts
    {"size('')", "", "0"},
    {"size(s)", "s='abc'", "3"},
    {"size([1, 2, 3])", "", "3"},
    {"size(flags)", "flags=['red_flag']", "1"},
    {"size(ints)", "ints=[1, 2]", "2"},
    {"size([n, 1])", "n=4", "2"},
    {"'a\\'b'", "", "\"a'b\""},
    {"\"a\\\"b\"", "", "\"a\\\"b\""},
    {"'tab\\there'", "", "\"tab\\there\""},
    {"'line\\nbreak\\r'", "", "\"line\\nbreak\\r\""},
    {"'back\\\\slash'", "", "\"back\\\\slash\""},
    {"'red_flag' in flags", "flags=['red_flag']", "true"},
    {"'red_flag' in flags", "flags=['clinician_risk_concern']", "false"},
    {"'red_flag' in flags", "flags=['a', 'red_flag']", "true"},
    {"s in flags", "s='red_flag'; flags=['red_flag']", "true"},
    {"'x' in ['x', 'y']", "", "true"},
    {"'z' in ['x', 'y']", "", "false"},
    {"s in ['x', 'y']", "s='y'", "true"},
    {"s in [t, 'y']", "s='q'; t='q'", "true"},
    {"true in [false]", "", "false"},
    {"b in [c, false]", "b=true; c=true", "true"},
    {"n in [1, 2, 3]", "n=3", "true"},
    {"n in [1, 2, 3]", "n=4", "false"},
    {"n in ints", "n=2; ints=[1, 2]", "true"},
    {"n in doubles", "n=2; doubles=[1.0, 2.0]", "true"},
    {"d in ints", "d=2.0; ints=[1, 2]", "true"},
    {"d in ints", "d=2.5; ints=[1, 2]", "false"},
    {"1 in [1.0, 2.0]", "", "true"},
    {"1.0 in [1, 2]", "", "true"},
    {"1.5 in [1, 2]", "", "false"},
    {"n in [d, 2.5]", "n=1; d=1.0", "true"},
    {"d in [n, 3]", "n=1; d=1.0", "true"},
    {"[1, 2, 3]", "", "[1, 2, 3]"},
    {"['a', 'b']", "", "[\"a\", \"b\"]"},
    {"[true, false]", "", "[true, false]"},
    {"b ? [1] : [2, 3]", "b=false", "[2, 3]"},
    {"flags", "flags=['red_flag']", "[\"red_flag\"]"},
    {"[1, 1 / 0]", "", "<error: division by zero>"},
    // has(): presence of facts and of instruments.
    {"has(phq9)", "phq9=true", "true"},
    {"has(phq9)", "phq9=false", "false"},
    {"has(phq9)", "", "false"},
    {"has(previous.phq9)", "previous.phq9=true", "true"},
    {"has(phq9.total)", "phq9.total=13", "true"},
    {"has(phq9.total)", "", "false"},
    {"has(phq9.total)", "phq9.total=1 / 0", "true"},  // present, if broken
    {"has(n) && n > 0", "", "false"},
    {"!has(n) || n > 0", "", "true"},
    {"has(cssrs) && cssrs.q4 == 1", "", "false"},
    {"has(cssrs) && (cssrs.q4 == 1 || cssrs.q5 == 1)", "cssrs=true",
     "<absent>"},
    {"has(cssrs) && (cssrs.q4 == 1 || cssrs.q5 == 1)", "cssrs=true; cssrs.q5=1",
     "true"},
    {"!has(cssrs) || cssrs.q4 == 1", "", "true"},
    {"has(phq9) && (!has(phq9.total) || !has(phq9.item9))",
     "phq9=true; phq9.total=12", "true"},
    {"b == true", "b=true", "true"},
    {"b != c", "b=true; c=false", "true"},
    {"b == c", "b=true; c=false", "false"},
    // A slot holding another type than declared is an error, not a guess.
    {"n + 1", "n='x'", "<error: fact value of the wrong type>"},
    {"n > 1", "n=2.5", "<error: fact value of the wrong type>"},
    {"s == 'x'", "s=1", "<error: fact value of the wrong type>"},
    {"'x' in flags", "flags='x'", "<error: fact value of the wrong type>"},
};

INSTANTIATE_TEST_SUITE_P(AbsentAndErrors, EvalTableTest,
                         ::testing::ValuesIn(kAbsentAndErrors));
INSTANTIATE_TEST_SUITE_P(AbsentBeforeError, EvalTableTest,
                         ::testing::ValuesIn(kAbsentBeforeError));
INSTANTIATE_TEST_SUITE_P(Overflow, EvalTableTest,
                         ::testing::ValuesIn(kOverflow));
INSTANTIATE_TEST_SUITE_P(Numbers, EvalTableTest, ::testing::ValuesIn(kNumbers));
INSTANTIATE_TEST_SUITE_P(StringsListsHas, EvalTableTest,
                         ::testing::ValuesIn(kStringsListsHas));

// The absent value names the fact that was missing, so the engine can list
// it.
TEST(EvalTest, AbsentNamesTheSlot) {
  FactTable facts;
  facts.Set("n", "1");
  auto program = MustCompile("n + m > 0");
  const Value v = program->Evaluate(facts.slots());
  EXPECT_EQ(v.tag, Tag::kAbsent);
  EXPECT_EQ(v.aux, facts.SlotOf("m"));

  auto fused = MustCompile("phq9.total >= 10");
  EXPECT_EQ(fused->Evaluate(facts.slots()).aux, facts.SlotOf("phq9.total"));

  auto chain = MustCompile("n > 0 && d > 0.0 && m > 0");
  EXPECT_EQ(chain->Evaluate(facts.slots()).aux, facts.SlotOf("d"));
}

TEST(EvalTest, Types) {
  EXPECT_EQ(MustCompile("1 + 1")->type(), Type::Int());
  EXPECT_EQ(MustCompile("1 + 1.0")->type(), Type::Double());
  EXPECT_EQ(MustCompile("n > 1")->type(), Type::Bool());
  EXPECT_EQ(MustCompile("s")->type(), Type::String());
  EXPECT_EQ(MustCompile("[1, 2.0]")->type(), Type::List(Kind::kDouble));
  EXPECT_EQ(MustCompile("flags")->type(), Type::List(Kind::kString));
  EXPECT_EQ(MustCompile("size(s)")->type(), Type::Int());
  EXPECT_EQ(MustCompile("min(1, 2)")->type(), Type::Int());
  EXPECT_EQ(MustCompile("max(1, 2.0)")->type(), Type::Double());
  EXPECT_EQ(MustCompile("abs(d)")->type(), Type::Double());
  EXPECT_EQ(Type::List(Kind::kInt).ToString(), "list(int)");
}

TEST(EvalTest, ExpectedDoublePromotesAnInt) {
  CompileOptions options;
  options.expected = Type::Double();
  auto result = Compile("2 + n", testing::TestDeclarations(), options);
  ASSERT_TRUE(result.ok());
  ASSERT_NE(result->program, nullptr);
  EXPECT_EQ(result->program->type(), Type::Double());
  FactTable facts;
  facts.Set("n", "1");
  EXPECT_EQ(FormatValue(result->program->Evaluate(facts.slots())), "3.0");
}

TEST(EvalTest, SlotsRead) {
  auto program = MustCompile(
      "has(phq9) && phq9.total >= 10 && weeks_at_step > 2.0 || "
      "'red_flag' in flags || phq9.total > 20");
  const Declarations& d = testing::TestDeclarations();
  std::vector<uint32_t> want = {
      *d.FindGroup("phq9"), d.FindFact("phq9.total")->slot,
      d.FindFact("weeks_at_step")->slot, d.FindFact("flags")->slot};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(program->slots_read(), want);
  EXPECT_EQ(program->source(),
            "has(phq9) && phq9.total >= 10 && weeks_at_step > 2.0 || "
            "'red_flag' in flags || phq9.total > 20");
}

TEST(EvalTest, FormatValue) {
  EXPECT_EQ(FormatValue(Value::Int(3)), "3");
  EXPECT_EQ(FormatValue(Value::Int(-3)), "-3");
  EXPECT_EQ(FormatValue(Value::Double(8)), "8.0");
  EXPECT_EQ(FormatValue(Value::Double(-0.25)), "-0.25");
  EXPECT_EQ(FormatValue(Value::Double(0.1)), "0.1");
  EXPECT_EQ(FormatValue(Value::Double(1e21)), "1e+21");
  EXPECT_EQ(FormatValue(Value::Double(123456789012.0)), "123456789012.0");
  EXPECT_EQ(FormatValue(Value::Double(1.5e-7)), "1.5e-07");
  EXPECT_EQ(FormatValue(Value::Double(std::numeric_limits<double>::infinity())),
            "inf");
  EXPECT_EQ(FormatValue(Value::Double(std::nan(""))), "nan");
  EXPECT_EQ(FormatValue(Value::Bool(true)), "true");
  const std::string s = "say \"hi\"\n\x01";
  EXPECT_EQ(FormatValue(Value::String(&s)), "\"say \\\"hi\\\"\\n\\x01\"");
  const Value elems[] = {Value::Int(1), Value::Int(2)};
  EXPECT_EQ(FormatValue(Value::List(elems, 2)), "[1, 2]");
  EXPECT_EQ(FormatValue(Value::Absent(3)), "<absent>");
  EXPECT_EQ(FormatValue(Value::Error(ErrorCode::kIntegerOverflow)),
            "<error: integer overflow>");
  // The shortest text that reads back as the same double.
  for (double d : {0.1, 1.0 / 3, 2.5e-300, 1.7976931348623157e308, 5e-324}) {
    const std::string text = FormatValue(Value::Double(d));
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), d) << text;
  }
}

TEST(EvalTest, ProgramsAreReusableAcrossTables) {
  auto program = MustCompile("phq9.total >= 10 && weeks_at_step >= 6.0");
  FactTable a;
  a.SetAll("phq9.total=13; weeks_at_step=9.0");
  FactTable b;
  b.SetAll("phq9.total=3; weeks_at_step=9.0");
  EXPECT_TRUE(program->Evaluate(a.slots()).is_true());
  EXPECT_TRUE(program->Evaluate(b.slots()).is_false());
  EXPECT_TRUE(program->Evaluate(a.slots()).is_true());
}

}  // namespace
}  // namespace stepwise::expr
