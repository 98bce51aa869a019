// Integration tests of the GovernanceService, hot reload and shadow mode: the
// real stepwise-server binary on port 0 with bearer tokens, real gRPC
// clients, the bundle folder edited on disk while Evaluate calls run, the
// audit log read back with the audit reader and `stepwise audit verify`.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "http_get.h"
#include "server_process.h"
#include "service/audit/file_system.h"
#include "service/audit/reader.h"
#include "service/audit/record.h"
#include "stepwise/v1/service.grpc.pb.h"
#include "test_tokens.h"

namespace stepwise::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kServerBin[] = STEPWISE_SERVER_BIN;
constexpr char kStepwiseBin[] = STEPWISE_BIN;
constexpr char kTestBundle[] = STEPWISE_TEST_BUNDLE;

constexpr char kEvaluatorToken[] = "gv-ev-Qm3Wx7Lz1Pn5Rb9Tc4Yh8Kk2Vs6Df0Ga";
constexpr char kGovernanceToken[] = "gv-gv-Ld6Fj0Ks4Wq8Ze2Xr7Ty1Uc5Ib9Om3Pl";
constexpr char kAuditorToken[] = "gv-au-Gq1Ws5Ed9Rf3Tg7Yh2Uj6Ik0Ol4Pz8Xa";
constexpr char kUnknownToken[] = "gv-xx-Yz1Yy2Xx3Ww4Vv5Uu6Tt7Ss8Rr9Qq0Pp";

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteText(const std::filesystem::path& path, const std::string& text) {
  // Written beside and renamed over, as an editor that saves atomically
  // does: a reload never reads half a file.
  const std::filesystem::path tmp = path.string() + ".tmp~";
  std::ofstream(tmp, std::ios::trunc) << text;
  std::filesystem::rename(tmp, path);
}

void Replace(const std::filesystem::path& path, const std::string& from,
             const std::string& to) {
  const std::string text = ReadText(path);
  ASSERT_THAT(text, HasSubstr(from)) << path;
  WriteText(path, absl::StrReplaceAll(text, {{from, to}}));
}

// A copy of the service test bundle to edit.
std::filesystem::path CopyBundle(const std::string& dir,
                                 const std::string& name) {
  const std::filesystem::path bundle = std::filesystem::path(dir) / name;
  std::filesystem::create_directories(bundle);
  std::filesystem::copy(kTestBundle, bundle,
                        std::filesystem::copy_options::recursive);
  return bundle;
}

std::string TokensFile(const std::string& dir) {
  const std::string path = dir + "/tokens.yaml";
  std::ofstream(path) << TokensYaml(
      {{kEvaluatorToken, "ehr-gateway", {"evaluator"}},
       {kGovernanceToken, "governance-board", {"governance"}},
       {kAuditorToken, "audit-office", {"auditor"}}});
  chmod(path.c_str(), 0600);
  return path;
}

struct Fixture {
  std::string dir;
  std::filesystem::path bundle;
  std::string audit_dir;
  std::unique_ptr<ServerProcess> server;
  std::shared_ptr<grpc::Channel> channel;
};

Fixture StartWithTokens(const std::string& name,
                        std::vector<std::string> extra = {}) {
  Fixture f;
  f.dir = NewTempDir(name);
  f.bundle = CopyBundle(f.dir, "bundle");
  f.audit_dir = f.dir + "/audit";
  std::vector<std::string> args = {"--bundle",         f.bundle.string(),
                                   "--audit-dir",      f.audit_dir,
                                   "--port",           "0",
                                   "--metrics-port",   "0",
                                   "--shutdown-grace", "30s",
                                   "--tokens-file",    TokensFile(f.dir)};
  args.insert(args.end(), extra.begin(), extra.end());
  auto server = ServerProcess::Start(kServerBin, args);
  EXPECT_TRUE(server.ok()) << server.status();
  if (server.ok()) {
    f.server = *std::move(server);
    f.channel = grpc::CreateChannel(f.server->address(),
                                    grpc::InsecureChannelCredentials());
  }
  return f;
}

// A call with `token` (none when empty).
void Prepare(grpc::ClientContext* context, const std::string& token) {
  PrepareCall(context, Bearer(token));
}

grpc::Status Evaluate(const std::shared_ptr<grpc::Channel>& channel,
                      const v1::EvaluateRequest& request,
                      v1::Decision* decision) {
  grpc::ClientContext context;
  Prepare(&context, kEvaluatorToken);
  return v1::DecisionService::NewStub(channel)->Evaluate(&context, request,
                                                         decision);
}

