// Integration tests of authentication, roles and TLS: the real
// stepwise-server binary on port 0, real gRPC clients, certificates made in
// the test by a throwaway CA, the audit log read back with the audit reader.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "http_get.h"
#include "server_process.h"
#include "service/audit/file_system.h"
#include "service/audit/reader.h"
#include "service/audit/record.h"
#include "service/auth/credential_files.h"
#include "stepwise/v1/service.grpc.pb.h"
#include "test_certs.h"
#include "test_tokens.h"

namespace stepwise::testing {
namespace {

using ::stepwise::service::auth::TokenSha256Hex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kServerBin[] = STEPWISE_SERVER_BIN;
constexpr char kStepwiseBin[] = STEPWISE_BIN;
constexpr char kTestBundle[] = STEPWISE_TEST_BUNDLE;

// One token per role, one with every role, and one the server never saw.
constexpr char kEvaluatorToken[] = "it-ev-Jm4Qx8Lz2Wn6Rb0Tc5Yh9Pk3Vs7Df1Ga";
constexpr char kGovernanceToken[] = "it-gv-Nd7Fj1Ks5Wq9Ze3Xr8Ty2Uc6Ib0Om4Pl";
constexpr char kAuditorToken[] = "it-au-Hq2Ws6Ed0Rf4Tg8Yh3Uj7Ik1Ol5Pz9Xa";
constexpr char kEveryRoleToken[] = "it-op-Bv5Nc9Mx3Lk7Jh1Gf6Ds0Ap4Qw8Er2Ty";
constexpr char kUnknownToken[] = "it-xx-Zz1Yy2Xx3Ww4Vv5Uu6Tt7Ss8Rr9Qq0Pp";

std::vector<std::string> AllTokens() {
  return {kEvaluatorToken, kGovernanceToken, kAuditorToken, kEveryRoleToken,
          kUnknownToken};
}

std::string SuiteTokensYaml() {
  return TokensYaml({{kEvaluatorToken, "ehr-gateway", {"evaluator"}},
                     {kGovernanceToken, "governance-board", {"governance"}},
                     {kAuditorToken, "audit-office", {"auditor"}},
                     {kEveryRoleToken,
                      "operations",
                      {"evaluator", "governance", "auditor"}}});
}

// Certificates and files shared by every test of the suite, made once.
struct Pki {
  std::string dir;
  std::unique_ptr<TestCa> ca;
  std::unique_ptr<TestCa> rogue_ca;  // trusted by nobody
  KeyAndCert server;
  KeyAndCert ehr_client;    // CN mapped to an evaluator
  KeyAndCert board_client;  // SAN URI mapped to governance + auditor
  KeyAndCert stranger;      // valid chain, not in the mapping
  KeyAndCert rogue_client;  // the EHR's CN, from the wrong CA
  std::string ca_file, server_cert_file, server_key_file, tokens_file,
      certs_file;
};

Pki* pki = nullptr;

class AuthIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki = new Pki();
    Pki& p = *pki;
    p.dir = MakeTestDir("auth-it");
    p.ca = std::make_unique<TestCa>("stepwise integration CA");
    p.rogue_ca = std::make_unique<TestCa>("rogue CA");
    p.server = p.ca->Issue(ServerSpec());
    p.ehr_client = p.ca->Issue(ClientSpec("ehr-gateway.clinic.test"));
    p.board_client = p.ca->Issue(ClientSpec(
        "Governance Board Console", {}, {"spiffe://clinic.test/governance"}));
    p.stranger = p.ca->Issue(ClientSpec("Jane Stranger"));
    p.rogue_client = p.rogue_ca->Issue(ClientSpec("ehr-gateway.clinic.test"));
    p.ca_file = WriteTestFile(p.dir, "ca.crt", p.ca->cert_pem(), 0644);
    p.server_cert_file =
        WriteTestFile(p.dir, "server.crt", p.server.cert_pem, 0644);
    p.server_key_file = WriteTestFile(p.dir, "server.key", p.server.key_pem);
    p.tokens_file = WriteTestFile(p.dir, "tokens.yaml", SuiteTokensYaml());
    p.certs_file = WriteTestFile(p.dir, "client-certs.yaml",
                                 "client_certs:\n"
                                 "  - common_name: ehr-gateway.clinic.test\n"
                                 "    principal: ehr-gateway-mtls\n"
                                 "    roles: [evaluator]\n"
                                 "  - san: spiffe://clinic.test/governance\n"
                                 "    principal: governance-console\n"
                                 "    roles: [governance, auditor]\n",
                                 0644);
  }
  static void TearDownTestSuite() {
    delete pki;
    pki = nullptr;
  }

