// The security options as the server's configuration reads them: YAML keys,
// flags, and the combinations refused as usage errors.
#include <algorithm>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/config.h"

namespace stepwise::service {
namespace {

using ::testing::HasSubstr;

TEST(SecurityOptionsTest, DefaultsConfigureNothing) {
  const ServerOptions o;
  EXPECT_EQ(o.address, "127.0.0.1");
  EXPECT_EQ(o.tokens_file, "");
  EXPECT_EQ(o.client_certs_file, "");
  EXPECT_EQ(o.tls_cert, "");
  EXPECT_EQ(o.tls_key, "");
  EXPECT_EQ(o.tls_client_ca, "");
  EXPECT_FALSE(o.require_client_cert);
  EXPECT_TRUE(ValidateServerOptions(o).ok());
}

TEST(SecurityOptionsTest, YamlKeys) {
  ServerOptions o;
  const absl::Status status = ApplyConfigText(
      "tokens_file: /etc/stepwise/tokens.yaml\n"
      "client_certs_file: /etc/stepwise/client-certs.yaml\n"
      "tls_cert: /etc/stepwise/tls/server.crt\n"
      "tls_key: /etc/stepwise/tls/server.key\n"
      "tls_client_ca: /etc/stepwise/tls/clients-ca.crt\n"
      "require_client_cert: true\n",
      "stepwise.yaml", &o);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(o.tokens_file, "/etc/stepwise/tokens.yaml");
  EXPECT_EQ(o.client_certs_file, "/etc/stepwise/client-certs.yaml");
  EXPECT_EQ(o.tls_cert, "/etc/stepwise/tls/server.crt");
  EXPECT_EQ(o.tls_key, "/etc/stepwise/tls/server.key");
  EXPECT_EQ(o.tls_client_ca, "/etc/stepwise/tls/clients-ca.crt");
  EXPECT_TRUE(o.require_client_cert);
  EXPECT_TRUE(ValidateServerOptions(o).ok());

  EXPECT_EQ(
      ApplyConfigText("require_client_cert: maybe\n", "s.yaml", &o).message(),
      "s.yaml:1:22: require_client_cert: expected true or false");
}

TEST(SecurityOptionsTest, Flags) {
  CLI::App app;
  ServerFlags flags;
  flags.Register(&app);
  std::vector<std::string> args = {"--require-client-cert",
                                   "--tls-client-ca",
                                   "ca.crt",
                                   "--tls-key",
                                   "k.pem",
                                   "--tls-cert",
                                   "c.pem",
                                   "--tokens-file",
                                   "t.yaml"};
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  app.parse(args);
  absl::StatusOr<ServerOptions> o = flags.Resolve();
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->require_client_cert);
  EXPECT_EQ(o->tokens_file, "t.yaml");
  EXPECT_EQ(o->tls_cert, "c.pem");
  EXPECT_EQ(o->tls_key, "k.pem");
  EXPECT_EQ(o->tls_client_ca, "ca.crt");
}

TEST(SecurityOptionsTest, CombinationsThatCannotWork) {
  auto error = [](auto change) {
    ServerOptions o;
    change(o);
    return std::string(ValidateServerOptions(o).message());
  };
  EXPECT_THAT(error([](ServerOptions& o) { o.tls_cert = "c"; }),
              HasSubstr("tls_cert: tls_cert and tls_key go together"));
  EXPECT_THAT(error([](ServerOptions& o) { o.tls_key = "k"; }),
              HasSubstr("tls_cert: tls_cert and tls_key go together"));
  EXPECT_THAT(error([](ServerOptions& o) { o.tls_client_ca = "ca"; }),
              HasSubstr("tls_client_ca: needs tls_cert and tls_key"));
  EXPECT_THAT(error([](ServerOptions& o) { o.require_client_cert = true; }),
              HasSubstr("require_client_cert: needs tls_client_ca"));
  EXPECT_THAT(error([](ServerOptions& o) { o.client_certs_file = "m"; }),
              HasSubstr("client_certs_file: needs tls_client_ca"));
  // Tokens alone are fine: the safe defaults decide about the address.
  EXPECT_EQ(error([](ServerOptions& o) { o.tokens_file = "t"; }), "");
}

}  // namespace
}  // namespace stepwise::service
