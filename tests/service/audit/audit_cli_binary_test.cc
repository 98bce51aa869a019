// Runs the built `stepwise` binary: the audit verbs are wired to the command
// line with the documented exit codes (0 ok, 1 check failed, 2 usage).
#include <stdlib.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Outcome {
  int exit_code;
  std::string output;  // stdout and stderr
};

// Runs the binary with `args` in the working directory `cwd` ("": this one).
Outcome Stepwise(const std::string& args, const std::string& cwd = "") {
  const std::string command =
      absl::StrCat(cwd.empty() ? "" : absl::StrCat("cd '", cwd, "' && "), "'",
                   STEPWISE_BINARY, "' ", args, " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  Outcome run{0, ""};
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    run.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string TestData(const std::string& name) {
  return absl::StrCat("'", STEPWISE_AUDIT_TESTDATA, "/", name, "'");
}

TEST(AuditCliBinaryTest, VerifyGood) {
  const Outcome run = Stepwise("audit verify " + TestData("good"));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output,
            "verified 4 records\nhead "
            "faf36e0858b6a629bcea62b50c2db0a0a55a4d743f56e7d70440068149a21320"
            "\n");
}

TEST(AuditCliBinaryTest, VerifyBroken) {
  const Outcome run = Stepwise("audit verify " + TestData("broken"));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output,
              HasSubstr("/broken/000002.jsonl:1: seq 3: hash does not match "
                        "the record\n"));
}

TEST(AuditCliBinaryTest, Show) {
  Outcome run = Stepwise("audit show " + TestData("good") +
                         " 01936f3e-7c2a-7000-8000-000000000001");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, StartsWith("{\n  \"seq\": 2,\n"));
  run = Stepwise("audit show " + TestData("good") + " no-such-decision");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("no decision record"));
}

// Architecture §6's form: `audit show DECISION_ID`, the folder from
// --audit-dir (or the server's default, stepwise-audit).
TEST(AuditCliBinaryTest, ShowByIdAlone) {
  Outcome run = Stepwise(
      "audit show 01936f3e-7c2a-7000-8000-000000000001 "
      "--audit-dir " +
      TestData("good"));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, StartsWith("{\n  \"seq\": 2,\n"));
  // Without --audit-dir: the default folder, relative to where it runs.
  std::filesystem::create_directories(::testing::TempDir());
  std::string scratch_template =
      ::testing::TempDir() + "stepwise-audit-show-XXXXXX";
  char* const scratch = ::mkdtemp(scratch_template.data());
  ASSERT_NE(scratch, nullptr);
  run = Stepwise("audit show 01936f3e-7c2a-7000-8000-000000000001", scratch);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("stepwise-audit"));
  const std::string copy =
      absl::StrCat("cp -r '", STEPWISE_AUDIT_TESTDATA, "/good' '", scratch,
                   "/stepwise-audit'");
  ASSERT_EQ(std::system(copy.c_str()), 0);
  run = Stepwise("audit show 01936f3e-7c2a-7000-8000-000000000001", scratch);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, StartsWith("{\n  \"seq\": 2,\n"));
  std::filesystem::remove_all(scratch);
}

TEST(AuditCliBinaryTest, UsageErrors) {
  EXPECT_EQ(Stepwise("audit").exit_code, 2);
  EXPECT_EQ(Stepwise("audit verify").exit_code, 2);
  EXPECT_EQ(Stepwise("audit verify /no/such/folder/anywhere").exit_code, 2);
  EXPECT_EQ(Stepwise("audit show").exit_code, 2);
  EXPECT_EQ(Stepwise("audit show /no/such/folder/anywhere some-id").exit_code,
            2);
  // The folder given twice.
  EXPECT_EQ(Stepwise("audit show " + TestData("good") + " some-id " +
                     "--audit-dir " + TestData("good"))
                .exit_code,
            2);
  EXPECT_EQ(Stepwise("audit show a b c").exit_code, 2);
}

}  // namespace