  static std::vector<std::string> Args(const std::string& audit_dir,
                                       std::vector<std::string> extra) {
    std::vector<std::string> args = {
        "--bundle",         kTestBundle, "--audit-dir",    audit_dir,
        "--port",           "0",         "--metrics-port", "0",
        "--shutdown-grace", "30s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  static std::unique_ptr<ServerProcess> Start(const std::string& audit_dir,
                                              std::vector<std::string> extra) {
    auto server = ServerProcess::Start(kServerBin, Args(audit_dir, extra));
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  static void Stop(ServerProcess& server) {
    server.Signal(SIGTERM);
    absl::StatusOr<int> status = server.Wait();
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status)) << server.Stderr();
    EXPECT_EQ(WEXITSTATUS(*status), 0) << server.Stderr();
  }
};

std::shared_ptr<grpc::Channel> Plaintext(const ServerProcess& server) {
  return grpc::CreateChannel(server.address(),
                             grpc::InsecureChannelCredentials());
}

// TLS to "localhost" (the server certificate's name), trusting `ca_pem`,
// presenting `client` when given.
std::shared_ptr<grpc::Channel> Tls(const ServerProcess& server,
                                   const std::string& ca_pem,
                                   const KeyAndCert* client = nullptr) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_pem;
  if (client != nullptr) {
    options.pem_private_key = client->key_pem;
    options.pem_cert_chain = client->cert_pem;
  }
  return grpc::CreateChannel(absl::StrCat("localhost:", server.port()),
                             grpc::SslCredentials(options));
}

grpc::Status Evaluate(const std::shared_ptr<grpc::Channel>& channel,
                      const std::string& authorization,
                      const std::string& request_id,
                      v1::Decision* decision = nullptr) {
  auto stub = v1::DecisionService::NewStub(channel);
  grpc::ClientContext context;
  PrepareCall(&context, authorization);
  v1::Decision ignored;
  return stub->Evaluate(&context, MoodRequest(request_id, 3, 3, 1),
                        decision != nullptr ? decision : &ignored);
}

