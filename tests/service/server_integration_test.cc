// Integration tests: the real stepwise-server binary on port 0, a real gRPC
// client, the real audit log on disk checked with `stepwise audit verify`.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "http_get.h"
#include "server_process.h"
#include "stepwise/v1/service.grpc.pb.h"

namespace stepwise::testing {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

constexpr char kServerBin[] = STEPWISE_SERVER_BIN;
constexpr char kStepwiseBin[] = STEPWISE_BIN;
constexpr char kTestBundle[] = STEPWISE_TEST_BUNDLE;
constexpr char kDefaultBundle[] = STEPWISE_DEFAULT_BUNDLE;
// HMAC-SHA256 with a key of 32 bytes 0xaa over "patient-k1" (computed
// independently, with Python's hmac module).
constexpr char kLegacySubjectHash[] =
    "23cf5ccaea4810d5f19bea0243a5f293fb57e6e8c835f16d57a601b3f7eb1c75";

std::vector<std::string> ServerArgs(const std::string& audit_dir,
                                    std::vector<std::string> extra = {},
                                    const std::string& bundle = kTestBundle) {
  std::vector<std::string> args = {
      "--bundle", bundle,           "--audit-dir", audit_dir,          "--port",
      "0",        "--metrics-port", "0",           "--shutdown-grace", "30s"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::unique_ptr<ServerProcess> StartServer(
    const std::string& audit_dir, std::vector<std::string> extra = {},
    const std::string& bundle = kTestBundle) {
  auto server =
      ServerProcess::Start(kServerBin, ServerArgs(audit_dir, extra, bundle));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

std::shared_ptr<grpc::Channel> Connect(const ServerProcess& server) {
  return grpc::CreateChannel(server.address(),
                             grpc::InsecureChannelCredentials());
}

void SetDeadline(grpc::ClientContext* context,
                 absl::Duration timeout = absl::Seconds(30)) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

grpc::Status Evaluate(v1::DecisionService::Stub& stub,
                      const v1::EvaluateRequest& request,
                      v1::Decision* decision) {
  grpc::ClientContext context;
  SetDeadline(&context);
  return stub.Evaluate(&context, request, decision);
}

HealthCheckResponse::ServingStatus CheckHealth(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::string& service = "") {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context);
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

// SIGTERM and wait; expects exit 0.
void StopServer(ServerProcess& server) {
  server.Signal(SIGTERM);
  absl::StatusOr<int> status = server.Wait();
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << server.Stderr();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << server.Stderr();
}

// `stepwise audit verify DIR`: the number of records, or -1 if the chain does
// not verify.
int VerifiedRecords(const std::string& audit_dir) {
  CommandResult result =
      RunCommand(kStepwiseBin, {"audit", "verify", audit_dir});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  if (result.exit_code != 0) return -1;
  std::smatch m;
  if (!std::regex_search(result.out, m,
                         std::regex(R"(verified (\d+) records?)"))) {
    ADD_FAILURE() << "unexpected verify output: " << result.out;
    return -1;
  }
  return std::stoi(m[1]);
}

int CountDecisionRecords(const std::string& audit_dir) {
  const std::string log = ReadAuditSegments(audit_dir);
  int n = 0;
  for (size_t pos = 0;
       (pos = log.find("\"kind\":\"decision\"", pos)) != std::string::npos;
       ++pos) {
    ++n;
  }
  return n;
}

bool UuidV7(const std::string& id) {
  return std::regex_match(
      id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                     "[0-9a-f]{12}"));
}

TEST(ServerTest, EvaluateAnswersOnlyAuditedDecisions) {
  const std::string audit_dir = NewTempDir("evaluate");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::DecisionService::NewStub(Connect(*server));

  v1::Decision up;
  ASSERT_TRUE(Evaluate(*stub, MoodRequest("a", 3, 3, 1), &up).ok());
  EXPECT_EQ(up.action(), v1::STEP_UP);
  EXPECT_EQ(up.recommended_step(), 2);
  ASSERT_EQ(up.matched_rules_size(), 1);
  EXPECT_EQ(up.matched_rules(0).rule_id(), "T-UP");
  EXPECT_TRUE(UuidV7(up.decision_id())) << up.decision_id();
  EXPECT_GT(up.audit_seq(), 0u);
  EXPECT_TRUE(up.has_evaluated_at());
  EXPECT_EQ(up.as_of().seconds(), 1795176000);
  EXPECT_EQ(up.ruleset().name(), "service-test");
  EXPECT_EQ(up.ruleset().sha256().size(), 64u);

  // Without as_of the server's receipt time is used and echoed.
  v1::EvaluateRequest no_as_of = MoodRequest("b", 0, 0, 3);
  no_as_of.clear_as_of();
  v1::Decision urgent;
  ASSERT_TRUE(Evaluate(*stub, no_as_of, &urgent).ok());
  EXPECT_EQ(urgent.action(), v1::URGENT_SAFETY);
  EXPECT_GT(urgent.as_of().seconds(), 1795176000);
  EXPECT_GT(urgent.audit_seq(), up.audit_seq());
  EXPECT_GT(urgent.decision_id(), up.decision_id());  // UUIDv7 sorts by time

  StopServer(*server);
  EXPECT_EQ(VerifiedRecords(audit_dir), 3);  // activation + two decisions
  for (const v1::Decision* d : {&up, &urgent}) {
    CommandResult show = RunCommand(
        kStepwiseBin, {"audit", "show", audit_dir, d->decision_id()});
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_THAT(show.out, HasSubstr(d->decision_id()));
    // The subject is pseudonymised: never in the log in clear.
    EXPECT_THAT(show.out, ::testing::Not(HasSubstr("patient-")));
  }
  EXPECT_THAT(ReadAuditSegments(audit_dir),
              ::testing::Not(HasSubstr("patient-a")));
}

TEST(ServerTest, GetRulesetDescribesTheActiveBundle) {
  const std::string audit_dir = NewTempDir("ruleset");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::DecisionService::NewStub(Connect(*server));
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::RulesetInfo info;
  ASSERT_TRUE(stub->GetRuleset(&context, v1::GetRulesetRequest(), &info).ok());
  EXPECT_EQ(info.name(), "service-test");
  EXPECT_EQ(info.version(), "1.0.0");
  EXPECT_EQ(info.sha256().size(), 64u);
  EXPECT_EQ(info.approved_by(), "Service tests");
  EXPECT_TRUE(info.has_loaded_at());
  std::vector<std::string> ids;
  for (const v1::RuleInfo& rule : info.rules()) ids.push_back(rule.rule_id());
  EXPECT_THAT(ids, ::testing::ElementsAre("T-SAFETY", "T-UP", "T-FLAG"));
  EXPECT_EQ(info.rules(0).action(), v1::URGENT_SAFETY);
  StopServer(*server);
}

TEST(ServerTest, ServesTheDefaultBundle) {
  const std::string audit_dir = NewTempDir("default");
  auto server = StartServer(audit_dir, {}, kDefaultBundle);
  ASSERT_NE(server, nullptr);
  auto stub = v1::DecisionService::NewStub(Connect(*server));
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::RulesetInfo info;
  ASSERT_TRUE(stub->GetRuleset(&context, v1::GetRulesetRequest(), &info).ok());
  EXPECT_EQ(info.name(), "persistent-physical-symptoms");
  EXPECT_GT(info.rules_size(), 5);

  v1::EvaluateRequest request;
  request.set_request_id("default-1");
  request.set_subject_id("patient-default");
  request.set_current_step(2);
  request.set_weeks_at_step(3);
  v1::Decision decision;
  ASSERT_TRUE(Evaluate(*stub, request, &decision).ok());
  EXPECT_NE(decision.action(), v1::ACTION_UNSPECIFIED);
  EXPECT_EQ(decision.ruleset().name(), "persistent-physical-symptoms");
  StopServer(*server);
  EXPECT_EQ(VerifiedRecords(audit_dir), 2);
}

TEST(ServerTest, BadInputListsEveryViolationAndIsNotLogged) {
  const std::string audit_dir = NewTempDir("bad-input");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::DecisionService::NewStub(Connect(*server));

  v1::EvaluateRequest request = MoodRequest("bad", 4, 0, 7);
  request.add_flags("no_such_flag");
  v1::Decision decision;
  const grpc::Status status = Evaluate(*stub, request, &decision);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  EXPECT_EQ(details.code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(),
            "type.googleapis.com/google.rpc.BadRequest");
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(details.details(0).UnpackTo(&bad_request));
  std::set<std::string> fields;
  for (const auto& v : bad_request.field_violations()) {
    fields.insert(v.field());
    EXPECT_FALSE(v.description().empty());
  }
  EXPECT_TRUE(fields.count("assessments[0].items.item1"))
      << status.error_message();
  EXPECT_TRUE(fields.count("assessments[0].items.item3"))
      << status.error_message();
  EXPECT_TRUE(fields.count("flags[0]")) << status.error_message();

  // A retry with the same request_id, corrected, is a new request.
  v1::Decision ok;
  EXPECT_TRUE(Evaluate(*stub, MoodRequest("bad", 1, 0, 0), &ok).ok());

  StopServer(*server);
  EXPECT_EQ(VerifiedRecords(audit_dir), 2);  // activation + the good one
  EXPECT_EQ(CountDecisionRecords(audit_dir), 1);
}

TEST(ServerTest, DeadlineAlreadyPassedIsDeadlineExceeded) {
  const std::string audit_dir = NewTempDir("deadline");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::DecisionService::NewStub(Connect(*server));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() - absl::Milliseconds(1)));
  v1::Decision decision;
  EXPECT_EQ(stub->Evaluate(&context, MoodRequest("late", 1, 1, 1), &decision)
                .error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  StopServer(*server);
  EXPECT_EQ(CountDecisionRecords(audit_dir), 0);
}

TEST(ServerTest, RepeatedRequestIdReturnsTheFirstDecision) {
  const std::string audit_dir = NewTempDir("idempotency");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::DecisionService::NewStub(Connect(*server));

  v1::Decision first, again;
  ASSERT_TRUE(Evaluate(*stub, MoodRequest("same", 3, 3, 1), &first).ok());
  ASSERT_TRUE(Evaluate(*stub, MoodRequest("same", 3, 3, 1), &again).ok());
  EXPECT_EQ(again.decision_id(), first.decision_id());
  EXPECT_EQ(again.audit_seq(), first.audit_seq());
  // The whole answer, byte for byte (the server rebuilds it; docs/service.md).
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());

  v1::Decision other;
  const grpc::Status conflict =
      Evaluate(*stub, MoodRequest("same", 0, 0, 0), &other);
  EXPECT_EQ(conflict.error_code(), grpc::StatusCode::ALREADY_EXISTS);

  // Concurrent duplicates: one evaluation, one record, one answer for all.
  constexpr int kCalls = 16;
  std::vector<v1::Decision> decisions(kCalls);
  std::vector<grpc::Status> statuses(kCalls);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kCalls; ++i) {
      threads.emplace_back([&, i] {
        statuses[i] =
            Evaluate(*stub, MoodRequest("concurrent", 0, 1, 2), &decisions[i]);
      });
    }
    for (std::thread& t : threads) t.join();
  }
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(decisions[i].SerializeAsString(),
              decisions[0].SerializeAsString());
  }

  StopServer(*server);
  EXPECT_EQ(CountDecisionRecords(audit_dir), 2);
  EXPECT_EQ(VerifiedRecords(audit_dir), 3);
}

