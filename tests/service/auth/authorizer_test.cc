#include "service/auth/authorizer.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/metrics.h"
#include "test_certs.h"

namespace stepwise::service::auth {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kEvaluatorToken[] = "ev-7QmZk2Jx9Lw4Rt8Yp1Vn6Bc3Hs5Dg0Fa";
constexpr char kGovernanceToken[] = "gv-4Nc8Wq1Ze7Ty3Ui9Op2As6Df0Gh5Jk";
constexpr char kAuditorToken[] = "au-2Lz6Xc0Vb4Nm8Qw3Er7Ty1Ui5Op9As";
constexpr char kEveryRoleToken[] = "ad-9Pl3Ok7Ij1Uh5Yg0Tf4Rd8Es2Wa6Qz";
constexpr char kUnknownToken[] = "xx-1Aa2Bb3Cc4Dd5Ee6Ff7Gg8Hh9Ii0Jj";

TokenEntry Token(const std::string& token, const std::string& principal,
                 std::vector<Role> roles) {
  TokenEntry entry;
  entry.sha256 = TokenSha256(token);
  entry.principal = principal;
  for (Role r : roles) entry.roles.Add(r);
  return entry;
}

CertEntry Cert(CertEntry::Field field, const std::string& value,
               const std::string& principal, std::vector<Role> roles) {
  CertEntry entry;
  entry.field = field;
  entry.value = value;
  entry.principal = principal;
  for (Role r : roles) entry.roles.Add(r);
  return entry;
}

class AuthorizerTest : public ::testing::Test {
 protected:
  AuthorizerTest() {
    AuthorizerOptions options;
    options.tokens = {
        Token(kEvaluatorToken, "ehr", {Role::kEvaluator}),
        Token(kGovernanceToken, "gov", {Role::kGovernance}),
        Token(kAuditorToken, "aud", {Role::kAuditor}),
        Token(kEveryRoleToken, "ops",
              {Role::kEvaluator, Role::kGovernance, Role::kAuditor}),
    };
    options.client_certs = {
        Cert(CertEntry::Field::kCommonName, "gw.clinic.example", "ehr-gw",
             {Role::kEvaluator}),
        Cert(CertEntry::Field::kSubjectAltName, "spiffe://clinic/gov",
             "gov-console", {Role::kGovernance, Role::kAuditor}),
        Cert(CertEntry::Field::kSubjectAltName, "gw.clinic.example", "twin",
             {Role::kEvaluator}),
    };
    options.registry = &registry_;
    options.log = [this](const std::string& line) {
      absl::MutexLock lock(&mu_);
      log_.push_back(line);
    };
    authorizer_ = std::make_unique<Authorizer>(std::move(options));
  }

  static CallerCredentials WithToken(const std::string& token) {
    CallerCredentials c;
    c.authorization = {absl::StrCat("Bearer ", token)};
    c.peer = "ipv4:127.0.0.1:40000";
    return c;
  }
  static CallerCredentials WithCert(const std::string& cn,
                                    std::vector<std::string> sans = {}) {
    CallerCredentials c;
    c.certificate = PeerCertificate{cn, std::move(sans), ""};
    c.peer = "ipv4:127.0.0.1:40001";
    return c;
  }

  std::string Log() {
    absl::MutexLock lock(&mu_);
    std::string all;
    for (const std::string& line : log_) absl::StrAppend(&all, line, "\n");
    return all;
  }