// One call of `method` (a short name) with `authorization` ("" for none).
// `decision_id` names an audited decision for GetDecision.
grpc::Status CallRpc(const std::shared_ptr<grpc::Channel>& channel,
                     const std::string& method,
                     const std::string& authorization,
                     const std::string& decision_id) {
  static int request_number = 0;
  grpc::ClientContext context;
  PrepareCall(&context, authorization);
  if (method == "Evaluate") {
    return Evaluate(channel, authorization,
                    absl::StrCat("matrix-", request_number++));
  }
  if (method == "GetRuleset") {
    v1::RulesetInfo info;
    return v1::DecisionService::NewStub(channel)->GetRuleset(
        &context, v1::GetRulesetRequest(), &info);
  }
  auto governance = v1::GovernanceService::NewStub(channel);
  if (method == "ValidateRuleset") {
    v1::ValidateRulesetRequest request;
    request.set_path(kTestBundle);
    v1::ValidateRulesetResponse response;
    return governance->ValidateRuleset(&context, request, &response);
  }
  if (method == "ReloadRuleset") {
    v1::ReloadRulesetResponse response;
    return governance->ReloadRuleset(&context, v1::ReloadRulesetRequest(),
                                     &response);
  }
  if (method == "GetDecision") {
    v1::GetDecisionRequest request;
    request.set_decision_id(decision_id);
    v1::AuditRecord record;
    return governance->GetDecision(&context, request, &record);
  }
  if (method == "VerifyAudit") {
    v1::VerifyAuditResponse response;
    return governance->VerifyAudit(&context, v1::VerifyAuditRequest(),
                                   &response);
  }
  ADD_FAILURE() << "unknown method " << method;
  return grpc::Status::CANCELLED;
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(
    const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  PrepareCall(&context, "");
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status =
      stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

// One ServerReflectionInfo exchange without credentials, through the generic
// stub: list_services (field 7, empty). The raw response bytes name the
// services.
std::string ListServicesByReflection(
    const std::shared_ptr<grpc::Channel>& channel, grpc::Status* status) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  PrepareCall(&context, "");
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(
      &context,
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto step = [&cq](int expected) {
    void* tag = nullptr;
    bool ok = false;
    const auto deadline = absl::ToChronoTime(absl::Now() + absl::Seconds(30));
    if (cq.AsyncNext(&tag, &ok, deadline) != grpc::CompletionQueue::GOT_EVENT) {
      return false;
    }
    EXPECT_EQ(tag, reinterpret_cast<void*>(static_cast<intptr_t>(expected)));
    return ok;
  };
  auto tag = [](int n) {
    return reinterpret_cast<void*>(static_cast<intptr_t>(n));
  };
  std::string bytes;
  call->StartCall(tag(1));
  if (step(1)) {
    const char request[] = {0x3a, 0x00};
    grpc::Slice slice(request, sizeof(request));
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, tag(2));
    step(2);
    call->WritesDone(tag(3));
    step(3);
    grpc::ByteBuffer response;
    call->Read(&response, tag(4));
    if (step(4)) {
      std::vector<grpc::Slice> slices;
      if (response.Dump(&slices).ok()) {
        for (const grpc::Slice& s : slices) {
          bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
        }
      }
    }
  }
  call->Finish(status, tag(5));
  step(5);
  cq.Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (cq.Next(&ignored_tag, &ignored_ok)) {
  }
  return bytes;
}

// The principal of every decision record in `audit_dir`, by decision id.
std::map<std::string, std::string> DecisionPrincipals(
    const std::string& audit_dir) {
  std::map<std::string, std::string> principals;
  const absl::Status status = service::audit::ForEachRecord(
      *service::audit::DefaultFileSystem(), audit_dir,
      [&](const service::audit::RecordRef& ref) -> absl::Status {
        absl::StatusOr<service::audit::ParsedRecord> record =
            service::audit::ParseRecord(ref.json);
        if (!record.ok()) return record.status();
        if (record->kind == "decision") {
          principals[record->decision_id] = record->principal;
        }
        return absl::OkStatus();
      });
  EXPECT_TRUE(status.ok()) << status;
  return principals;
}

std::string Metrics(const ServerProcess& server) {
  return HttpGet(server.metrics_port(), "/metrics");
}

void ExpectNoSecrets(const std::string& where, const std::string& text) {
  for (const std::string& token : AllTokens()) {
    EXPECT_THAT(text, Not(HasSubstr(token))) << where;
    EXPECT_THAT(text, Not(HasSubstr(TokenSha256Hex(token)))) << where;
  }
}

// Every RPC x every kind of caller, over plaintext on loopback with bearer
// tokens: the role table as the binary enforces it.
TEST_F(AuthIntegrationTest, EveryRpcAndEveryCaller) {
  const std::string audit_dir = MakeTestDir("auth-matrix");
  auto server = Start(audit_dir, {"--tokens-file", pki->tokens_file});
  ASSERT_NE(server, nullptr);
  auto channel = Plaintext(*server);

  v1::Decision first;
  ASSERT_TRUE(Evaluate(channel, Bearer(kEvaluatorToken), "first", &first).ok());

  struct Rpc {
    const char* method;
    const char* role;
  };
  const std::vector<Rpc> rpcs = {
      {"Evaluate", "evaluator"},         {"GetRuleset", "evaluator"},
      {"ValidateRuleset", "governance"}, {"ReloadRuleset", "governance"},
      {"GetDecision", "auditor"},        {"VerifyAudit", "auditor"}};
  struct Caller {
    const char* name;
    std::string authorization;
    const char* role;  // "" none, "*" every role
  };
  const std::vector<Caller> callers = {
      {"no credentials", "", ""},
      {"unknown token", Bearer(kUnknownToken), ""},
      {"not a bearer header", absl::StrCat("Basic ", kEvaluatorToken), ""},
      {"evaluator", Bearer(kEvaluatorToken), "evaluator"},
      {"governance", Bearer(kGovernanceToken), "governance"},
      {"auditor", Bearer(kAuditorToken), "auditor"},
      {"every role", Bearer(kEveryRoleToken), "*"},
  };
  int refused_unauthenticated = 0;
  for (const Rpc& rpc : rpcs) {
    for (const Caller& caller : callers) {
      const grpc::Status status = CallRpc(
          channel, rpc.method, caller.authorization, first.decision_id());
      const std::string what = absl::StrCat(rpc.method, " by ", caller.name,
                                            ": ", status.error_message());
      if (std::string(caller.role).empty()) {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << what;
        ++refused_unauthenticated;
      } else if (std::string(caller.role) == "*" ||
                 std::string(caller.role) == rpc.role) {
        EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << what;
        EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << what;
        // Each answers (ReloadRuleset: the bundle is unchanged).
        EXPECT_TRUE(status.ok()) << what;
      } else {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << what;
        EXPECT_THAT(status.error_message(),
                    HasSubstr(absl::StrCat("lacks the role '", rpc.role,
                                           "' that ", rpc.method, " requires")))
            << what;
      }
      // No answer ever repeats a credential.
      for (const std::string& token : AllTokens()) {
        EXPECT_THAT(status.error_message(), Not(HasSubstr(token))) << what;
      }
    }
  }

  // Health and reflection stay open: they reveal no decision.
  EXPECT_EQ(Health(channel), grpc::health::v1::HealthCheckResponse::SERVING);
  grpc::Status reflection;
  EXPECT_THAT(ListServicesByReflection(channel, &reflection),
              HasSubstr("stepwise.v1.DecisionService"));
  EXPECT_TRUE(reflection.ok()) << reflection.error_message();

  // Refusals are counted by reason and method, without principals.
  const std::string metrics = Metrics(*server);
  EXPECT_THAT(metrics, HasSubstr("stepwise_auth_failures_total{reason=\""
                                 "missing_credentials\",method=\"Evaluate\"} "
                                 "1\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_auth_failures_total{reason=\""
                                 "unknown_token\",method=\"GetRuleset\"} 1\n"));
  EXPECT_THAT(metrics,
              HasSubstr("stepwise_auth_failures_total{reason=\"malformed_"
                        "authorization\",method=\"Evaluate\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_auth_failures_total{reason=\""
                                 "missing_role\",method=\"Evaluate\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("stepwise_rpc_total{method=\"Evaluate\","
                                 "code=\"UNAUTHENTICATED\"} 3\n"));
  ExpectNoSecrets("metrics", metrics);

  Stop(*server);
  // Each refusal was logged, without the credential.
  const std::string err = server->Stderr();
  EXPECT_THAT(err, HasSubstr("stepwise-server: auth: 4 bearer tokens, 0 "
                             "client certificate mappings; TLS off"));
  ExpectNoSecrets("stderr", err);
  int log_lines = 0;
  for (size_t pos = 0;
       (pos = err.find("auth: UNAUTHENTICATED", pos)) != std::string::npos;
       ++pos) {
    ++log_lines;
  }
  EXPECT_EQ(log_lines, refused_unauthenticated);

  // The audit log names the authenticated principal of every decision.
  const std::string audit = ReadAuditSegments(audit_dir);
  ExpectNoSecrets("audit log", audit);
  const std::map<std::string, std::string> principals =
      DecisionPrincipals(audit_dir);
  ASSERT_TRUE(principals.count(first.decision_id()));
  EXPECT_EQ(principals.at(first.decision_id()), "ehr-gateway");
  std::set<std::string> names;
  for (const auto& [id, principal] : principals) names.insert(principal);
  EXPECT_EQ(names, (std::set<std::string>{"ehr-gateway", "operations"}));
  absl::StatusOr<service::audit::FoundRecord> found =
      service::audit::FindDecision(*service::audit::DefaultFileSystem(),
                                   audit_dir, first.decision_id());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->record.principal, "ehr-gateway");
}

TEST_F(AuthIntegrationTest, WithoutCredentialsConfiguredLoopbackIsAnonymous) {
  const std::string audit_dir = MakeTestDir("auth-anonymous");
  auto server = Start(audit_dir, {});
  ASSERT_NE(server, nullptr);
  v1::Decision decision;
  // A token sent to a server that has none configured is simply ignored.
  ASSERT_TRUE(Evaluate(Plaintext(*server), "", "anon-1", &decision).ok());
  v1::Decision with_token;
  ASSERT_TRUE(Evaluate(Plaintext(*server), Bearer(kEvaluatorToken), "anon-2",
                       &with_token)
                  .ok());
  Stop(*server);
  EXPECT_THAT(server->Stderr(),
              HasSubstr("no authentication configured: listening on loopback "
                        "only; every caller is \"anonymous\" with every role"));
  const auto principals = DecisionPrincipals(audit_dir);
  EXPECT_EQ(principals.at(decision.decision_id()), "anonymous");
  EXPECT_EQ(principals.at(with_token.decision_id()), "anonymous");
  ExpectNoSecrets("stderr", server->Stderr());
}

TEST_F(AuthIntegrationTest, NonLoopbackWithoutAuthenticationIsRefusedFirst) {
  for (const char* address : {"0.0.0.0", "::"}) {
    const std::string dir = MakeTestDir("auth-refused");
    const std::string audit_dir = dir + "/audit";
    std::vector<std::string> args = Args(audit_dir, {"--address", address});
    const CommandResult result = RunCommand(kServerBin, args);
    EXPECT_EQ(result.exit_code, 1) << result.err;
    EXPECT_THAT(result.err,
                HasSubstr(absl::StrCat(
                    "stepwise-server: cannot start: no authentication "
                    "configured, so the server listens on loopback only "
                    "(127.0.0.1, ::1, localhost), not on ",
                    address)));
    EXPECT_THAT(result.out, Not(HasSubstr("listening on")));
    // Refused before anything was opened: not even the audit folder exists.
    EXPECT_FALSE(std::filesystem::exists(audit_dir)) << address;
  }
}

TEST_F(AuthIntegrationTest, UnsafeCredentialFilesAreRefusedAtStartUp) {
  const std::string dir = MakeTestDir("auth-unsafe");
  const std::string readable =
      WriteTestFile(dir, "tokens.yaml", SuiteTokensYaml(), 0644);
  CommandResult result =
      RunCommand(kServerBin, Args(dir + "/a1", {"--tokens-file", readable}));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err,
              HasSubstr(absl::StrCat("cannot start: tokens_file: ", readable,
                                     ": mode 0644 lets group or others read "
                                     "it; chmod 0600")));

  // A token pasted where its hash belongs is refused and never echoed.
  const std::string pasted = WriteTestFile(
      dir, "pasted.yaml",
      absl::StrCat("tokens:\n  - sha256: ", kEvaluatorToken,
                   "\n    principal: ehr\n    roles: [evaluator]\n"));
  result = RunCommand(kServerBin, Args(dir + "/a2", {"--tokens-file", pasted}));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr(pasted + ":2:13: sha256: expected 64 hex "
                                             "digits"));
  ExpectNoSecrets("stderr", result.err);

  // Option combinations are usage errors.
  result = RunCommand(kServerBin,
                      Args(dir + "/a3", {"--tls-cert", pki->server_cert_file}));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("tls_cert and tls_key go together"));
  result = RunCommand(
      kServerBin, Args(dir + "/a4", {"--client-certs-file", pki->certs_file}));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("client_certs_file: needs tls_client_ca"));
}