TEST(ServerTest, HealthFollowsTheServerLifeAndWatchEndsOnShutdown) {
  const std::string audit_dir = NewTempDir("health");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  auto channel = Connect(*server);
  EXPECT_EQ(CheckHealth(channel), HealthCheckResponse::SERVING);
  EXPECT_EQ(CheckHealth(channel, "stepwise.v1.DecisionService"),
            HealthCheckResponse::SERVING);
  {
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext context;
    SetDeadline(&context);
    HealthCheckRequest request;
    request.set_service("no.such.Service");
    HealthCheckResponse response;
    EXPECT_EQ(stub->Check(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }

  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(60));
  HealthCheckRequest request;
  auto watch = stub->Watch(&context, request);
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  server->Signal(SIGTERM);
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(watch->Read(&update));  // the server ends the stream
  EXPECT_TRUE(watch->Finish().ok());

  absl::StatusOr<int> exit_status = server->Wait();
  ASSERT_TRUE(exit_status.ok());
  EXPECT_TRUE(WIFEXITED(*exit_status));
  EXPECT_EQ(WEXITSTATUS(*exit_status), 0) << server->Stderr();
}

TEST(ServerTest, ReflectionDescribesEveryServiceWithoutProtoFiles) {
  const std::string audit_dir = NewTempDir("reflection");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  auto stub =
      grpc::reflection::v1alpha::ServerReflection::NewStub(Connect(*server));
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = stub->ServerReflectionInfo(&context);

  grpc::reflection::v1alpha::ServerReflectionRequest request;
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  std::set<std::string> services;
  for (const auto& s : response.list_services_response().service()) {
    services.insert(s.name());
  }
  EXPECT_TRUE(services.count("stepwise.v1.DecisionService"));
  EXPECT_TRUE(services.count("grpc.health.v1.Health"));
  EXPECT_TRUE(services.count("grpc.reflection.v1alpha.ServerReflection"));

  for (const char* symbol :
       {"stepwise.v1.DecisionService", "grpc.health.v1.Health",
        "google.rpc.BadRequest"}) {
    request.set_file_containing_symbol(symbol);
    ASSERT_TRUE(stream->Write(request));
    ASSERT_TRUE(stream->Read(&response));
    ASSERT_TRUE(response.has_file_descriptor_response()) << symbol;
    bool found = false;
    for (const std::string& bytes :
         response.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      ASSERT_TRUE(file.ParseFromString(bytes));
      const std::string prefix = file.package() + ".";
      for (const auto& service : file.service()) {
        if (prefix + service.name() == symbol) found = true;
      }
      for (const auto& message : file.message_type()) {
        if (prefix + message.name() == symbol) found = true;
      }
    }
    EXPECT_TRUE(found) << symbol;
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  StopServer(*server);
}

TEST(ServerTest, MetricsAreServedOnTheirOwnPort) {
  const std::string audit_dir = NewTempDir("metrics");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->metrics_port(), 0);
  auto stub = v1::DecisionService::NewStub(Connect(*server));
  v1::Decision decision;
  ASSERT_TRUE(Evaluate(*stub, MoodRequest("m", 3, 3, 1), &decision).ok());

  const std::string scrape = HttpGet(server->metrics_port(), "/metrics");
  EXPECT_THAT(scrape, HasSubstr("200 OK"));
  EXPECT_THAT(scrape,
              HasSubstr("stepwise_decisions_total{action=\"STEP_UP\"} 1"));
  EXPECT_THAT(
      scrape,
      HasSubstr("stepwise_rpc_total{method=\"Evaluate\",code=\"OK\"} 1"));
  EXPECT_THAT(scrape, HasSubstr("stepwise_ruleset_info{name=\"service-test\""));
  EXPECT_THAT(scrape, HasSubstr("stepwise_audit_records_total 2"));
  EXPECT_THAT(scrape, HasSubstr("stepwise_audit_batch_records_count"));
  EXPECT_THAT(scrape, HasSubstr("stepwise_audit_sync_seconds_bucket"));
  EXPECT_THAT(scrape, HasSubstr("stepwise_audit_writer_cpu_seconds_total "));
  EXPECT_THAT(scrape, HasSubstr("stepwise_evaluation_seconds_count 1"));
  EXPECT_THAT(scrape, HasSubstr("stepwise_serving 1"));
  StopServer(*server);
}

// Calls Evaluate from `threads` threads, each with fresh request ids, until
// its first failure or `per_thread` calls. Returns the decision ids received.
class Burst {
 public:
  Burst(std::shared_ptr<grpc::Channel> channel, int threads, int per_thread)
      : stub_(v1::DecisionService::NewStub(channel)) {
    {
      absl::MutexLock lock(&mu_);
      running_ = static_cast<size_t>(threads);
    }
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t, per_thread] {
        Run(t, per_thread);
        absl::MutexLock lock(&mu_);
        --running_;
      });
    }
  }
  ~Burst() { Join(); }

 private:
  void Run(int t, int per_thread) {
    for (int i = 0; i < per_thread; ++i) {
      v1::Decision decision;
      const grpc::Status status = Evaluate(
          *stub_, MoodRequest(absl::StrCat("burst-", t, "-", i), 1, 2, 0),
          &decision);
      absl::MutexLock lock(&mu_);
      if (!status.ok()) {
        failures_.push_back(status.error_code());
        failure_messages_.push_back(status.error_message());
        return;
      }
      received_.push_back(decision.decision_id());
    }
  }

 public:
  // Blocks until at least `n` decisions were received or every thread ended.
  void AwaitReceived(size_t n) {
    absl::MutexLock lock(&mu_);
    target_ = n;
    mu_.Await(absl::Condition(this, &Burst::ReachedLocked));
  }
  void Join() {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<std::string> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  std::vector<grpc::StatusCode> failures() {
    absl::MutexLock lock(&mu_);
    return failures_;
  }
  std::vector<std::string> failure_messages() {
    absl::MutexLock lock(&mu_);
    return failure_messages_;
  }

 private:
  std::unique_ptr<v1::DecisionService::Stub> stub_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::vector<std::string> received_ ABSL_GUARDED_BY(mu_);
  std::vector<grpc::StatusCode> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failure_messages_ ABSL_GUARDED_BY(mu_);
  size_t target_ ABSL_GUARDED_BY(mu_) = 0;
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;

  bool ReachedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return received_.size() >= target_ || running_ == 0;
  }
};

