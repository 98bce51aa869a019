// `stepwise replay` end to end: the real stepwise-server (port 0, the
// default bundle, a fresh audit folder) answers a handful of Evaluate calls
// sent with `stepwise call`, is stopped with SIGTERM, and its audit log is
// replayed against the default bundle itself and against a candidate that
// demotes one urgent rule.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "stepwise/v1/decision.pb.h"
#include "stepwise/v1/replay.pb.h"
#include "tests/service/server_process.h"

namespace stepwise {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using testing::NewTempDir;
using ::testing::Not;
using testing::RunCommand;
using testing::ServerProcess;

const std::string kStepwise = STEPWISE_BIN;
const std::string kServer = STEPWISE_SERVER_BIN;
const std::string kRules = std::string(STEPWISE_SOURCE_DIR) + "/rules";

// PHQ-9 with the given items (item9 last), at 09:00 on the day of the
// decision. `as_of` empty: left for the server to fill in.
std::string Phq9Request(const std::vector<int>& items, int step, double weeks,
                        const std::string& as_of = "2026-11-20T12:00:00Z") {
  std::string json =
      absl::StrCat(R"({"subjectId": "patient-x", "currentStep": )", step,
                   R"(, "weeksAtStep": )", weeks, R"(, "assessments": [)",
                   R"({"instrument": "phq9", "items": {)");
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StrAppend(&json, i > 0 ? ", " : "", "\"item", i + 1,
                    "\": ", items[i]);
  }
  absl::StrAppend(&json, R"(}, "administeredAt": "2026-11-20T09:00:00Z"}])");
  if (!as_of.empty()) absl::StrAppend(&json, R"(, "asOf": ")", as_of, "\"");
  return json + "}";
}

const char kCssrsHighRisk[] =
    R"({"subjectId": "patient-y", "currentStep": 2, "weeksAtStep": 3,
  "asOf": "2026-11-20T12:00:00Z", "assessments": [{"instrument": "cssrs",
  "items": {"q1": 1, "q2": 1, "q3": 1, "q4": 1, "q5": 0, "q6": 0},
  "administeredAt": "2026-11-20T09:00:00Z"}]})";

std::string ReadWhole(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One server run, shared by the tests: the audit log it leaves and the
// decisions it answered, by name.
struct ServedLog {
  std::string audit_dir;
  std::map<std::string, v1::Decision> decisions;
  std::string error;  // why the log could not be made
};

const ServedLog& Served() {
  static const ServedLog* log = [] {
    auto* out = new ServedLog();
    out->audit_dir = NewTempDir("replay-audit");
    const std::string requests = NewTempDir("replay-requests");
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start(
            kServer,
            {"--bundle", kRules, "--audit-dir", out->audit_dir, "--port", "0",
             "--metrics-port", "0", "--shutdown-grace", "30s"});
    if (!server.ok()) {
      out->error = std::string(server.status().message());
      return out;
    }
    const std::vector<std::pair<std::string, std::string>> calls = {
        {"urgent", Phq9Request({1, 1, 1, 1, 1, 1, 1, 1, 2}, 2, 3)},
        {"quiet", Phq9Request({0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 2)},
        {"cssrs", kCssrsHighRisk},
        {"moderate", Phq9Request({2, 2, 2, 1, 1, 1, 1, 1, 0}, 1, 8)},
        {"no_as_of", Phq9Request({1, 0, 1, 0, 1, 0, 1, 0, 0}, 2, 1, "")},
    };
    for (const auto& [name, json] : calls) {
      const std::string path = requests + "/" + name + ".json";
      std::ofstream(path) << json;
      CommandResult call =
          RunCommand(kStepwise, {"call", (*server)->address(), path});
      v1::Decision decision;
      if (call.exit_code != 0 ||
          !google::protobuf::util::JsonStringToMessage(call.out, &decision)
               .ok()) {
        out->error = absl::StrCat("call ", name, ": exit ", call.exit_code,
                                  "\n", call.out, call.err);
        return out;
      }
      out->decisions[name] = decision;
    }
    (*server)->Signal(SIGTERM);
    absl::StatusOr<int> status = (*server)->Wait();
    if (!status.ok() || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      out->error =
          absl::StrCat("server did not stop cleanly\n", (*server)->Stderr());
    }
    return out;
  }();
  return *log;
}

// A copy of the default bundle with SAFETY-02 (PHQ-9 item 9 without a
// recent C-SSRS) demoted from URGENT_SAFETY to STAY. It still lints; its own
// test cases would fail, which replay does not ask about.
std::string DemotedCandidate() {
  const std::filesystem::path dir =
      std::filesystem::path(NewTempDir("replay-candidate")) / "b";
  std::filesystem::copy(kRules, dir, std::filesystem::copy_options::recursive);
  std::string ruleset = ReadWhole(dir / "ruleset.yaml");
  const size_t rule = ruleset.find("- id: SAFETY-02");
  const std::string urgent = "action: URGENT_SAFETY";
  const size_t action = ruleset.find(urgent, rule);
  EXPECT_NE(rule, std::string::npos);
  EXPECT_NE(action, std::string::npos);
  EXPECT_LT(action, ruleset.find("- id: SAFETY-03"));
  ruleset.replace(action, urgent.size(), "action: STAY");
  std::ofstream(dir / "ruleset.yaml", std::ios::trunc) << ruleset;
  return dir.string();
}

class ReplayCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ServedLog& log = Served();
    ASSERT_EQ(log.error, "");
    ASSERT_EQ(log.decisions.at("urgent").action(), v1::URGENT_SAFETY);
    ASSERT_EQ(log.decisions.at("cssrs").action(), v1::URGENT_SAFETY);
    ASSERT_NE(log.decisions.at("quiet").action(), v1::URGENT_SAFETY);
  }
};