  metrics::Registry registry_;
  absl::Mutex mu_;
  std::vector<std::string> log_;
  std::unique_ptr<Authorizer> authorizer_;
};

// Every closed method × every kind of caller.
TEST_F(AuthorizerTest, RoleMatrixForAllSixRpcs) {
  struct Row {
    const char* method;
    Role role;
  };
  const Row rows[] = {
      {kEvaluateMethod, Role::kEvaluator},
      {kGetRulesetMethod, Role::kEvaluator},
      {kValidateRulesetMethod, Role::kGovernance},
      {kReloadRulesetMethod, Role::kGovernance},
      {kGetDecisionMethod, Role::kAuditor},
      {kVerifyAuditMethod, Role::kAuditor},
  };
  struct Caller {
    const char* token;
    const char* principal;
    std::optional<Role> role;  // nullopt: every role
  };
  const Caller callers[] = {
      {kEvaluatorToken, "ehr", Role::kEvaluator},
      {kGovernanceToken, "gov", Role::kGovernance},
      {kAuditorToken, "aud", Role::kAuditor},
      {kEveryRoleToken, "ops", std::nullopt},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(
        authorizer_->Authorize(CallerCredentials(), row.method).status().code(),
        absl::StatusCode::kUnauthenticated)
        << row.method;
    EXPECT_EQ(authorizer_->Authorize(WithToken(kUnknownToken), row.method)
                  .status()
                  .code(),
              absl::StatusCode::kUnauthenticated)
        << row.method;
    for (const Caller& caller : callers) {
      absl::StatusOr<Principal> p =
          authorizer_->Authorize(WithToken(caller.token), row.method);
      const bool allowed = !caller.role.has_value() || *caller.role == row.role;
      if (allowed) {
        ASSERT_TRUE(p.ok())
            << row.method << " " << caller.principal << ": " << p.status();
        EXPECT_EQ(p->name, caller.principal);
        EXPECT_EQ(p->mechanism, Mechanism::kBearerToken);
      } else {
        EXPECT_EQ(p.status().code(), absl::StatusCode::kPermissionDenied)
            << row.method << " " << caller.principal;
      }
    }
  }
}

TEST_F(AuthorizerTest, PermissionDeniedNamesPrincipalAndRole) {
  absl::StatusOr<Principal> p =
      authorizer_->Authorize(WithToken(kEvaluatorToken), kReloadRulesetMethod);
  ASSERT_EQ(p.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(p.status().message(),
            "principal 'ehr' lacks the role 'governance' that ReloadRuleset "
            "requires");
  EXPECT_THAT(Log(), HasSubstr("PERMISSION_DENIED ReloadRuleset from "
                               "ipv4:127.0.0.1:40000: principal 'ehr' lacks"));
}

TEST_F(AuthorizerTest, UnauthenticatedReasonsAndMessages) {
  struct Case {
    std::vector<std::string> authorization;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{},
       "no credentials: send 'authorization: Bearer <token>' or a client "
       "certificate"},
      {{absl::StrCat("Bearer ", kUnknownToken)},
       "the bearer token is not valid for this server"},
      {{absl::StrCat("Basic ", kEvaluatorToken)},
       "the authorization header is not 'Bearer <token>'"},
      {{"Bearer"}, "the authorization header is not 'Bearer <token>'"},
      {{"Bearer    "}, "the authorization header is not 'Bearer <token>'"},
      {{absl::StrCat("Bearer ", kEvaluatorToken, " extra")},
       "the authorization header is not 'Bearer <token>'"},
      {{absl::StrCat("Bearer\t", kEvaluatorToken)},
       "the authorization header is not 'Bearer <token>'"},
      {{absl::StrCat("Bearer ", kEvaluatorToken),
        absl::StrCat("Bearer ", kEvaluatorToken)},
       "more than one authorization header"},
  };
  for (const Case& c : cases) {
    CallerCredentials caller;
    caller.authorization = c.authorization;
    absl::StatusOr<Principal> p =
        authorizer_->Authorize(caller, kEvaluateMethod);
    ASSERT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated)
        << c.message;
    EXPECT_EQ(p.status().message(), c.message);
  }
  // No message and no log line repeats a presented token or its hash.
  const std::string log = Log();
  for (const char* token : {kUnknownToken, kEvaluatorToken}) {
    EXPECT_THAT(log, AllOf(Not(HasSubstr(token)),
                           Not(HasSubstr(TokenSha256Hex(token)))));
  }
  EXPECT_THAT(log, HasSubstr("UNAUTHENTICATED Evaluate from ?: the bearer "
                             "token is not valid for this server"));
}

TEST_F(AuthorizerTest, SchemeIsCaseInsensitiveAndSpacesAreTrimmed) {
  for (const std::string& header :
       {absl::StrCat("bearer ", kEvaluatorToken),
        absl::StrCat("BEARER ", kEvaluatorToken),
        absl::StrCat("  Bearer   ", kEvaluatorToken, "  ")}) {
    CallerCredentials caller;
    caller.authorization = {header};
    absl::StatusOr<Principal> p =
        authorizer_->Authorize(caller, kEvaluateMethod);
    ASSERT_TRUE(p.ok()) << header << ": " << p.status();
    EXPECT_EQ(p->name, "ehr");
  }
}

