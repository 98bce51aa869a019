// Golden diagnostics: testdata/diagnostics.txt holds broken expressions
// beside the exact issues (line:column: message) they must produce. Inputs
// that a text file cannot hold well (control bytes, invalid UTF-8, huge
// inputs) are tables here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/expr/program.h"
#include "tests/engine/expr/test_facts.h"

namespace stepwise::expr {
namespace {

using testing::ConditionIssues;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::TestDeclarations;

struct GoldenCase {
  int line = 0;  // in the golden file
  std::string text;
  std::vector<std::string> want;
};

std::vector<GoldenCase> ReadGolden(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::vector<GoldenCase> cases;
  GoldenCase current;
  std::vector<std::string> text_lines;
  bool open = false;
  const auto flush = [&] {
    if (open) {
      current.text = absl::StrJoin(text_lines, "\n");
      cases.push_back(current);
    }
    current = GoldenCase();
    text_lines.clear();
    open = false;
  };
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) {
      flush();
      continue;
    }
    if (line[0] == '#') continue;
    if (!open) {
      open = true;
      current.line = number;
    }
    if (absl::StartsWith(line, "=> ")) {
      current.want.push_back(line.substr(3));
    } else if (line == "=>") {
      current.want.push_back("");
    } else {
      EXPECT_TRUE(current.want.empty())
          << path << ":" << number << ": expression text after '=>'";
      text_lines.push_back(line);
    }
  }
  flush();
  return cases;
}

TEST(DiagnosticsTest, Golden) {
  const std::string path =
      absl::StrCat(STEPWISE_EXPR_TESTDATA, "/diagnostics.txt");
  const std::vector<GoldenCase> cases = ReadGolden(path);
  EXPECT_GT(cases.size(), 100u);
  for (const GoldenCase& c : cases) {
    EXPECT_EQ(ConditionIssues(c.text), c.want)
        << path << ":" << c.line << ": " << c.text;
  }
}

TEST(DiagnosticsTest, ControlBytesAndInvalidUtf8) {
  EXPECT_THAT(ConditionIssues(std::string("n > 1\0", 6)),
              ElementsAre("1:6: unexpected character U+0000"));
  EXPECT_THAT(ConditionIssues("n > \x01"),
              ElementsAre("1:5: unexpected character U+0001"));
  EXPECT_THAT(ConditionIssues("s == '\xFF'"),
              ElementsAre("1:7: invalid UTF-8 (byte 0xFF)"));
  EXPECT_THAT(ConditionIssues("s == '\xC0\xAF'"),  // overlong '/'
              ElementsAre("1:7: invalid UTF-8 (byte 0xC0)"));
  EXPECT_THAT(ConditionIssues("s == '\xED\xA0\x80'"),  // a surrogate
              ElementsAre("1:7: invalid UTF-8 (byte 0xED)"));
  EXPECT_THAT(ConditionIssues("b\n&& \xF4\x90\x80\x80"),  // above U+10FFFF
              ElementsAre("2:4: invalid UTF-8 (byte 0xF4)"));
  // Valid UTF-8 inside strings is fine.
  EXPECT_THAT(ConditionIssues("s == 'caf\xC3\xA9 \xF0\x9F\x98\x80'"),
              IsEmpty());
}

TEST(DiagnosticsTest, LengthLimit) {
  Limits limits;
  limits.max_length = 20;
  CompileOptions options;
  options.limits = limits;
  auto result = Compile("phq9.total >= 10 && gad7.total >= 10",
                        TestDeclarations(), options);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->issues.size(), 1u);
  EXPECT_EQ(testing::FormatIssue(result->issues[0]),
            "1:1: the expression is 36 bytes long; the limit is 20");
  // The default allows 4096 bytes.
  std::string long_text = "n > 0";
  while (long_text.size() < 4090) long_text += " || n > 0";
  EXPECT_THAT(ConditionIssues(long_text), IsEmpty());
  EXPECT_THAT(ConditionIssues(long_text + " || n > 0"),
              ElementsAre("1:1: the expression is 4100 bytes long; the "
                          "limit is 4096"));
}

TEST(DiagnosticsTest, DepthLimit) {
  // 64 levels are allowed by default: here 63 operators around a fact.
  const std::string ok = std::string(63, '!') + "b";
  EXPECT_THAT(ConditionIssues(ok), IsEmpty());
  EXPECT_THAT(ConditionIssues("!" + ok),
              ElementsAre("1:64: the expression nests too deeply (more than "
                          "64 levels)"));
  // Parentheses count as levels, and so do left-nested operator chains.
  EXPECT_THAT(
      ConditionIssues(std::string(63, '(') + "b" + std::string(63, ')')),
      IsEmpty());
  EXPECT_THAT(
      ConditionIssues(std::string(64, '(') + "b" + std::string(64, ')')),
      ElementsAre("1:65: the expression nests too deeply (more than 64 "
                  "levels)"));
  std::string chain = "n";
  for (int i = 0; i < 70; ++i) chain += " + 1";
  EXPECT_THAT(ConditionIssues(chain + " > 0"),
              ElementsAre("1:255: the expression nests too deeply (more "
                          "than 64 levels)"));
  // ...but long && and || chains do not: they are one level.
  std::string conjunction = "b";
  for (int i = 0; i < 300; ++i) conjunction += " && b";
  EXPECT_THAT(ConditionIssues(conjunction), IsEmpty());
}

TEST(DiagnosticsTest, DeepInputsNeverExhaustTheStack) {
  for (const char* unit : {"(", "!", "-", "[", "max(", "b ? b : "}) {
    std::string text;
    for (int i = 0; i < 100000; ++i) text += unit;
    Limits limits;
    limits.max_length = text.size() + 1;
    limits.max_depth = 1 << 30;  // clamped to kMaxDepthCap
    CompileOptions options;
    options.limits = limits;
    auto result = Compile(text, TestDeclarations(), options);
    ASSERT_TRUE(result.ok());
    ASSERT_EQ(result->issues.size(), 1u) << unit;
    EXPECT_THAT(result->issues[0].message,
                ::testing::HasSubstr("nests too deeply (more than 256"))
        << unit;
  }
}

TEST(DiagnosticsTest, ListLimit) {
  std::string list = "n in [0";
  for (int i = 1; i < 256; ++i) absl::StrAppend(&list, ", ", i);
  EXPECT_THAT(ConditionIssues(list + "]"), IsEmpty());
  EXPECT_THAT(ConditionIssues(list + ", 256]"),
              ElementsAre("1:6: a list literal has more than 256 elements"));
  Limits limits;
  limits.max_list_elements = 2;
  CompileOptions options;
  options.limits = limits;
  auto result = Compile("max(1, 2, 3)", TestDeclarations(), options);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->issues.size(), 1u);
  EXPECT_EQ(result->issues[0].message, "a call has more than 2 arguments");
}

TEST(DiagnosticsTest, ExpectedTypes) {
  CompileOptions options;
  options.expected = Type::String();
  auto result = Compile("1 + 2", TestDeclarations(), options);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->issues.size(), 1u);
  EXPECT_EQ(testing::FormatIssue(result->issues[0]),
            "1:1: the expression must be string, not int");
  EXPECT_EQ(result->program, nullptr);
}

}  // namespace
}  // namespace stepwise::expr
