#include "service/audit/json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stepwise::service::audit {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(JsonTest, AcceptsValidJson) {
  for (const char* text :
       {"{}", "[]", "0", "-0.5e+3", "\"a\\u00e9\\ud83d\\ude00\"", "true",
        "null", " { \"a\" : [1, 2.5, {\"b\": null}] , \"c\":\"\\n\"} ",
        "\"caf\xC3\xA9\""}) {
    EXPECT_TRUE(ValidateJson(text).ok()) << text;
  }
}

TEST(JsonTest, RejectsInvalidJson) {
  for (const char* text : {"",
                           "{",
                           "{\"a\"}",
                           "{\"a\":1,}",
                           "[1,]",
                           "01",
                           "1.",
                           "-",
                           "1e",
                           "tru",
                           "\"\\x\"",
                           "\"a",
                           "{a:1}",
                           "{} {}",
                           "\"\\ud800\"",
                           "\"\\udc00\"",
                           "\"\xC3\"",
                           "\"\xC0\xAF\"",
                           "\"\xED\xA0\x80\"",
                           "\"tab\there\"",
                           "'a'",
                           "[1 2]"}) {
    EXPECT_FALSE(ValidateJson(text).ok()) << text;
  }
}

TEST(JsonTest, RejectsDeepNesting) {
  const std::string deep =
      std::string(kMaxJsonDepth + 2, '[') + std::string(kMaxJsonDepth + 2, ']');
  EXPECT_THAT(ValidateJson(deep).message(), HasSubstr("nested too deeply"));
  const std::string ok =
      std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ValidateJson(ok).ok());
}

TEST(JsonTest, SplitsTopLevelMembers) {
  absl::StatusOr<std::vector<JsonMember>> members =
      SplitJsonObject(R"({"a":1, "b\"q" : {"x":[1,2]},"c":"s"})");
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->size(), 3u);
  EXPECT_EQ((*members)[0].name, "a");
  EXPECT_EQ((*members)[0].value, "1");
  EXPECT_EQ((*members)[1].name, "b\"q");
  EXPECT_EQ((*members)[1].value, R"({"x":[1,2]})");
  EXPECT_EQ((*members)[2].value, R"("s")");
  EXPECT_FALSE(SplitJsonObject("[1]").ok());
  EXPECT_FALSE(SplitJsonObject("{\"a\":1} x").ok());
}

TEST(JsonTest, QuoteAndUnquoteRoundTrip) {
  const std::string tricky = std::string("a\"b\\c\n\r\t\b\f\x01/\xC3\xA9") +
                             std::string(1, '\0') + "z";
  const std::string quoted = JsonQuote(tricky);
  EXPECT_TRUE(ValidateJson(quoted).ok()) << quoted;
  EXPECT_EQ(quoted.find('\n'), std::string::npos);
  absl::StatusOr<std::string> back = JsonUnquote(quoted);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, tricky);
}

TEST(JsonTest, QuoteReplacesInvalidUtf8) {
  EXPECT_EQ(JsonQuote("a\xFF"
                      "b"),
            "\"a\xEF\xBF\xBD"
            "b\"");
}

TEST(JsonTest, UnquoteDecodesEscapes) {
  EXPECT_EQ(*JsonUnquote(R"("\u00e9\ud83d\ude00\/")"),
            "\xC3\xA9\xF0\x9F\x98\x80/");
  EXPECT_FALSE(JsonUnquote("\"a\" ").ok());
}

TEST(JsonTest, PrettyIndentsWithoutChangingTokens) {
  EXPECT_EQ(JsonPretty(R"({"a":[1,{"b":"x,y:{"}],"c":{},"d":[]})"),
            "{\n"
            "  \"a\": [\n"
            "    1,\n"
            "    {\n"
            "      \"b\": \"x,y:{\"\n"
            "    }\n"
            "  ],\n"
            "  \"c\": {},\n"
            "  \"d\": []\n"
            "}\n");
}

}  // namespace
}  // namespace stepwise::service::audit