v1::RulesetInfo GetRuleset(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  Prepare(&context, kEvaluatorToken);
  v1::RulesetInfo info;
  const grpc::Status status = v1::DecisionService::NewStub(channel)->GetRuleset(
      &context, v1::GetRulesetRequest(), &info);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return info;
}

grpc::Status Reload(const std::shared_ptr<grpc::Channel>& channel,
                    v1::ReloadRulesetResponse* response,
                    const std::string& token = kGovernanceToken) {
  grpc::ClientContext context;
  Prepare(&context, token);
  return v1::GovernanceService::NewStub(channel)->ReloadRuleset(
      &context, v1::ReloadRulesetRequest(), response);
}

grpc::Status Validate(const std::shared_ptr<grpc::Channel>& channel,
                      const v1::ValidateRulesetRequest& request,
                      v1::ValidateRulesetResponse* response,
                      const std::string& token = kGovernanceToken) {
  grpc::ClientContext context;
  Prepare(&context, token);
  return v1::GovernanceService::NewStub(channel)->ValidateRuleset(
      &context, request, response);
}

grpc::Status GetDecision(const std::shared_ptr<grpc::Channel>& channel,
                         const std::string& decision_id,
                         v1::AuditRecord* record,
                         const std::string& token = kAuditorToken) {
  grpc::ClientContext context;
  Prepare(&context, token);
  v1::GetDecisionRequest request;
  request.set_decision_id(decision_id);
  return v1::GovernanceService::NewStub(channel)->GetDecision(&context, request,
                                                              record);
}

grpc::Status VerifyAudit(const std::shared_ptr<grpc::Channel>& channel,
                         v1::VerifyAuditResponse* response,
                         const std::string& token = kAuditorToken) {
  grpc::ClientContext context;
  Prepare(&context, token);
  return v1::GovernanceService::NewStub(channel)->VerifyAudit(
      &context, v1::VerifyAuditRequest(), response);
}

std::string Metrics(const ServerProcess& server) {
  return HttpGet(server.metrics_port(), "/metrics");
}

// Polls until `done` holds or 60 s pass; each round is a real round trip to
// the server, so this waits on the server, not on a timer.
bool WaitFor(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    if (done()) return true;
    std::this_thread::yield();
  }
  return done();
}

void Stop(ServerProcess& server) {
  server.Signal(SIGTERM);
  absl::StatusOr<int> status = server.Wait();
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << server.Stderr();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << server.Stderr();
}

std::vector<service::audit::ParsedRecord> AllRecords(
    const std::string& audit_dir) {
  std::vector<service::audit::ParsedRecord> records;
  const absl::Status status = service::audit::ForEachRecord(
      *service::audit::DefaultFileSystem(), audit_dir,
      [&](const service::audit::RecordRef& ref) -> absl::Status {
        absl::StatusOr<service::audit::ParsedRecord> record =
            service::audit::ParseRecord(ref.json);
        if (!record.ok()) return record.status();
        records.push_back(*std::move(record));
        return absl::OkStatus();
      });
  EXPECT_TRUE(status.ok()) << status;
  return records;
}

bool AuditVerifies(const std::string& audit_dir) {
  const CommandResult result =
      RunCommand(kStepwiseBin, {"audit", "verify", audit_dir});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  return result.exit_code == 0;
}

// Four clients evaluating in a closed loop until Stop(), each call a new
// request that every version of the test bundle answers STEP_UP.
class EvaluateLoad {
 public:
  explicit EvaluateLoad(const std::string& address) {
    for (int c = 0; c < kClients; ++c) {
      clients_.emplace_back([this, address, c] {
        auto channel =
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
        for (int i = 0; i < kMaxCallsPerClient && !stop_.load(); ++i) {
          v1::Decision decision;
          const grpc::Status status = Evaluate(
              channel, MoodRequest(absl::StrCat("load-", c, "-", i), 3, 3, 1),
              &decision);
          absl::MutexLock lock(&mu_);
          if (!status.ok() || decision.action() != v1::STEP_UP) {
            if (failures_++ == 0) {
              first_failure_ = absl::StrCat(status.error_message(), " ",
                                            decision.DebugString());
            }
          } else {
            ++decisions_by_sha_[decision.ruleset().sha256()];
          }
        }
      });
    }
  }
  ~EvaluateLoad() { Stop(); }

  void Stop() {
    stop_.store(true);
    for (std::thread& t : clients_) {
      if (t.joinable()) t.join();
    }
  }
  int decisions_under(const std::string& sha) {
    absl::MutexLock lock(&mu_);
    auto it = decisions_by_sha_.find(sha);
    return it == decisions_by_sha_.end() ? 0 : it->second;
  }
  int failures() {
    absl::MutexLock lock(&mu_);
    return failures_;
  }
  std::string first_failure() {
    absl::MutexLock lock(&mu_);
    return first_failure_;
  }
  std::set<std::string> shas() {
    absl::MutexLock lock(&mu_);
    std::set<std::string> shas;
    for (const auto& [sha, n] : decisions_by_sha_) shas.insert(sha);
    return shas;
  }