// TLS with a server certificate only; callers authenticate with tokens.
TEST_F(AuthIntegrationTest, TlsServerCertificate) {
  const std::string audit_dir = MakeTestDir("auth-tls");
  auto server = Start(
      audit_dir, {"--tokens-file", pki->tokens_file, "--tls-cert",
                  pki->server_cert_file, "--tls-key", pki->server_key_file});
  ASSERT_NE(server, nullptr);
  auto channel = Tls(*server, pki->ca->cert_pem());
  v1::Decision decision;
  const grpc::Status ok =
      Evaluate(channel, Bearer(kEvaluatorToken), "tls-1", &decision);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(Evaluate(channel, "", "tls-2").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Evaluate(channel, Bearer(kAuditorToken), "tls-3").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Plaintext is not spoken, and a client that trusts another CA refuses
  // the server.
  EXPECT_EQ(Evaluate(Plaintext(*server), Bearer(kEvaluatorToken), "tls-4")
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Evaluate(Tls(*server, pki->rogue_ca->cert_pem()),
                     Bearer(kEvaluatorToken), "tls-5")
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  Stop(*server);
  EXPECT_THAT(server->Stderr(),
              HasSubstr("auth: 4 bearer tokens, 0 client certificate "
                        "mappings; TLS on"));
  EXPECT_EQ(DecisionPrincipals(audit_dir).at(decision.decision_id()),
            "ehr-gateway");
  ExpectNoSecrets("stderr", server->Stderr());
}

// Mutual TLS: the client certificate names the principal.
TEST_F(AuthIntegrationTest, MutualTlsMapsClientCertificates) {
  const std::string audit_dir = MakeTestDir("auth-mtls");
  auto server = Start(audit_dir,
                      {"--tokens-file", pki->tokens_file, "--client-certs-file",
                       pki->certs_file, "--tls-cert", pki->server_cert_file,
                       "--tls-key", pki->server_key_file, "--tls-client-ca",
                       pki->ca_file, "--require-client-cert"});
  ASSERT_NE(server, nullptr);
  const std::string ca = pki->ca->cert_pem();

  v1::Decision by_cert;
  grpc::Status status =
      Evaluate(Tls(*server, ca, &pki->ehr_client), "", "mtls-1", &by_cert);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // The governance console's certificate (mapped by SAN) may not evaluate.
  status = Evaluate(Tls(*server, ca, &pki->board_client), "", "mtls-2");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(),
            "principal 'governance-console' lacks the role 'evaluator' that "
            "Evaluate requires");

  // A valid certificate nobody mapped authenticates no one.
  status = Evaluate(Tls(*server, ca, &pki->stranger), "", "mtls-3");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(),
            "the client certificate is not mapped to a principal");

  // A token on a certified connection decides the principal.
  v1::Decision by_token;
  status = Evaluate(Tls(*server, ca, &pki->stranger), Bearer(kEveryRoleToken),
                    "mtls-4", &by_token);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // No certificate, or one from another CA: no handshake at all.
  EXPECT_EQ(Evaluate(Tls(*server, ca), Bearer(kEvaluatorToken), "mtls-5")
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(
      Evaluate(Tls(*server, ca, &pki->rogue_client), "", "mtls-6").error_code(),
      grpc::StatusCode::UNAVAILABLE);

  const std::string metrics = Metrics(*server);
  EXPECT_THAT(metrics,
              HasSubstr("stepwise_auth_failures_total{reason=\"unknown_"
                        "certificate\",method=\"Evaluate\"} 1\n"));
  Stop(*server);

  const auto principals = DecisionPrincipals(audit_dir);
  EXPECT_EQ(principals.at(by_cert.decision_id()), "ehr-gateway-mtls");
  EXPECT_EQ(principals.at(by_token.decision_id()), "operations");
  EXPECT_EQ(principals.size(), 2u);

  // The refusal names the certificate by fingerprint, never its holder.
  const std::string err = server->Stderr();
  EXPECT_THAT(err, HasSubstr("not mapped to a principal (certificate sha256 "));
  for (const std::string& text : {err, metrics, ReadAuditSegments(audit_dir)}) {
    EXPECT_THAT(text, Not(HasSubstr("Jane Stranger")));
    EXPECT_THAT(text, Not(HasSubstr("ehr-gateway.clinic.test")));
    ExpectNoSecrets("output", text);
  }
}

// `stepwise token new` makes a token the server accepts once its hash is in
// the tokens file, and `stepwise call` sends it, over TLS.
TEST_F(AuthIntegrationTest, CommandLineTokensAndCall) {
  const CommandResult made = RunCommand(kStepwiseBin, {"token", "new"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      made.out, m,
      std::regex("token: ([A-Za-z0-9_-]{43})\nsha256: ([0-9a-f]{64})\n")))
      << made.out;
  const std::string token = m[1];
  EXPECT_EQ(m[2], TokenSha256Hex(token));

  const std::string dir = MakeTestDir("auth-cli");
  const std::string tokens = WriteTestFile(
      dir, "tokens.yaml",
      absl::StrCat("tokens:\n  - sha256: ", m[2].str(),
                   "\n    principal: cli-user\n    roles: [evaluator]\n"));
  const std::string token_file = WriteTestFile(dir, "token", token + "\n");
  const std::string request = WriteTestFile(
      dir, "request.json",
      R"({"requestId": "cli-1", "subjectId": "patient-cli", "currentStep": 1,
          "weeksAtStep": 2, "asOf": "2026-11-20T12:00:00Z",
          "assessments": [{"instrument": "mood",
            "items": {"item1": 3, "item2": 3, "item3": 1},
            "administeredAt": "2026-11-20T09:00:00Z"}]})");
  const std::string audit_dir = dir + "/audit";
  auto server = Start(
      audit_dir, {"--tokens-file", tokens, "--tls-cert", pki->server_cert_file,
                  "--tls-key", pki->server_key_file});
  ASSERT_NE(server, nullptr);
  const std::string address = absl::StrCat("localhost:", server->port());

  CommandResult call =
      RunCommand(kStepwiseBin, {"call", address, request, "--tls-ca",
                                pki->ca_file, "--token-file", token_file});
  EXPECT_EQ(call.exit_code, 0) << call.err;
  EXPECT_THAT(call.out, HasSubstr("\"action\": \"STEP_UP\""));

  call = RunCommand(kStepwiseBin,
                    {"call", address, request, "--tls-ca", pki->ca_file});
  EXPECT_EQ(call.exit_code, 1);
  EXPECT_THAT(call.err, HasSubstr("UNAUTHENTICATED: no credentials"));

  // STEPWISE_TOKEN when no --token-file is given.
  setenv("STEPWISE_TOKEN", kUnknownToken, 1);
  call = RunCommand(kStepwiseBin,
                    {"call", address, request, "--tls-ca", pki->ca_file});
  unsetenv("STEPWISE_TOKEN");
  EXPECT_EQ(call.exit_code, 1);
  EXPECT_THAT(call.err, HasSubstr("UNAUTHENTICATED: the bearer token is not "
                                  "valid for this server"));
  EXPECT_THAT(call.err, Not(HasSubstr(kUnknownToken)));

  Stop(*server);
  const auto principals = DecisionPrincipals(audit_dir);
  ASSERT_EQ(principals.size(), 1u);
  EXPECT_EQ(principals.begin()->second, "cli-user");
  const std::string err = server->Stderr();
  EXPECT_THAT(err, Not(HasSubstr(token)));
  EXPECT_THAT(err, Not(HasSubstr(m[2].str())));
}

