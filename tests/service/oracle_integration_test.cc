// The real server on the default bundle against the second implementation
// of the clinical spec (tests/spec_oracle/): every request of the stored
// corpus, sent by several clients at once, must be answered with the
// oracle's outcome (bad input as INVALID_ARGUMENT), and every decision
// answered must be in the audit log as answered, with the chain verifying.
//
// The engine's own test (tests/engine/spec_oracle_test.cc) checks the same
// outcomes in-process; this one checks that nothing between the wire and
// the engine changes them: JSON and protobuf parsing, the per-call arenas
// and pooled answers that calls reuse one after another, idempotency keys,
// the audit record built from the answer, a repeated request_id answered
// from the first decision without a second record — and that the records
// are enough to make every decision again (`stepwise replay` against the
// same bundle changes none).
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server_process.h"
#include "stepwise/v1/replay.pb.h"
#include "stepwise/v1/service.grpc.pb.h"
#include "tests/spec_oracle/corpus.h"

namespace stepwise::testing {
namespace {

using spec_oracle::OracleCase;

// What one call got back.
struct Answer {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  std::string outcome;  // spec_oracle::Describe, or kBadInput
  std::string decision_id;
};

// Evaluate on the case's request, with the case's name as its request_id.
grpc::Status Send(v1::DecisionService::Stub& stub, const OracleCase& c,
                  v1::Decision* decision) {
  v1::EvaluateRequest request = c.request;
  request.set_request_id(c.name);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  return stub.Evaluate(&context, request, decision);
}

// decision_id -> outcome, of every decision record in the log.
std::map<std::string, std::string> RecordedOutcomes(const std::string& dir) {
  namespace pb = ::google::protobuf;
  std::map<std::string, std::string> out;
  for (absl::string_view line :
       absl::StrSplit(ReadAuditSegments(dir), '\n', absl::SkipEmpty())) {
    pb::Struct record;
    if (!pb::util::JsonStringToMessage(std::string(line), &record).ok()) {
      ADD_FAILURE() << "unreadable record: " << line;
      continue;
    }
    const auto kind = record.fields().find("kind");
    if (kind == record.fields().end() ||
        kind->second.string_value() != "decision") {
      continue;
    }
    const auto body = record.fields().find("decision");
    std::string json;
    v1::Decision decision;
    pb::util::JsonParseOptions lenient;
    lenient.ignore_unknown_fields = true;
    if (body == record.fields().end() ||
        !pb::util::MessageToJsonString(body->second.struct_value(), &json)
             .ok() ||
        !pb::util::JsonStringToMessage(json, &decision, lenient).ok()) {
      ADD_FAILURE() << "unreadable decision: " << line;
      continue;
    }
    out[decision.decision_id()] = spec_oracle::Describe(decision);
  }
  return out;
}

TEST(ServerOracleTest, EveryAnswerIsTheSpecsAndIsRecordedAsAnswered) {
  absl::StatusOr<std::vector<OracleCase>> cases =
      spec_oracle::LoadCorpus(std::filesystem::path(STEPWISE_SOURCE_DIR) /
                              "tests/engine/testdata/spec_oracle/cases.jsonl");
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_GE(cases->size(), 1000u);

  const std::string audit_dir = NewTempDir("oracle");
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
      STEPWISE_SERVER_BIN, {"--bundle", STEPWISE_DEFAULT_BUNDLE, "--audit-dir",
                            audit_dir, "--port", "0", "--metrics-port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateChannel((*server)->address(),
                                     grpc::InsecureChannelCredentials());

  // Eight clients at once, each taking the next case: calls overlap, so
  // answers are built in arenas and pooled messages other calls used just
  // before, and records share group commits.
  std::vector<Answer> answers(cases->size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      auto stub = v1::DecisionService::NewStub(channel);
      for (size_t k; (k = next.fetch_add(1)) < cases->size();) {
        v1::Decision decision;
        const grpc::Status status = Send(*stub, (*cases)[k], &decision);
        Answer& a = answers[k];
        a.code = status.error_code();
        a.message = status.error_message();
        if (status.ok()) {
          a.outcome = spec_oracle::Describe(decision);
          a.decision_id = decision.decision_id();
        } else if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
          a.outcome = spec_oracle::kBadInput;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();

  // A repeat of a request_id with the same content is answered with the
  // first decision and recorded nowhere: every tenth request again.
  {
    auto stub = v1::DecisionService::NewStub(channel);
    for (size_t k = 0; k < cases->size(); k += 10) {
      if (answers[k].decision_id.empty()) continue;
      v1::Decision again;
      const grpc::Status status = Send(*stub, (*cases)[k], &again);
      ASSERT_TRUE(status.ok())
          << (*cases)[k].name << ": " << status.error_message();
      EXPECT_EQ(again.decision_id(), answers[k].decision_id)
          << (*cases)[k].name;
      EXPECT_EQ(spec_oracle::Describe(again), answers[k].outcome)
          << (*cases)[k].name;
    }
  }

  (*server)->Signal(SIGTERM);
  absl::StatusOr<int> exit = (*server)->Wait();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0)
      << (*server)->Stderr();

  const std::map<std::string, std::string> recorded =
      RecordedOutcomes(audit_dir);
  int differences = 0, decisions = 0;
  for (size_t k = 0; k < cases->size(); ++k) {
    const OracleCase& c = (*cases)[k];
    const Answer& a = answers[k];
    if (a.outcome.empty()) {  // neither a decision nor INVALID_ARGUMENT
      ++differences;
      ADD_FAILURE() << c.name << ": status " << a.code << " " << a.message;
      continue;
    }
    if (a.outcome != c.expected) {
      ++differences;
      ADD_FAILURE() << c.name << "\n  server: " << a.outcome
                    << "\n  oracle: " << c.expected;
    }
    if (a.decision_id.empty()) continue;
    ++decisions;
    const auto it = recorded.find(a.decision_id);
    if (it == recorded.end()) {
      ADD_FAILURE() << c.name << ": decision " << a.decision_id
                    << " was answered but is not in the log";
    } else if (it->second != a.outcome) {
      ADD_FAILURE() << c.name << ": recorded " << it->second << "\n  answered "
                    << a.outcome;
    }
  }
  EXPECT_EQ(differences, 0) << "of " << cases->size() << " requests";
  // Bad input is never recorded as a decision, nor is a repeat.
  EXPECT_EQ(recorded.size(), static_cast<size_t>(decisions));

  const CommandResult verify =
      RunCommand(STEPWISE_BIN, {"audit", "verify", audit_dir});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  // The records hold enough to make each decision again: replaying the log
  // against the bundle that made it changes nothing.
  const CommandResult replay = RunCommand(
      STEPWISE_BIN, {"replay", audit_dir, STEPWISE_DEFAULT_BUNDLE, "--json"});
  ASSERT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  v1::ReplayReport report;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(replay.out, &report).ok())
      << replay.out;
  EXPECT_EQ(report.decisions(), static_cast<uint64_t>(decisions));
  EXPECT_EQ(report.decided_by_candidate(), static_cast<uint64_t>(decisions));
  EXPECT_EQ(report.unchanged(), static_cast<uint64_t>(decisions));
  EXPECT_EQ(report.changed(), 0u);
  EXPECT_EQ(report.decided_by_candidate_changed(), 0u);
}

}  // namespace
}  // namespace stepwise::testing