 private:
  static constexpr int kClients = 4;
  static constexpr int kMaxCallsPerClient = 200000;  // a bound, not a target

  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_failure_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> decisions_by_sha_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> clients_;
};

// Every GovernanceService RPC by every kind of caller: only the method's role
// gets past authorization, and each answers what it should.
TEST(GovernanceTest, EveryRpcByEveryCaller) {
  Fixture f = StartWithTokens("gov-roles");
  ASSERT_NE(f.server, nullptr);
  v1::Decision first;
  ASSERT_TRUE(Evaluate(f.channel, MoodRequest("first", 3, 3, 1), &first).ok());

  const std::map<std::string, std::string> role_of = {
      {"ValidateRuleset", "governance"},
      {"ReloadRuleset", "governance"},
      {"GetDecision", "auditor"},
      {"VerifyAudit", "auditor"}};
  const std::vector<std::pair<std::string, std::string>> callers = {
      {"", "none"},
      {kUnknownToken, "bad token"},
      {kEvaluatorToken, "evaluator"},
      {kGovernanceToken, "governance"},
      {kAuditorToken, "auditor"}};
  for (const auto& [method, role] : role_of) {
    for (const auto& [token, who] : callers) {
      grpc::Status status;
      if (method == "ValidateRuleset") {
        v1::ValidateRulesetRequest request;
        request.set_path(f.bundle.string());
        v1::ValidateRulesetResponse response;
        status = Validate(f.channel, request, &response, token);
        if (status.ok()) {
          EXPECT_TRUE(response.ok());
          EXPECT_EQ(response.tests_size(), 5);
        }
      } else if (method == "ReloadRuleset") {
        v1::ReloadRulesetResponse response;
        status = Reload(f.channel, &response, token);
        if (status.ok()) {
          EXPECT_FALSE(response.activated());  // nothing changed on disk
          EXPECT_TRUE(response.validation().ok());
          EXPECT_EQ(response.active().sha256(), first.ruleset().sha256());
        }
      } else if (method == "GetDecision") {
        v1::AuditRecord record;
        status = GetDecision(f.channel, first.decision_id(), &record, token);
        if (status.ok()) {
          EXPECT_EQ(record.decision_id(), first.decision_id());
          EXPECT_EQ(record.seq(), first.audit_seq());
          EXPECT_THAT(record.json(),
                      HasSubstr("\"principal\":\"ehr-gateway\""));
          EXPECT_THAT(record.json(), Not(HasSubstr("patient-first")));
        }
      } else {
        v1::VerifyAuditResponse response;
        status = VerifyAudit(f.channel, &response, token);
        if (status.ok()) {
          EXPECT_TRUE(response.ok()) << response.first_break();
          EXPECT_EQ(response.records_checked(), 2u);  // activation, decision
          EXPECT_EQ(response.head_hash().size(), 64u);
        }
      }
      const std::string what =
          absl::StrCat(method, " by ", who, ": ", status.error_message());
      if (who == "none" || who == "bad token") {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << what;
      } else if (who == role) {
        EXPECT_TRUE(status.ok()) << what;
      } else {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << what;
      }
      EXPECT_THAT(status.error_message(),
                  Not(HasSubstr(token.empty() ? "\x01" : token)))
          << what;
    }
  }

  // Bad arguments and absent records.
  v1::AuditRecord record;
  EXPECT_EQ(GetDecision(f.channel, "", &record).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(
      GetDecision(f.channel, "0193aaaa-0000-7000-8000-000000000000", &record)
          .error_code(),
      grpc::StatusCode::NOT_FOUND);
  v1::ValidateRulesetResponse validation;
  EXPECT_EQ(Validate(f.channel, v1::ValidateRulesetRequest(), &validation)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A candidate sent inline, with a mistake: every diagnostic comes back at
  // file:line:column, and nothing is activated.
  v1::ValidateRulesetRequest inline_request;
  auto& files = *inline_request.mutable_inline_()->mutable_files();
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(f.bundle)) {
    if (!entry.is_regular_file()) continue;
    files[std::filesystem::relative(entry.path(), f.bundle).string()] =
        ReadText(entry.path());
  }
  files["ruleset.yaml"] = absl::StrReplaceAll(
      files["ruleset.yaml"], {{"mood.total >= 6", "mood.totl >= 6"}});
  ASSERT_TRUE(Validate(f.channel, inline_request, &validation).ok());
  EXPECT_FALSE(validation.ok());
  ASSERT_GE(validation.diagnostics_size(), 1);
  EXPECT_EQ(validation.diagnostics(0).file(), "ruleset.yaml");
  EXPECT_GT(validation.diagnostics(0).line(), 0);
  EXPECT_GT(validation.diagnostics(0).column(), 0);
  EXPECT_THAT(validation.diagnostics(0).message(), HasSubstr("mood.totl"));
  EXPECT_EQ(GetRuleset(f.channel).sha256(), first.ruleset().sha256());

  // Health names the service; the calls are counted per method.
  {
    auto health = grpc::health::v1::Health::NewStub(f.channel);
    grpc::ClientContext context;
    Prepare(&context, "");
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("stepwise.v1.GovernanceService");
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status(),
              grpc::health::v1::HealthCheckResponse::SERVING);
  }
  const std::string metrics = Metrics(*f.server);
  EXPECT_THAT(metrics, HasSubstr("stepwise_rpc_total{method=\"VerifyAudit\","
                                 "code=\"OK\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_rpc_total{method=\"GetDecision\","
                                 "code=\"NOT_FOUND\"} 1\n"));
  EXPECT_THAT(metrics,
              HasSubstr("stepwise_auth_failures_total{reason=\"missing_role\","
                        "method=\"ReloadRuleset\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_ruleset_reloads_total{trigger="
                                 "\"rpc\",result=\"unchanged\"} 1\n"));
  Stop(*f.server);
  const std::string err = f.server->Stderr();
  for (const char* token :
       {kEvaluatorToken, kGovernanceToken, kAuditorToken, kUnknownToken}) {
    EXPECT_THAT(err, Not(HasSubstr(token)));
    EXPECT_THAT(metrics, Not(HasSubstr(token)));
  }
  EXPECT_THAT(err, HasSubstr("reload by rpc (governance-board): unchanged"));
  EXPECT_THAT(err, Not(HasSubstr("patient-")));
  EXPECT_TRUE(AuditVerifies(f.audit_dir));
}