TEST_F(AuthIntegrationTest, StepwiseCallWithAClientCertificate) {
  const std::string dir = MakeTestDir("auth-cli-mtls");
  const std::string cert =
      WriteTestFile(dir, "client.crt", pki->ehr_client.cert_pem, 0644);
  const std::string key =
      WriteTestFile(dir, "client.key", pki->ehr_client.key_pem);
  const std::string request = WriteTestFile(
      dir, "request.json",
      R"({"requestId": "cli-m", "subjectId": "patient-m", "currentStep": 1,
          "weeksAtStep": 2, "asOf": "2026-11-20T12:00:00Z",
          "assessments": [{"instrument": "mood",
            "items": {"item1": 0, "item2": 0, "item3": 0},
            "administeredAt": "2026-11-20T09:00:00Z"}]})");
  const std::string audit_dir = dir + "/audit";
  auto server = Start(
      audit_dir, {"--client-certs-file", pki->certs_file, "--tls-cert",
                  pki->server_cert_file, "--tls-key", pki->server_key_file,
                  "--tls-client-ca", pki->ca_file, "--require-client-cert"});
  ASSERT_NE(server, nullptr);
  const CommandResult call = RunCommand(
      kStepwiseBin,
      {"call", absl::StrCat("localhost:", server->port()), request, "--tls-ca",
       pki->ca_file, "--tls-cert", cert, "--tls-key", key});
  EXPECT_EQ(call.exit_code, 0) << call.err;
  Stop(*server);
  const auto principals = DecisionPrincipals(audit_dir);
  ASSERT_EQ(principals.size(), 1u);
  EXPECT_EQ(principals.begin()->second, "ehr-gateway-mtls");
}

}  // namespace
}  // namespace stepwise::testing