TEST_F(AuthorizerTest, FailuresAreCountedByReasonAndMethod) {
  (void)authorizer_->Authorize(CallerCredentials(), kEvaluateMethod);
  (void)authorizer_->Authorize(WithToken(kUnknownToken), kEvaluateMethod);
  (void)authorizer_->Authorize(WithToken(kUnknownToken), kEvaluateMethod);
  (void)authorizer_->Authorize(WithToken(kAuditorToken), kGetRulesetMethod);
  (void)authorizer_->Authorize(WithCert("stranger"), kVerifyAuditMethod);
  (void)authorizer_->Authorize(WithToken(kEvaluatorToken), kEvaluateMethod);
  const std::string text = registry_.Serialize();
  EXPECT_THAT(text, HasSubstr("# TYPE stepwise_auth_failures_total counter"));
  EXPECT_THAT(text, HasSubstr("stepwise_auth_failures_total{reason=\"missing_"
                              "credentials\",method=\"Evaluate\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("stepwise_auth_failures_total{reason=\"unknown_"
                              "token\",method=\"Evaluate\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("stepwise_auth_failures_total{reason=\"missing_"
                              "role\",method=\"GetRuleset\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("stepwise_auth_failures_total{reason=\"unknown_"
                              "certificate\",method=\"VerifyAudit\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr(kUnknownToken)));
  EXPECT_THAT(text, Not(HasSubstr("stranger")));
  EXPECT_THAT(text, Not(HasSubstr("\"aud\"")));  // no principal label
}

TEST_F(AuthorizerTest, ClientCertificatesMapByCommonNameOrSan) {
  absl::StatusOr<Principal> p =
      authorizer_->Authorize(WithCert("gw.clinic.example"), kEvaluateMethod);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "ehr-gw");
  EXPECT_EQ(p->mechanism, Mechanism::kClientCertificate);

  p = authorizer_->Authorize(
      WithCert("Jane Doe", {"jane@example.org", "spiffe://clinic/gov"}),
      kVerifyAuditMethod);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "gov-console");

  p = authorizer_->Authorize(WithCert("gw.clinic.example"),
                             kReloadRulesetMethod);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(AuthorizerTest, UnknownAndAmbiguousCertificatesAreRefusedUnnamed) {
  testing::TestCa ca("Test CA");
  const std::string pem = ca.Issue(testing::ClientSpec("Jane Doe")).cert_pem;
  CallerCredentials stranger = WithCert("Jane Doe", {"jane@example.org"});
  stranger.certificate->pem = pem;
  absl::StatusOr<Principal> p =
      authorizer_->Authorize(stranger, kEvaluateMethod);
  ASSERT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(p.status().message(),
            "the client certificate is not mapped to a principal");

  p = authorizer_->Authorize(
      WithCert("gw.clinic.example", {"gw.clinic.example"}), kEvaluateMethod);
  ASSERT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(p.status().message(),
            "the client certificate matches more than one entry of the client "
            "certs file");

  // The log tells an operator which certificate (its fingerprint) without
  // naming its holder.
  const std::string log = Log();
  EXPECT_THAT(log, HasSubstr("the client certificate is not mapped to a "
                             "principal (certificate sha256 "));
  EXPECT_THAT(log, Not(HasSubstr("Jane")));
  EXPECT_THAT(log, Not(HasSubstr("jane@")));
  EXPECT_THAT(log, Not(HasSubstr("gw.clinic")));
}

TEST_F(AuthorizerTest, ATokenDecidesEvenOnACertifiedConnection) {
  CallerCredentials both = WithCert("gw.clinic.example");
  both.authorization = {absl::StrCat("Bearer ", kAuditorToken)};
  absl::StatusOr<Principal> p =
      authorizer_->Authorize(both, kGetDecisionMethod);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "aud");
  EXPECT_EQ(p->mechanism, Mechanism::kBearerToken);

  // A bad token is not rescued by a good certificate.
  both.authorization = {absl::StrCat("Bearer ", kUnknownToken)};
  EXPECT_EQ(authorizer_->Authorize(both, kEvaluateMethod).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthorizerTest, OpenMethodsNeedNothing) {
  for (const char* method :
       {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}) {
    absl::StatusOr<Principal> p =
        authorizer_->Authorize(CallerCredentials(), method);
    ASSERT_TRUE(p.ok()) << method;
    EXPECT_EQ(p->name, kAnonymousPrincipal);
    EXPECT_TRUE(p->roles.empty());
  }
}

TEST_F(AuthorizerTest, MethodsOutsideTheTableAreDeniedToEveryone) {
  absl::StatusOr<Principal> p = authorizer_->Authorize(
      WithToken(kEveryRoleToken), "/stepwise.v1.DecisionService/Delete");
  ASSERT_EQ(p.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(registry_.Serialize(),
              HasSubstr("stepwise_auth_failures_total{reason=\"unlisted_"
                        "method\",method=\"unlisted\"} 1"));
  EXPECT_THAT(Log(), Not(HasSubstr("Delete")));
}

TEST(AnonymousAuthorizerTest, EveryCallerIsAnonymousWithEveryRole) {
  AuthorizerOptions options;
  options.anonymous = true;
  std::vector<std::string> log;
  options.log = [&log](const std::string& line) { log.push_back(line); };
  const Authorizer authorizer(std::move(options));
  for (const MethodPolicy& row : MethodTable()) {
    if (!row.role.has_value()) continue;
    CallerCredentials caller;
    caller.authorization = {"Bearer whatever"};
    for (const CallerCredentials& c : {CallerCredentials(), caller}) {
      absl::StatusOr<Principal> p = authorizer.Authorize(c, row.full_name);
      ASSERT_TRUE(p.ok()) << row.full_name;
      EXPECT_EQ(p->name, "anonymous");
      EXPECT_EQ(p->roles, RoleSet::All());
    }
  }
  EXPECT_TRUE(log.empty());
}

TEST(AuthorizerNoCertsTest, ACertificateIsNoCredentialWithoutAMapping) {
  AuthorizerOptions options;
  options.tokens = {Token(kEvaluatorToken, "ehr", {Role::kEvaluator})};
  options.log = [](const std::string&) {};
  const Authorizer authorizer(std::move(options));
  CallerCredentials caller;
  caller.certificate = PeerCertificate{"gw", {}, ""};
  absl::StatusOr<Principal> p = authorizer.Authorize(caller, kEvaluateMethod);
  ASSERT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(p.status().message(), HasSubstr("no credentials"));
}

}  // namespace
}  // namespace stepwise::service::auth