// Reloads by RPC and by SIGHUP, good and bad, while four clients keep
// evaluating: not one call fails, each decision names a bundle that was
// active, and the log shows every activation before the decisions made
// under it.
TEST(GovernanceTest, ADuplicateAfterAReloadGetsTheFirstDecision) {
  // The idempotency cache rebuilds a duplicate's answer under the bundle
  // that first decided, not the one active now.
  Fixture f = StartWithTokens("gov-dup-reload");
  ASSERT_NE(f.server, nullptr);
  v1::Decision first;
  ASSERT_TRUE(Evaluate(f.channel, MoodRequest("dup", 3, 3, 1), &first).ok());
  ASSERT_EQ(first.ruleset().version(), "1.0.0");

  Replace(f.bundle / "ruleset.yaml", "version: 1.0.0", "version: 1.0.1");
  v1::ReloadRulesetResponse r;
  ASSERT_TRUE(Reload(f.channel, &r).ok());
  ASSERT_TRUE(r.activated()) << r.DebugString();

  v1::Decision again, fresh;
  ASSERT_TRUE(Evaluate(f.channel, MoodRequest("dup", 3, 3, 1), &again).ok());
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  ASSERT_TRUE(Evaluate(f.channel, MoodRequest("new", 3, 3, 1), &fresh).ok());
  EXPECT_EQ(fresh.ruleset().version(), "1.0.1");
  f.server->Signal(SIGTERM);
  EXPECT_EQ(f.server->Wait().value_or(-1), 0);
}

