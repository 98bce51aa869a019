// The stored corpus of tests/spec_oracle/: generated requests, each with the
// outcome the second implementation of the clinical spec (spec_oracle.py)
// gives it. Read by the engine's test (tests/engine/spec_oracle_test.cc) and
// by the server's (tests/service/oracle_integration_test.cc).
//
// Outcomes are compared as one line of text, so that a failure shows both
// sides in full: "ACTION step N matched [..] undecided [..] refer_to [..]",
// rule ids sorted, each undecided rule with the facts it lacked, sorted
// ("SAFETY-02 (phq9.item9)"), then what the warnings are about, sorted:
// "capped STEP_UP" (the winning step change became STAY at an end of the
// ladder), "prorated phq9" (a total prorated over missing items),
// "no_total gad7" (too many items missing for a total); or "bad input".
#ifndef STEPWISE_TESTS_SPEC_ORACLE_CORPUS_H_
#define STEPWISE_TESTS_SPEC_ORACLE_CORPUS_H_

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::spec_oracle {

struct OracleCase {
  std::string name;
  v1::EvaluateRequest request;
  bool bad_input = false;
  // The oracle's outcome, as Describe() writes it.
  std::string expected;
};

inline std::string Describe(const std::string& action, int step,
                            std::vector<std::string> matched,
                            std::vector<std::string> undecided,
                            const std::vector<std::string>& refer_to,
                            std::vector<std::string> warned) {
  std::sort(matched.begin(), matched.end());
  std::sort(undecided.begin(), undecided.end());
  std::string out = absl::StrCat(action, " step ", step, " matched [",
                                 absl::StrJoin(matched, ", "), "] undecided [",
                                 absl::StrJoin(undecided, ", "), "] refer_to [",
                                 absl::StrJoin(refer_to, ", "), "]");
  std::sort(warned.begin(), warned.end());
  absl::StrAppend(&out, " warned [", absl::StrJoin(warned, ", "), "]");
  return out;
}

inline constexpr char kBadInput[] = "bad input";

// A Decision's outcome in the corpus's terms.
inline std::string Describe(const v1::Decision& d) {
  std::vector<std::string> matched, undecided, refer_to;
  for (const v1::MatchedRule& m : d.matched_rules()) {
    matched.push_back(m.rule_id());
  }
  for (const v1::UnevaluatedRule& u : d.unevaluated_rules()) {
    std::vector<std::string> missing(u.missing_facts().begin(),
                                     u.missing_facts().end());
    std::sort(missing.begin(), missing.end());
    undecided.push_back(
        absl::StrCat(u.rule_id(), " (", absl::StrJoin(missing, ", "), ")"));
  }
  for (const std::string& t : d.refer_to()) refer_to.push_back(t);
  // What each warning of the engine (engine/evaluate.cc, instrument.cc) is
  // about; one the corpus does not know shows in full.
  std::vector<std::string> warned;
  for (const std::string& w : d.warnings()) {
    const std::string instrument = w.substr(0, w.find(' '));
    if (absl::StartsWith(w, "STEP_UP capped: ")) {
      warned.push_back("capped STEP_UP");
    } else if (absl::StartsWith(w, "STEP_DOWN capped: ")) {
      warned.push_back("capped STEP_DOWN");
    } else if (absl::StrContains(w, "; total prorated to ")) {
      warned.push_back(absl::StrCat("prorated ", instrument));
    } else if (absl::StrContains(w, " allowed: no total")) {
      warned.push_back(absl::StrCat("no_total ", instrument));
    } else {
      warned.push_back(absl::StrCat("\"", w, "\""));
    }
  }
  return Describe(v1::Action_Name(d.action()), d.recommended_step(),
                  std::move(matched), std::move(undecided), refer_to,
                  std::move(warned));
}

namespace internal {

inline std::vector<std::string> Strings(const google::protobuf::Value& list) {
  std::vector<std::string> out;
  for (const google::protobuf::Value& v : list.list_value().values()) {
    out.push_back(v.string_value());
  }
  return out;
}

// One line: {"name", "request", "expect": {"bad_input"} or {"action",
// "step", "matched", "undecided", "missing": {rule: [fact, ...]},
// "refer_to", "warned"}} (and "why", for people).
inline absl::StatusOr<OracleCase> ParseCase(const std::string& line) {
  namespace pb = ::google::protobuf;
  pb::Struct object;
  if (auto s = pb::util::JsonStringToMessage(line, &object); !s.ok()) {
    return absl::InvalidArgumentError(std::string(s.message()));
  }
  const auto& fields = object.fields();
  if (!fields.contains("name") || !fields.contains("request") ||
      !fields.contains("expect")) {
    return absl::InvalidArgumentError("needs name, request and expect");
  }
  OracleCase c;
  c.name = fields.at("name").string_value();
  std::string request_json;
  if (!pb::util::MessageToJsonString(fields.at("request").struct_value(),
                                     &request_json)
           .ok() ||
      !pb::util::JsonStringToMessage(request_json, &c.request).ok()) {
    return absl::InvalidArgumentError("request is not an EvaluateRequest");
  }
  const auto& expect = fields.at("expect").struct_value().fields();
  if (expect.contains("bad_input") && expect.at("bad_input").bool_value()) {
    c.bad_input = true;
    c.expected = kBadInput;
    return c;
  }
  for (const char* key : {"action", "step", "matched", "undecided", "missing",
                          "refer_to", "warned"}) {
    if (!expect.contains(key)) {
      return absl::InvalidArgumentError(absl::StrCat("expect needs ", key));
    }
  }
  // Each undecided rule with the facts it lacked.
  const auto& missing = expect.at("missing").struct_value().fields();
  std::vector<std::string> undecided;
  for (const std::string& rule : Strings(expect.at("undecided"))) {
    const auto it = missing.find(rule);
    undecided.push_back(absl::StrCat(
        rule, " (",
        absl::StrJoin(it == missing.end() ? std::vector<std::string>()
                                          : Strings(it->second),
                      ", "),
        ")"));
  }
  c.expected =
      Describe(expect.at("action").string_value(),
               static_cast<int>(expect.at("step").number_value()),
               Strings(expect.at("matched")), std::move(undecided),
               Strings(expect.at("refer_to")), Strings(expect.at("warned")));
  return c;
}

}  // namespace internal

// The cases of `path` (cases.jsonl), or the first line that cannot be read.
inline absl::StatusOr<std::vector<OracleCase>> LoadCorpus(
    const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::vector<OracleCase> cases;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    absl::StatusOr<OracleCase> c = internal::ParseCase(line);
    if (!c.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path.string(), ":", line_number, ": ", c.status().message()));
    }
    cases.push_back(*std::move(c));
  }
  return cases;
}

}  // namespace stepwise::spec_oracle

#endif  // STEPWISE_TESTS_SPEC_ORACLE_CORPUS_H_