TEST(ServerTest, SigtermDrainsInFlightCallsAndExitsZero) {
  const std::string audit_dir = NewTempDir("drain");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  Burst burst(Connect(*server), 8, 400);
  burst.AwaitReceived(40);
  server->Signal(SIGTERM);
  absl::StatusOr<int> exit_status = server->Wait();
  burst.Join();
  ASSERT_TRUE(exit_status.ok());
  ASSERT_TRUE(WIFEXITED(*exit_status)) << server->Stderr();
  EXPECT_EQ(WEXITSTATUS(*exit_status), 0) << server->Stderr();
  EXPECT_THAT(server->Stderr(), HasSubstr("draining"));

  // Calls after the signal are refused unevaluated: UNAVAILABLE from the
  // service while it drains, or from gRPC once the listener is closing
  // (CANCELLED for a call that reached the server but no handler). A client
  // retries either elsewhere.
  const std::vector<grpc::StatusCode> failures = burst.failures();
  const std::vector<std::string> messages = burst.failure_messages();
  for (size_t i = 0; i < failures.size(); ++i) {
    EXPECT_TRUE(failures[i] == grpc::StatusCode::UNAVAILABLE ||
                failures[i] == grpc::StatusCode::CANCELLED)
        << failures[i] << ": " << messages[i];
  }
  const std::vector<std::string> received = burst.received();
  const std::string log = ReadAuditSegments(audit_dir);
  for (const std::string& id : received) {
    EXPECT_THAT(log, HasSubstr(id)) << "answered but not in the log";
  }
  EXPECT_EQ(CountDecisionRecords(audit_dir), static_cast<int>(received.size()));
  EXPECT_EQ(VerifiedRecords(audit_dir), static_cast<int>(received.size()) + 1);
}