TEST(GovernanceTest, ReloadUnderLoadNeverFailsACall) {
  Fixture f = StartWithTokens("gov-reload");
  ASSERT_NE(f.server, nullptr);
  const std::filesystem::path ruleset = f.bundle / "ruleset.yaml";
  const std::filesystem::path cases = f.bundle / "tests" / "cases.yaml";
  const std::string original_ruleset = ReadText(ruleset);
  const std::string original_cases = ReadText(cases);
  const std::string sha_100 = GetRuleset(f.channel).sha256();

  EvaluateLoad load(f.server->address());
  auto decisions_under = [&](const std::string& sha) {
    return load.decisions_under(sha);
  };
  ASSERT_TRUE(WaitFor([&] { return decisions_under(sha_100) >= 20; }));

  // 1. A good new version, by RPC.
  Replace(ruleset, "version: 1.0.0", "version: 1.0.1");
  v1::ReloadRulesetResponse r;
  ASSERT_TRUE(Reload(f.channel, &r).ok());
  ASSERT_TRUE(r.activated()) << r.DebugString();
  EXPECT_EQ(r.previous_sha256(), sha_100);
  EXPECT_EQ(r.active().version(), "1.0.1");
  const std::string sha_101 = r.active().sha256();
  ASSERT_TRUE(WaitFor([&] { return decisions_under(sha_101) >= 20; }));

  // 2. Bad YAML: refused at file:line:column; 1.0.1 keeps answering.
  WriteText(ruleset, original_ruleset + "unknown_key: 1\n");
  ASSERT_TRUE(Reload(f.channel, &r).ok());
  EXPECT_FALSE(r.activated());
  EXPECT_FALSE(r.validation().ok());
  ASSERT_GE(r.validation().diagnostics_size(), 1);
  EXPECT_EQ(r.validation().diagnostics(0).file(), "ruleset.yaml");
  EXPECT_GT(r.validation().diagnostics(0).line(), 0);
  EXPECT_GT(r.validation().diagnostics(0).column(), 0);
  EXPECT_EQ(r.active().sha256(), sha_101);

  // 3. A failing test case.
  WriteText(ruleset,
            absl::StrReplaceAll(original_ruleset,
                                {{"version: 1.0.0", "version: 1.0.3"},
                                 {"mood.total >= 6", "mood.total >= 8"}}));
  ASSERT_TRUE(Reload(f.channel, &r).ok());
  EXPECT_FALSE(r.activated());
  bool a_case_failed = false;
  for (const v1::TestCaseResult& t : r.validation().tests()) {
    if (!t.passed()) a_case_failed = true;
  }
  EXPECT_TRUE(a_case_failed) << r.DebugString();
  EXPECT_EQ(r.active().sha256(), sha_101);

  // 4. effective_from in the future.
  const int next_decade =
      absl::ToCivilYear(absl::Now(), absl::UTCTimeZone()).year() + 10;
  WriteText(ruleset,
            absl::StrReplaceAll(
                original_ruleset,
                {{"version: 1.0.0", "version: 1.0.4"},
                 {"approved_by: Service tests",
                  absl::StrCat("approved_by: Service tests\neffective_from: ",
                               next_decade, "-01-01")}}));
  ASSERT_TRUE(Reload(f.channel, &r).ok());
  EXPECT_FALSE(r.activated());
  ASSERT_GE(r.validation().diagnostics_size(), 1);
  EXPECT_THAT(r.validation().diagnostics(0).message(),
              HasSubstr("is in the future"));
  EXPECT_EQ(GetRuleset(f.channel).sha256(), sha_101);

  // 5. A good version by SIGHUP.
  WriteText(ruleset,
            absl::StrReplaceAll(original_ruleset,
                                {{"version: 1.0.0", "version: 1.0.2"}}));
  f.server->Signal(SIGHUP);
  std::string sha_102;
  ASSERT_TRUE(WaitFor([&] {
    const v1::RulesetInfo info = GetRuleset(f.channel);
    if (info.version() != "1.0.2") return false;
    sha_102 = info.sha256();
    return true;
  }));
  ASSERT_TRUE(WaitFor([&] { return decisions_under(sha_102) >= 20; }));

  // 6. A bad one by SIGHUP: refused, counted, 1.0.2 stays.
  WriteText(ruleset, "rules: [unterminated\n");
  f.server->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(Metrics(*f.server),
                             "stepwise_ruleset_reloads_total{trigger=\""
                             "signal\",result=\"refused\"} 1\n");
  }));
  EXPECT_EQ(GetRuleset(f.channel).sha256(), sha_102);

  // Verified while decisions are still being appended: up to the newest
  // durable record, never a false break at the tail being written.
  for (int round = 0; round < 5; ++round) {
    v1::VerifyAuditResponse verified;
    ASSERT_TRUE(VerifyAudit(f.channel, &verified).ok());
    EXPECT_TRUE(verified.ok()) << verified.first_break();
    EXPECT_GT(verified.records_checked(), 60u);
  }
  load.Stop();
  EXPECT_EQ(load.failures(), 0) << load.first_failure();
  EXPECT_EQ(load.shas(), (std::set<std::string>{sha_100, sha_101, sha_102}));

  const std::string metrics = Metrics(*f.server);
  EXPECT_THAT(metrics, HasSubstr("stepwise_ruleset_reloads_total{trigger="
                                 "\"rpc\",result=\"activated\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_ruleset_reloads_total{trigger="
                                 "\"rpc\",result=\"refused\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_ruleset_reloads_total{trigger="
                                 "\"signal\",result=\"activated\"} 1\n"));
  EXPECT_THAT(metrics,
              HasSubstr(absl::StrCat("sha256=\"", sha_102, "\"} 1\n")));
  EXPECT_THAT(metrics, Not(HasSubstr(absl::StrCat("sha256=\"", sha_101))));
  Stop(*f.server);

  // The log: three activations, each naming who asked and what it replaced,
  // and every decision after the activation of the bundle that made it.
  const std::string err = f.server->Stderr();
  EXPECT_THAT(err, HasSubstr("reload by rpc (governance-board): activated "
                             "service-test 1.0.1"));
  EXPECT_THAT(err, HasSubstr("reload by rpc (governance-board): refused: "
                             "ruleset.yaml:"));
  EXPECT_THAT(err, HasSubstr("reload by signal (system): activated "
                             "service-test 1.0.2"));
  EXPECT_THAT(err, HasSubstr("reload by signal (system): refused"));
  EXPECT_TRUE(AuditVerifies(f.audit_dir));
  std::vector<std::string> activations;
  std::vector<std::string> principals;
  std::string active;
  std::set<std::string> activated;
  int decisions = 0;
  for (const service::audit::ParsedRecord& record : AllRecords(f.audit_dir)) {
    if (record.kind == "activation") {
      EXPECT_EQ(record.previous_sha256, active);
      active = record.ruleset.sha256();
      activated.insert(active);
      activations.push_back(active);
      principals.push_back(record.principal);
      EXPECT_THAT(record.json, HasSubstr("\"tests\":{\"passed\":5,"
                                         "\"failed\":0"));
    } else if (record.kind == "decision") {
      ++decisions;
      // Made under a bundle whose activation is already in the log (an
      // in-flight call may still carry the one just replaced).
      EXPECT_TRUE(activated.count(record.ruleset.sha256()))
          << record.decision_id;
    }
  }
  EXPECT_EQ(activations, (std::vector<std::string>{sha_100, sha_101, sha_102}));
  EXPECT_EQ(principals,
            (std::vector<std::string>{"system", "governance-board", "system"}));
  EXPECT_GT(decisions, 60);
}

