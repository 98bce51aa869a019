// The default bundle against a second implementation of the clinical spec.
//
// tests/spec_oracle/spec_oracle.py decides from ../clinical/default-ruleset.md
// alone: it was written from the spec's text without the engine or rules/ in
// view, in another language, with CEL's three-valued logic spelled out. Its
// outcomes for a seeded corpus of generated requests (generate.py: every
// instrument, items and totals, missing items, several administrations out of
// order, C-SSRS screens around the one-day window, flags, every step and the
// week thresholds) are stored beside the requests in
// testdata/spec_oracle/cases.jsonl. Each request must get, from Evaluate on
// rules/, the same action, recommended step, matched rules, undecided rules
// and referrals, or be bad input on both sides.
//
// A difference is either an engine or bundle bug or a reading of the spec on
// which the two disagree; tests/spec_oracle/README.md lists the readings.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/engine.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::engine {
namespace {

namespace pb = ::google::protobuf;

struct OracleCase {
  std::string name;
  v1::EvaluateRequest request;
  bool bad_input = false;
  std::string action;
  int step = 0;
  std::vector<std::string> matched;
  std::vector<std::string> undecided;
  std::vector<std::string> refer_to;
};

std::vector<std::string> Strings(const pb::Value& list) {
  std::vector<std::string> out;
  for (const pb::Value& v : list.list_value().values()) {
    out.push_back(v.string_value());
  }
  return out;
}

// One line of cases.jsonl: {"name", "request", "expect"}.
OracleCase ParseCase(const std::string& line, int line_number) {
  OracleCase c;
  pb::Struct object;
  const auto parsed = pb::util::JsonStringToMessage(line, &object);
  if (!parsed.ok()) {
    ADD_FAILURE() << "cases.jsonl:" << line_number << ": " << parsed;
    return c;
  }
  const auto& fields = object.fields();
  c.name = fields.at("name").string_value();
  std::string request_json;
  if (!pb::util::MessageToJsonString(fields.at("request").struct_value(),
                                     &request_json)
           .ok() ||
      !pb::util::JsonStringToMessage(request_json, &c.request).ok()) {
    ADD_FAILURE() << "cases.jsonl:" << line_number
                  << ": request is not an EvaluateRequest";
  }
  const auto& expect = fields.at("expect").struct_value().fields();
  if (expect.contains("bad_input")) {
    c.bad_input = expect.at("bad_input").bool_value();
    return c;
  }
  c.action = expect.at("action").string_value();
  c.step = static_cast<int>(expect.at("step").number_value());
  c.matched = Strings(expect.at("matched"));
  c.undecided = Strings(expect.at("undecided"));
  c.refer_to = Strings(expect.at("refer_to"));
  return c;
}

std::vector<OracleCase> LoadCases() {
  const std::filesystem::path path =
      std::filesystem::path(STEPWISE_SOURCE_DIR) /
      "tests/engine/testdata/spec_oracle/cases.jsonl";
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::vector<OracleCase> cases;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    cases.push_back(ParseCase(line, line_number));
  }
  return cases;
}

std::string Describe(const std::string& action, int step,
                     const std::vector<std::string>& matched,
                     const std::vector<std::string>& undecided,
                     const std::vector<std::string>& refer_to) {
  return absl::StrCat(action, " step ", step, " matched [",
                      absl::StrJoin(matched, ", "), "] undecided [",
                      absl::StrJoin(undecided, ", "), "] refer_to [",
                      absl::StrJoin(refer_to, ", "), "]");
}

TEST(SpecOracleTest, TheBundleDecidesAsTheSecondImplementationDoes) {
  absl::StatusOr<LoadResult> loaded =
      LoadBundle(std::filesystem::path(STEPWISE_SOURCE_DIR) / "rules");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->ok());
  const Bundle& bundle = *loaded->bundle;

  const std::vector<OracleCase> cases = LoadCases();
  // The corpus is large enough to matter: every action, bad input included.
  ASSERT_GE(cases.size(), 1000u);
  std::map<std::string, int> by_action;
  int differences = 0;
  for (const OracleCase& c : cases) {
    const EvaluationResult r = Evaluate(bundle, c.request, absl::UnixEpoch());
    if (c.bad_input || !r.ok()) {
      ++by_action[c.bad_input ? "bad input" : "?"];
      if (c.bad_input != !r.ok()) {
        ++differences;
        ADD_FAILURE() << c.name << ": the oracle says "
                      << (c.bad_input ? "bad input" : "a decision")
                      << ", the engine "
                      << (r.ok() ? "a decision" : "bad input");
      }
      continue;
    }
    const v1::Decision& d = r.decision;
    std::vector<std::string> matched, undecided, refer_to;
    for (const v1::MatchedRule& m : d.matched_rules()) {
      matched.push_back(m.rule_id());
    }
    for (const v1::UnevaluatedRule& u : d.unevaluated_rules()) {
      undecided.push_back(u.rule_id());
    }
    for (const std::string& t : d.refer_to()) refer_to.push_back(t);
    std::sort(matched.begin(), matched.end());
    std::sort(undecided.begin(), undecided.end());
    const std::string engine =
        Describe(v1::Action_Name(d.action()), d.recommended_step(), matched,
                 undecided, refer_to);
    const std::string oracle =
        Describe(c.action, c.step, c.matched, c.undecided, c.refer_to);
    ++by_action[c.action];
    if (engine != oracle) {
      ++differences;
      ADD_FAILURE() << c.name << "\n  engine: " << engine
                    << "\n  oracle: " << oracle;
    }
  }
  EXPECT_EQ(differences, 0) << "of " << cases.size() << " requests";
  // Every outcome the spec has is exercised.
  for (const char* action : {"URGENT_SAFETY", "REFER", "STEP_UP", "STAY",
                             "STEP_DOWN", "bad input"}) {
    EXPECT_GE(by_action[action], 10) << action;
  }
}

}  // namespace
}  // namespace stepwise::engine