TEST(ServerTest, KillDashNineMidBurstLosesNoAnsweredDecision) {
  const std::string audit_dir = NewTempDir("kill9");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  std::vector<std::string> received;
  {
    Burst burst(Connect(*server), 16, 300);
    burst.AwaitReceived(100);
    server->Signal(SIGKILL);
    ASSERT_TRUE(server->Wait().ok());
    burst.Join();
    received = burst.received();
  }
  ASSERT_GE(received.size(), 100u);

  // Restart on the same folder: recovery sets a torn tail aside, if any.
  auto restarted = StartServer(audit_dir);
  ASSERT_NE(restarted, nullptr);
  auto stub = v1::DecisionService::NewStub(Connect(*restarted));
  v1::Decision after;
  ASSERT_TRUE(
      Evaluate(*stub, MoodRequest("after-restart", 1, 1, 1), &after).ok());
  StopServer(*restarted);

  const std::string log = ReadAuditSegments(audit_dir);
  for (const std::string& id : received) {
    EXPECT_THAT(log, HasSubstr(id)) << "answered but not in the log";
  }
  EXPECT_THAT(log, HasSubstr(after.decision_id()));
  // Every record on disk verifies, whatever the kill left unanswered.
  EXPECT_GE(VerifiedRecords(audit_dir), static_cast<int>(received.size()) + 3);
}