// A shadow bundle: evaluated beside the active one, its differences counted
// and audited, the answers exactly those of a server without it.
TEST(GovernanceTest, ShadowModeRecordsDifferencesAndNeverChangesAnswers) {
  const std::string dir = NewTempDir("gov-shadow");
  // The candidate steps up one point earlier, knows no flags (so a flagged
  // request is bad input to it) and fails a test case of its own, which does
  // not keep it from shadowing.
  const std::filesystem::path shadow = CopyBundle(dir, "shadow");
  Replace(shadow / "ruleset.yaml", "mood.total >= 6", "mood.total >= 5");
  Replace(shadow / "ruleset.yaml", "version: 1.0.0", "version: 2.0.0-rc1");
  Replace(shadow / "ruleset.yaml",
          "flags:\n  - {id: red_flag, description: A test flag.}\n", "");
  Replace(shadow / "tests" / "cases.yaml",
          "expect: {action: REFER, step: 1, matched: [T-FLAG], refer_to: "
          "[test_clinic]}",
          "expect: {action: REFER, step: 1, matched: []}");
  {
    const std::string text = ReadText(shadow / "ruleset.yaml");
    const size_t begin = text.find("  - id: T-FLAG");
    const size_t end = text.find("default:");
    ASSERT_NE(begin, std::string::npos);
    WriteText(shadow / "ruleset.yaml",
              text.substr(0, begin) + text.substr(end));
  }

  Fixture plain = StartWithTokens("gov-shadow-plain");
  Fixture shadowed =
      StartWithTokens("gov-shadow-on", {"--shadow-bundle", shadow.string()});
  ASSERT_NE(plain.server, nullptr);
  ASSERT_NE(shadowed.server, nullptr);

  v1::EvaluateRequest flagged = MoodRequest("flagged", 0, 0, 0);
  flagged.add_flags("red_flag");
  const std::vector<v1::EvaluateRequest> requests = {
      MoodRequest("same-up", 3, 3, 1),      // both STEP_UP
      MoodRequest("differs", 2, 2, 1),      // STAY vs STEP_UP
      flagged,                              // REFER vs rejected
      MoodRequest("same-urgent", 0, 0, 3),  // both URGENT_SAFETY
  };
  std::map<std::string, std::string> decision_of;
  for (const v1::EvaluateRequest& request : requests) {
    v1::Decision a;
    v1::Decision b;
    ASSERT_TRUE(Evaluate(plain.channel, request, &a).ok());
    ASSERT_TRUE(Evaluate(shadowed.channel, request, &b).ok());
    decision_of[request.request_id()] = b.decision_id();
    for (v1::Decision* d : {&a, &b}) {
      d->clear_decision_id();
      d->clear_evaluated_at();
      d->clear_audit_seq();
    }
    EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString())
        << request.request_id() << "\n"
        << a.DebugString() << "\n"
        << b.DebugString();
  }

  const std::string metrics = Metrics(*shadowed.server);
  EXPECT_THAT(metrics, HasSubstr("stepwise_shadow_decisions_total{result="
                                 "\"same\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_shadow_decisions_total{result="
                                 "\"differs\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_shadow_decisions_total{result="
                                 "\"rejected\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_shadow_ruleset_info{name=\"service-"
                                 "test\",version=\"2.0.0-rc1\""));
  EXPECT_THAT(Metrics(*plain.server),
              HasSubstr("stepwise_shadow_decisions_total{result=\"differs\"} "
                        "0\n"));
  Stop(*plain.server);
  Stop(*shadowed.server);
  EXPECT_THAT(shadowed.server->Stderr(),
              HasSubstr("shadow: service-test 2.0.0-rc1"));
  EXPECT_THAT(shadowed.server->Stderr(), HasSubstr("4 of 5 test cases pass"));

  // Two shadow records, each right after the decision it accompanies.
  EXPECT_TRUE(AuditVerifies(shadowed.audit_dir));
  const auto records = AllRecords(shadowed.audit_dir);
  std::map<std::string, service::audit::ParsedRecord> shadows;
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].kind != "shadow") continue;
    shadows[records[i].decision_id] = records[i];
    ASSERT_GT(i, 0u);
    EXPECT_EQ(records[i - 1].kind, "decision");
    EXPECT_EQ(records[i - 1].decision_id, records[i].decision_id);
  }
  ASSERT_EQ(shadows.size(), 2u);
  const auto& differs = shadows.at(decision_of.at("differs"));
  EXPECT_EQ(differs.decision.action(), v1::STEP_UP);
  EXPECT_EQ(differs.ruleset.version(), "2.0.0-rc1");
  EXPECT_EQ(differs.principal, "ehr-gateway");
  const auto& rejected = shadows.at(decision_of.at("flagged"));
  EXPECT_EQ(rejected.decision.action(), v1::ACTION_UNSPECIFIED);
  ASSERT_GE(rejected.decision.warnings_size(), 1);
  EXPECT_THAT(rejected.decision.warnings(0), HasSubstr("rejected: flags"));
  EXPECT_THAT(ReadAuditSegments(shadowed.audit_dir),
              Not(HasSubstr("patient-")));
  EXPECT_TRUE(AuditVerifies(plain.audit_dir));
}

