#include "service/auth/server_security.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_certs.h"

namespace stepwise::service::auth {
namespace {

using ::stepwise::testing::KeyAndCert;
using ::stepwise::testing::MakeTestDir;
using ::stepwise::testing::TestCa;
using ::stepwise::testing::WriteTestFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(LoopbackTest, Addresses) {
  for (const char* a :
       {"127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "[::1]",
        "localhost", "LOCALHOST", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
  for (const char* a :
       {"0.0.0.0", "::", "[::]", "10.0.0.1", "192.168.1.10", "128.0.0.1",
        "::ffff:10.0.0.1", "example.org", "localhost.example.org", "", "127.1",
        "127.0.0.1 ", "fe80::1"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

class ServerSecurityTest : public ::testing::Test {
 protected:
  static SecurityOptions At(const std::string& address,
                            const std::string& tokens_file = "") {
    SecurityOptions options;
    options.address = address;
    options.tokens_file = tokens_file;
    return options;
  }
  absl::StatusOr<ServerSecurity> SetUp(const SecurityOptions& options) {
    return SetUpServerSecurity(
        options, &registry_,
        [this](const std::string& line) { log_.push_back(line); });
  }
  std::string TokensFile(mode_t mode = 0600) {
    return WriteTestFile(
        dir_, "tokens.yaml",
        absl::StrCat("tokens:\n  - sha256: ", TokenSha256Hex("t-0123456789"),
                     "\n    principal: ehr\n    roles: [evaluator]\n"),
        mode);
  }

  const std::string dir_ = MakeTestDir("security");
  metrics::Registry registry_;
  std::vector<std::string> log_;
};

TEST_F(ServerSecurityTest, NoAuthenticationOnLoopbackIsAnonymousAndSaysSo) {
  for (const char* address : {"127.0.0.1", "::1", "localhost"}) {
    log_.clear();
    absl::StatusOr<ServerSecurity> s = SetUp(At(address));
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(s->authorizer->anonymous());
    ASSERT_NE(s->credentials, nullptr);
    EXPECT_THAT(log_, ElementsAre(HasSubstr(
                          "no authentication configured: listening on "
                          "loopback only; every caller is \"anonymous\" "
                          "with every role (TLS off)")));
  }
}

TEST_F(ServerSecurityTest, NoAuthenticationOffLoopbackIsRefusedFirst) {
  for (const char* address : {"0.0.0.0", "::", "10.1.2.3"}) {
    SecurityOptions options = At(address);
    // Refused before the (unreadable) TLS files are even looked at.
    options.tls.cert_chain = dir_ + "/missing.crt";
    options.tls.private_key = dir_ + "/missing.key";
    absl::StatusOr<ServerSecurity> s = SetUp(options);
    ASSERT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition)
        << address;
    EXPECT_EQ(s.status().message(),
              absl::StrCat("no authentication configured, so the server "
                           "listens on loopback only (127.0.0.1, ::1, "
                           "localhost), not on ",
                           address,
                           ": configure tokens_file and/or client_certs_file "
                           "(docs/security.md)"));
  }
  EXPECT_TRUE(log_.empty());
}

TEST_F(ServerSecurityTest, TokensAllowAnyAddress) {
  absl::StatusOr<ServerSecurity> s = SetUp(At("0.0.0.0", TokensFile()));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->authorizer->anonymous());
  EXPECT_EQ(s->authorizer->token_count(), 1u);
  EXPECT_THAT(
      log_,
      ElementsAre("1 bearer token, 0 client certificate mappings; TLS off",
                  "warning: bearer tokens would cross the network in "
                  "plaintext on 0.0.0.0: terminate TLS here (tls_cert, "
                  "tls_key) or in front of the server"));
}

TEST_F(ServerSecurityTest, FileProblemsNameTheOption) {
  absl::StatusOr<ServerSecurity> s = SetUp(At("127.0.0.1", TokensFile(0644)));
  ASSERT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("tokens_file: "));
  EXPECT_THAT(s.status().message(), HasSubstr("lets group or others read"));

  const std::string certs =
      WriteTestFile(dir_, "certs.yaml", "client_certs: []\n", 0644);
  SecurityOptions options = At("127.0.0.1");
  options.client_certs_file = certs;
  s = SetUp(options);
  EXPECT_THAT(s.status().message(),
              HasSubstr("client_certs_file needs tls_client_ca"));

  TestCa ca("CA");
  const KeyAndCert server = ca.Issue(testing::ServerSpec());
  options.tls.cert_chain = WriteTestFile(dir_, "s.crt", server.cert_pem, 0644);
  options.tls.private_key = WriteTestFile(dir_, "s.key", server.key_pem);
  options.tls.client_ca = WriteTestFile(dir_, "ca.crt", ca.cert_pem(), 0644);
  s = SetUp(options);
  EXPECT_THAT(s.status().message(),
              HasSubstr("client_certs_file: " + certs +
                        ":1:15: client_certs: expected a non-empty list"));
}

TEST_F(ServerSecurityTest, MutualTlsSummary) {
  TestCa ca("CA");
  const KeyAndCert server = ca.Issue(testing::ServerSpec());
  SecurityOptions options = At("0.0.0.0");
  options.client_certs_file =
      WriteTestFile(dir_, "certs.yaml",
                    "client_certs:\n  - common_name: gw\n    principal: gw\n"
                    "    roles: [evaluator]\n",
                    0644);
  options.tls.cert_chain = WriteTestFile(dir_, "s.crt", server.cert_pem, 0644);
  options.tls.private_key = WriteTestFile(dir_, "s.key", server.key_pem);
  options.tls.client_ca = WriteTestFile(dir_, "ca.crt", ca.cert_pem(), 0644);
  options.tls.require_client_cert = true;
  absl::StatusOr<ServerSecurity> s = SetUp(options);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(log_, ElementsAre("0 bearer tokens, 1 client certificate "
                                "mapping; TLS on, client certificates "
                                "required"));
}

}  // namespace
}  // namespace stepwise::service::auth