TEST(ServerTest, TornTailIsSetAsideAtStartUp) {
  const std::string audit_dir = NewTempDir("torn");
  {
    auto server = StartServer(audit_dir);
    ASSERT_NE(server, nullptr);
    auto stub = v1::DecisionService::NewStub(Connect(*server));
    v1::Decision decision;
    ASSERT_TRUE(Evaluate(*stub, MoodRequest("t1", 1, 1, 1), &decision).ok());
    StopServer(*server);
  }
  // What a crash in the middle of a write leaves: half a record, no newline.
  std::string newest;
  for (const auto& entry : std::filesystem::directory_iterator(audit_dir)) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".jsonl") && name > newest) newest = name;
  }
  ASSERT_FALSE(newest.empty());
  {
    std::ofstream out(std::filesystem::path(audit_dir) / newest,
                      std::ios::app | std::ios::binary);
    out << R"({"seq":3,"kind":"decision","time":"2026-11-20T09:30:00Z","decis)";
  }

  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::DecisionService::NewStub(Connect(*server));
  v1::Decision decision;
  ASSERT_TRUE(Evaluate(*stub, MoodRequest("t2", 1, 1, 1), &decision).ok());
  StopServer(*server);
  EXPECT_THAT(server->Stderr(), HasSubstr("audit log recovery"));

  bool quarantined = false;
  for (const auto& entry : std::filesystem::directory_iterator(audit_dir)) {
    if (absl::StrContains(entry.path().filename().string(), ".torn")) {
      quarantined = true;
    }
  }
  EXPECT_TRUE(quarantined) << "the torn record must be kept, not dropped";
  EXPECT_EQ(VerifiedRecords(audit_dir), 4);  // 2 activations + 2 decisions
}