// --watch-bundle: every save of new content asks for a reload; a broken
// save is refused and reported, the next good one activates.
TEST(GovernanceTest, AWatchedFolderReloadsOnANewContent) {
  Fixture f = StartWithTokens("gov-watch", {"--watch-bundle"});
  ASSERT_NE(f.server, nullptr);
  const std::filesystem::path ruleset = f.bundle / "ruleset.yaml";
  const std::string original = ReadText(ruleset);
  auto version_is = [&](const std::string& version) {
    return WaitFor([&] { return GetRuleset(f.channel).version() == version; });
  };
  auto metric_is = [&](const std::string& line) {
    return WaitFor([&] { return absl::StrContains(Metrics(*f.server), line); });
  };
  EvaluateLoad load(f.server->address());
  auto decisions_under_active = [&] {
    return WaitFor([&] {
      return load.decisions_under(GetRuleset(f.channel).sha256()) >= 20;
    });
  };
  ASSERT_TRUE(decisions_under_active());

  WriteText(ruleset, absl::StrReplaceAll(
                         original, {{"version: 1.0.0", "version: 1.0.1"}}));
  ASSERT_TRUE(version_is("1.0.1"));
  ASSERT_TRUE(decisions_under_active());
  WriteText(ruleset, original + "unknown_key: 1\n");
  ASSERT_TRUE(
      metric_is("stepwise_ruleset_reloads_total{trigger=\"watch\","
                "result=\"refused\"} 1\n"));
  EXPECT_EQ(GetRuleset(f.channel).version(), "1.0.1");
  // A save of a file that leaves the content as it was asks for nothing.
  std::filesystem::last_write_time(
      ruleset,
      std::filesystem::last_write_time(ruleset) + std::chrono::seconds(1));
  WriteText(ruleset, absl::StrReplaceAll(
                         original, {{"version: 1.0.0", "version: 1.0.2"}}));
  ASSERT_TRUE(version_is("1.0.2"));
  ASSERT_TRUE(decisions_under_active());
  load.Stop();
  EXPECT_EQ(load.failures(), 0) << load.first_failure();
  EXPECT_EQ(load.shas().size(), 3u);  // 1.0.0, 1.0.1, 1.0.2
  const std::string metrics = Metrics(*f.server);
  EXPECT_THAT(metrics, HasSubstr("stepwise_ruleset_reloads_total{trigger="
                                 "\"watch\",result=\"activated\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_ruleset_reloads_total{trigger="
                                 "\"watch\",result=\"refused\"} 1\n"));
  Stop(*f.server);
  EXPECT_THAT(f.server->Stderr(),
              HasSubstr("reload by watch (system): activated service-test "
                        "1.0.2"));
  int watch_activations = 0;
  for (const auto& record : AllRecords(f.audit_dir)) {
    if (record.kind == "activation" &&
        absl::StrContains(record.json, "\"trigger\":\"watch\"")) {
      EXPECT_EQ(record.principal, "system");
      ++watch_activations;
    }
  }
  EXPECT_EQ(watch_activations, 2);
  EXPECT_TRUE(AuditVerifies(f.audit_dir));
}

