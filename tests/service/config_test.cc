#include "service/config.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stepwise::service {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, DefaultsServeTheDefaultBundleOnLoopback) {
  ServerOptions options;
  EXPECT_TRUE(ValidateServerOptions(options).ok());
  EXPECT_EQ(options.address, "127.0.0.1");
  EXPECT_EQ(options.port, 50051);
  EXPECT_EQ(options.bundle, "rules");
  EXPECT_EQ(options.audit_fault_after, -1);
}

TEST(ConfigTest, YamlSetsOptions) {
  ServerOptions options;
  ASSERT_TRUE(ApplyConfigText("port: 6000\n"
                              "bundle: /srv/rules\n"
                              "shutdown_grace: 45s\n"
                              "idempotency_window: 2h30m\n"
                              "metrics_port: -1\n",
                              "test.yaml", &options)
                  .ok());
  EXPECT_EQ(options.port, 6000);
  EXPECT_EQ(options.bundle, "/srv/rules");
  EXPECT_EQ(options.shutdown_grace, absl::Seconds(45));
  EXPECT_EQ(options.idempotency_window, absl::Minutes(150));
  EXPECT_EQ(options.metrics_port, -1);
  EXPECT_EQ(options.address, "127.0.0.1");  // untouched
}

TEST(ConfigTest, ReloadAndShadowOptions) {
  ServerOptions options;
  EXPECT_FALSE(options.watch_bundle);
  EXPECT_TRUE(options.shadow_bundle.empty());
  ASSERT_TRUE(ApplyConfigText("watch_bundle: true\n"
                              "shadow_bundle: /srv/rules-next\n",
                              "test.yaml", &options)
                  .ok());
  EXPECT_TRUE(options.watch_bundle);
  EXPECT_EQ(options.shadow_bundle, "/srv/rules-next");
  EXPECT_THAT(
      std::string(
          ApplyConfigText("watch_bundle: often\n", "test.yaml", &options)
              .message()),
      HasSubstr("test.yaml:1:15: watch_bundle: expected true or false"));
}

TEST(ConfigTest, YamlMistakesNameTheirPlace) {
  ServerOptions options;
  absl::Status unknown =
      ApplyConfigText("port: 6000\nprot: 1\n", "test.yaml", &options);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.message()),
              HasSubstr("test.yaml:2:1: unknown option 'prot'"));
  EXPECT_EQ(options.port, 50051) << "a failed file changes nothing";

  absl::Status type = ApplyConfigText("port: many\n", "test.yaml", &options);
  EXPECT_THAT(std::string(type.message()),
              HasSubstr("test.yaml:1:7: port: expected an integer"));
  absl::Status duration =
      ApplyConfigText("shutdown_grace: soon\n", "test.yaml", &options);
  EXPECT_THAT(std::string(duration.message()), HasSubstr("not a duration"));
  absl::Status syntax = ApplyConfigText("port: [1,\n", "test.yaml", &options);
  EXPECT_THAT(std::string(syntax.message()), HasSubstr("test.yaml:"));
  // The test-only fault flag is never read from a file.
  absl::Status hidden =
      ApplyConfigText("audit_fault_after: 1\n", "test.yaml", &options);
  EXPECT_THAT(std::string(hidden.message()), HasSubstr("unknown option"));
  EXPECT_TRUE(ApplyConfigText("", "empty.yaml", &options).ok());
}

TEST(ConfigTest, ValidationNamesTheOption) {
  ServerOptions options;
  options.port = 70000;
  options.max_inflight = 0;
  absl::Status status = ValidateServerOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("port"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("max_inflight"));
}

absl::StatusOr<ServerOptions> Parse(std::vector<std::string> args) {
  CLI::App app;
  ServerFlags flags;
  flags.Register(&app);
  std::vector<const char*> argv = {"stepwise-server"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  return flags.Resolve();
}

TEST(ConfigTest, FlagsBeatTheFileWhichBeatsDefaults) {
  std::filesystem::create_directories(::testing::TempDir());
  const std::string path = ::testing::TempDir() + "config_test.yaml";
  std::ofstream(path) << "port: 6000\nbundle: from-file\naudit_dir: a\n";
  absl::StatusOr<ServerOptions> options =
      Parse({"--config", path, "--port", "7000", "--shutdown-grace", "3s"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->port, 7000);           // flag
  EXPECT_EQ(options->bundle, "from-file");  // file
  EXPECT_EQ(options->audit_dir, "a");       // file
  EXPECT_EQ(options->shutdown_grace, absl::Seconds(3));
  EXPECT_EQ(options->metrics_port, 9464);  // default

  absl::StatusOr<ServerOptions> hidden = Parse({"--audit-fault-after", "2"});
  ASSERT_TRUE(hidden.ok());
  EXPECT_EQ(hidden->audit_fault_after, 2);

  EXPECT_FALSE(Parse({"--shutdown-grace", "later"}).ok());
  EXPECT_FALSE(Parse({"--port", "-5"}).ok());
  EXPECT_FALSE(Parse({"--config", "/no/such/file.yaml"}).ok());
  EXPECT_FALSE(Parse({"--no-such-flag"}).ok());
}

}  // namespace
}  // namespace stepwise::service