// The subject key lives beside the audit folder, so that a copy of the
// folder (for replay, verification or an auditor) does not carry the key that
// would let its holder test guessed patient references against the log.
TEST(ServerTest, SubjectKeyIsCreatedBesideTheAuditFolderOwnerOnly) {
  const std::string audit_dir = NewTempDir("key-beside");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  StopServer(*server);
  const std::filesystem::path beside = audit_dir + ".subject.key";
  ASSERT_TRUE(std::filesystem::exists(beside));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(audit_dir) /
                                       "subject.key"));
  const auto perms = std::filesystem::status(beside).permissions();
  EXPECT_EQ(perms & (std::filesystem::perms::group_all |
                     std::filesystem::perms::others_all),
            std::filesystem::perms::none);
  // A restart reuses it.
  std::string first;
  std::getline(std::ifstream(beside), first);
  auto again = StartServer(audit_dir);
  ASSERT_NE(again, nullptr);
  StopServer(*again);
  std::string second;
  std::getline(std::ifstream(beside), second);
  EXPECT_EQ(first, second);
  EXPECT_EQ(first.size(), 64u);
}

// A log started when the key was kept inside the folder keeps that key (its
// subject hashes must go on matching), with a warning to move it.
TEST(ServerTest, SubjectKeyInsideAnOlderAuditFolderIsKeptWithAWarning) {
  const std::string audit_dir = NewTempDir("key-legacy");
  const std::filesystem::path legacy =
      std::filesystem::path(audit_dir) / "subject.key";
  {
    std::ofstream out(legacy);
    out << std::string(64, 'a') << "\n";
  }
  std::filesystem::permissions(legacy, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write);
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  auto stub = v1::DecisionService::NewStub(Connect(*server));
  v1::Decision decision;
  ASSERT_TRUE(Evaluate(*stub, MoodRequest("k1", 1, 1, 1), &decision).ok());
  StopServer(*server);
  EXPECT_FALSE(std::filesystem::exists(audit_dir + ".subject.key"));
  EXPECT_THAT(server->Stderr(), HasSubstr("inside the audit folder"));
  // HMAC-SHA256(key = 32 bytes of 0xaa, "patient-k1") is what the record holds
  // when the legacy key was used.
  EXPECT_THAT(ReadAuditSegments(audit_dir), HasSubstr(kLegacySubjectHash));
}