// `stepwise call --rpc` for governance staff and auditors.
TEST(GovernanceTest, StepwiseCallReachesEveryGovernanceMethod) {
  Fixture f = StartWithTokens("gov-cli");
  ASSERT_NE(f.server, nullptr);
  v1::Decision first;
  ASSERT_TRUE(Evaluate(f.channel, MoodRequest("cli", 3, 3, 1), &first).ok());
  const std::string address = f.server->address();
  auto file = [&](const std::string& name, const std::string& text) {
    const std::string path = f.dir + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), 0600);
    return path;
  };
  const std::string governance = file("governance.token", kGovernanceToken);
  const std::string auditor = file("auditor.token", kAuditorToken);
  auto call = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"call", address});
    return RunCommand(kStepwiseBin, args);
  };

  CommandResult r = call({"--rpc", "VerifyAudit", "--token-file", auditor});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"recordsChecked\": \"2\""));
  r = call({"--rpc", "GetDecision",
            file("get.json", absl::StrCat("{\"decisionId\": \"",
                                          first.decision_id(), "\"}")),
            "--token-file", auditor});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(first.decision_id()));
  r = call({"--rpc", "ValidateRuleset",
            file("validate.json",
                 absl::StrCat("{\"path\": \"", f.bundle.string(), "\"}")),
            "--token-file", governance});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"ok\": true"));
  r = call({"--rpc", "ReloadRuleset", "--token-file", governance});
  EXPECT_EQ(r.exit_code, 0) << r.err;  // unchanged
  EXPECT_THAT(r.out, Not(HasSubstr("\"activated\": true")));

  // A refused reload is a failed check; a missing role an error; a bad
  // method name or an Evaluate without its request a usage error.
  std::ofstream(f.bundle / "ruleset.yaml", std::ios::app) << "unknown_key: 1\n";
  r = call({"--rpc", "ReloadRuleset", "--token-file", governance});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("unknown_key"));
  r = call({"--rpc", "ReloadRuleset", "--token-file", auditor});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_EQ(call({"--rpc", "Reload"}).exit_code, 2);
  EXPECT_EQ(call({"--token-file", auditor}).exit_code, 2);
  // A request file that is not the request is a bad request (1), as for
  // Evaluate; one that does not exist is a usage error (2).
  r = call({"--rpc", "GetDecision", file("bad.json", "{\"decisionId\": "),
            "--token-file", auditor});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not a GetDecisionRequest"));
  EXPECT_EQ(call({"--rpc", "GetDecision", f.dir + "/no-such.json",
                  "--token-file", auditor})
                .exit_code,
            2);
  Stop(*f.server);
}

TEST(GovernanceTest, StartUpRefusesABundleNotYetInEffect) {
  const std::string dir = NewTempDir("gov-future");
  const std::filesystem::path bundle = CopyBundle(dir, "bundle");
  const int next_decade =
      absl::ToCivilYear(absl::Now(), absl::UTCTimeZone()).year() + 10;
  Replace(bundle / "ruleset.yaml", "approved_by: Service tests",
          absl::StrCat("approved_by: Service tests\neffective_from: ",
                       next_decade, "-01-01"));
  const CommandResult r = RunCommand(
      kServerBin, {"--bundle", bundle.string(), "--audit-dir", dir + "/audit",
                   "--port", "0", "--metrics-port", "-1"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("is not in effect yet: "
                                            "effective_from ",
                                            next_decade, "-01-01T00:00:00Z")));
}

}  // namespace
}  // namespace stepwise::testing