TEST_F(ReplayCliTest, TheServedBundleAgainstItsOwnLogChangesNothing) {
  const ServedLog& log = Served();
  const CommandResult r =
      RunCommand(kStepwise, {"replay", log.audit_dir, kRules});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(
      r.out,
      HasSubstr("records: 6, decisions replayed: 5 (seq 2..6); skipped: 1 "
                "activation, 0 shadow"));
  EXPECT_THAT(
      r.out,
      HasSubstr(
          "decided under the candidate's own sha256: 5 (0 of them change)"));
  EXPECT_THAT(r.out, HasSubstr("outcome: 5 unchanged, 0 changed"));
  EXPECT_THAT(r.out, HasSubstr("hash chain: not verified"));
  EXPECT_THAT(r.out, HasSubstr("no blocking findings"));
  EXPECT_THAT(r.out, Not(HasSubstr("BLOCKING")));
  // Not a terminal: no progress bar.
  EXPECT_THAT(r.err, Not(HasSubstr("[#")));
}

TEST_F(ReplayCliTest, DemotingAnUrgentRuleIsABlockingFindingNamingTheDecision) {
  const ServedLog& log = Served();
  const std::string candidate = DemotedCandidate();
  const CommandResult lint = RunCommand(kStepwise, {"lint", candidate});
  ASSERT_EQ(lint.exit_code, 0) << lint.out;

  const CommandResult r =
      RunCommand(kStepwise, {"replay", log.audit_dir, candidate});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const std::string& urgent = log.decisions.at("urgent").decision_id();
  EXPECT_THAT(r.out, HasSubstr("decided under the candidate's own sha256: 0"));
  EXPECT_THAT(
      r.out,
      HasSubstr(
          "BLOCKING: 1 decision recorded URGENT_SAFETY would no longer be"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("  ! seq 2  ", urgent,
                                            "  URGENT_SAFETY step 2 -> ")));
  EXPECT_THAT(r.out, HasSubstr("rules matched both times:  SAFETY-02"));
  EXPECT_THAT(r.out, HasSubstr("1 blocking finding\n"));
  // The C-SSRS decision stays urgent under the candidate.
  EXPECT_THAT(r.out, Not(HasSubstr(log.decisions.at("cssrs").decision_id())));

  const CommandResult j =
      RunCommand(kStepwise, {"replay", log.audit_dir, candidate, "--json"});
  EXPECT_EQ(j.exit_code, 1) << j.out << j.err;
  v1::ReplayReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(j.out, &report).ok())
      << j.out;
  EXPECT_EQ(report.decisions(), 5u);
  EXPECT_EQ(report.blocking(), 1u);
  EXPECT_FALSE(report.chain_verified());
  ASSERT_EQ(report.blocking_findings_size(), 1);
  const v1::ReplayedDecision& finding = report.blocking_findings(0);
  EXPECT_EQ(finding.decision_id(), urgent);
  EXPECT_EQ(finding.from_action(), v1::URGENT_SAFETY);
  EXPECT_NE(finding.to_action(), v1::URGENT_SAFETY);
  EXPECT_TRUE(finding.blocking());
  // SAFETY-02 still matches; the candidate made it a STAY.
  EXPECT_THAT(finding.rules_matched_both(), ::testing::Contains("SAFETY-02"));
  EXPECT_THAT(finding.rules_only_before(), ::testing::IsEmpty());
  EXPECT_EQ(finding.decided_by_sha256(),
            log.decisions.at("urgent").ruleset().sha256());
  bool urgent_to_other = false;
  for (const v1::ActionTransition& t : report.transitions()) {
    urgent_to_other |= t.from_action() == v1::URGENT_SAFETY &&
                       t.to_action() != v1::URGENT_SAFETY && t.count() == 1;
  }
  EXPECT_TRUE(urgent_to_other) << j.out;
  EXPECT_EQ(report.candidate().sha256().size(), 64u);
}