TEST(ServerTest, AuditWriteFailureIsUnavailableAndNothingGoesUnlogged) {
  const std::string audit_dir = NewTempDir("fault");
  auto server = StartServer(audit_dir, {"--audit-fault-after", "3"});
  ASSERT_NE(server, nullptr);
  auto channel = Connect(*server);
  auto stub = v1::DecisionService::NewStub(channel);

  std::vector<std::string> answered;
  grpc::Status failure;
  for (int i = 0; i < 20 && failure.ok(); ++i) {
    v1::Decision decision;
    failure =
        Evaluate(*stub, MoodRequest(absl::StrCat("f", i), 1, 1, 1), &decision);
    if (failure.ok()) answered.push_back(decision.decision_id());
  }
  ASSERT_EQ(failure.error_code(), grpc::StatusCode::UNAVAILABLE)
      << failure.error_message();
  EXPECT_GE(answered.size(), 1u);
  EXPECT_LE(answered.size(), 3u);

  // Fail closed: NOT_SERVING, and every later call is refused unevaluated.
  EXPECT_EQ(CheckHealth(channel), HealthCheckResponse::NOT_SERVING);
  v1::Decision refused;
  EXPECT_EQ(
      Evaluate(*stub, MoodRequest("late", 1, 1, 1), &refused).error_code(),
      grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(refused.decision_id().empty());

  StopServer(*server);
  const std::string log = ReadAuditSegments(audit_dir);
  for (const std::string& id : answered) EXPECT_THAT(log, HasSubstr(id));
  EXPECT_EQ(CountDecisionRecords(audit_dir), static_cast<int>(answered.size()));
  EXPECT_EQ(VerifiedRecords(audit_dir), static_cast<int>(answered.size()) + 1);
}

TEST(ServerTest, StartUpFailsWithAClearMessage) {
  const std::string dir = NewTempDir("startup");
  {
    // A bundle that does not lint.
    const std::filesystem::path bad = std::filesystem::path(dir) / "bad-bundle";
    std::filesystem::create_directories(bad);
    std::filesystem::copy(kTestBundle, bad,
                          std::filesystem::copy_options::recursive);
    std::ofstream(bad / "ruleset.yaml", std::ios::app) << "unknown_key: 1\n";
    CommandResult r =
        RunCommand(kServerBin, ServerArgs(dir + "/audit-a", {}, bad.string()));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("does not lint"));
    EXPECT_THAT(r.err, HasSubstr("ruleset.yaml:"));
  }
  {
    // An audit folder that cannot be created (its parent is a file).
    std::ofstream(std::filesystem::path(dir) / "plain-file") << "x";
    CommandResult r =
        RunCommand(kServerBin, ServerArgs(dir + "/plain-file/audit"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("cannot open the audit log"));
  }
  {
    // A port in use.
    auto first = StartServer(dir + "/audit-b");
    ASSERT_NE(first, nullptr);
    CommandResult r = RunCommand(
        kServerBin,
        {"--bundle", kTestBundle, "--audit-dir", dir + "/audit-c", "--port",
         std::to_string(first->port()), "--metrics-port", "-1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("cannot listen on 127.0.0.1:"));
    // An audit folder another server writes to: one writer per folder, or
    // the chain would fork. The first server is not disturbed.
    r = RunCommand(kServerBin, ServerArgs(dir + "/audit-b"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("is in use by another writer"));
    StopServer(*first);
    EXPECT_EQ(VerifiedRecords(dir + "/audit-b"), 1);  // its activation
  }
  {
    // A bad flag is a usage error.
    CommandResult r = RunCommand(kServerBin, {"--port", "70000"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_THAT(r.err, HasSubstr("port"));
  }
}

TEST(ServerTest, ConfigFileIsReadAndFlagsWin) {
  const std::string dir = NewTempDir("config");
  const std::string config = dir + "/stepwise.yaml";
  std::ofstream(config) << "bundle: " << kTestBundle << "\n"
                        << "audit_dir: " << dir << "/audit\n"
                        << "port: 1\n"  // overridden by --port 0
                        << "metrics_port: -1\n";
  auto server =
      ServerProcess::Start(kServerBin, {"--config", config, "--port", "0"});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->metrics_port(), -1);
  EXPECT_EQ(CheckHealth(Connect(**server)), HealthCheckResponse::SERVING);
  StopServer(**server);
  EXPECT_EQ(VerifiedRecords(dir + "/audit"), 1);
}

TEST(ServerTest, StepwiseCallPrintsTheDecisionOrEveryViolation) {
  const std::string audit_dir = NewTempDir("call");
  auto server = StartServer(audit_dir);
  ASSERT_NE(server, nullptr);
  const std::string good = audit_dir + "-good.json";
  std::ofstream(good) << R"({"requestId": "call-1", "subjectId": "p1",
    "currentStep": 1, "weeksAtStep": 2, "assessments": [{"instrument": "mood",
    "items": {"item1": 3, "item2": 3, "item3": 1},
    "administeredAt": "2026-11-20T09:00:00Z"}]})";
  CommandResult ok =
      RunCommand(kStepwiseBin, {"call", server->address(), good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("\"action\": \"STEP_UP\""));
  EXPECT_THAT(ok.out, HasSubstr("\"decisionId\""));
  EXPECT_THAT(ok.out, HasSubstr("\"auditSeq\""));

  const std::string bad = audit_dir + "-bad.json";
  std::ofstream(bad) << R"({"requestId": "call-2", "subjectId": "p1",
    "currentStep": 1, "assessments": [{"instrument": "mood",
    "items": {"item1": 9, "item2": 3, "item3": 9},
    "administeredAt": "2026-11-20T09:00:00Z"}]})";
  CommandResult rejected =
      RunCommand(kStepwiseBin, {"call", server->address(), bad});
  EXPECT_EQ(rejected.exit_code, 1);
  EXPECT_THAT(rejected.out, HasSubstr("bad request: 2 violations"));
  EXPECT_THAT(rejected.out, HasSubstr("assessments[0].items.item1"));
  EXPECT_THAT(rejected.out, HasSubstr("assessments[0].items.item3"));

  CommandResult usage = RunCommand(kStepwiseBin, {"call", server->address()});
  EXPECT_EQ(usage.exit_code, 2);
  StopServer(*server);

  CommandResult down = RunCommand(
      kStepwiseBin, {"call", server->address(), good, "--timeout", "5"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.err, HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace stepwise::testing