TEST_F(ReplayCliTest, ThreadsAndLimitsDoNotChangeTheFindings) {
  const ServedLog& log = Served();
  const std::string candidate = DemotedCandidate();
  for (const char* threads : {"1", "2", "5"}) {
    const CommandResult r =
        RunCommand(kStepwise, {"replay", log.audit_dir, candidate, "--threads",
                               threads, "--limit-changes", "0", "--json"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    v1::ReplayReport report;
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(r.out, &report).ok())
        << r.out;
    EXPECT_EQ(report.threads(), static_cast<uint32_t>(std::stoi(threads)));
    EXPECT_EQ(report.blocking_findings_size(), 1);
    EXPECT_EQ(report.blocking_omitted(), 0u);
  }
}

TEST_F(ReplayCliTest, ACandidateThatDoesNotLintIsRefused) {
  const ServedLog& log = Served();
  const std::filesystem::path dir =
      std::filesystem::path(NewTempDir("replay-broken")) / "b";
  std::filesystem::copy(kRules, dir, std::filesystem::copy_options::recursive);
  std::ofstream(dir / "ruleset.yaml", std::ios::app) << "\nnot_a_key: 1\n";
  const CommandResult r =
      RunCommand(kStepwise, {"replay", log.audit_dir, dir.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("the candidate must lint before it is replayed"));
  EXPECT_THAT(r.out, Not(HasSubstr("records:")));
}

TEST_F(ReplayCliTest, UsageErrorsExitTwo) {
  const ServedLog& log = Served();
  EXPECT_EQ(RunCommand(kStepwise, {"replay", log.audit_dir}).exit_code, 2);
  EXPECT_EQ(
      RunCommand(kStepwise, {"replay", log.audit_dir + "/missing", kRules})
          .exit_code,
      2);
  EXPECT_EQ(
      RunCommand(kStepwise, {"replay", log.audit_dir, kRules + "/missing"})
          .exit_code,
      2);
  EXPECT_EQ(
      RunCommand(kStepwise, {"replay", log.audit_dir, kRules, "--threads", "0"})
          .exit_code,
      2);
}

TEST_F(ReplayCliTest, AnUnreadableDecisionRecordIsRefusedWithItsPlace) {
  const ServedLog& log = Served();
  const std::string copy = NewTempDir("replay-damaged");
  std::filesystem::copy(log.audit_dir, copy,
                        std::filesystem::copy_options::recursive |
                            std::filesystem::copy_options::overwrite_existing);
  const std::filesystem::path segment =
      std::filesystem::path(copy) / "000001.jsonl";
  std::string contents = ReadWhole(segment);
  // The third record (the second decision) loses the brace of its request.
  size_t line_start = 0;
  for (int i = 0; i < 2; ++i) line_start = contents.find('\n', line_start) + 1;
  const size_t brace = contents.find("\"request\":{", line_start) + 10;
  contents.erase(brace, 1);
  std::ofstream(segment, std::ios::binary | std::ios::trunc) << contents;
  const CommandResult r = RunCommand(kStepwise, {"replay", copy, kRules});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("000001.jsonl:3: cannot read the record"));
  EXPECT_THAT(r.out, Not(HasSubstr("records:")));
}

}  // namespace
}  // namespace stepwise
