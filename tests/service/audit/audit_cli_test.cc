#include "service/audit/audit_cli.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/audit/audit_log.h"
#include "tests/service/audit/test_util.h"

namespace stepwise::service::audit {
namespace {

using ::stepwise::service::audit::testing::Body;
using ::stepwise::service::audit::testing::Collector;
using ::stepwise::service::audit::testing::FreshDir;
using ::stepwise::service::audit::testing::JoinLines;
using ::stepwise::service::audit::testing::Lines;
using ::stepwise::service::audit::testing::Options;
using ::stepwise::service::audit::testing::ReadAll;
using ::stepwise::service::audit::testing::WriteAll;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class AuditCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir();
    absl::StatusOr<std::unique_ptr<AuditLog>> log =
        AuditLog::Open(Options(dir_));
    ASSERT_TRUE(log.ok());
    Collector collector;
    for (int i = 1; i <= 4; ++i) {
      (*log)->Append("decision", Body(i), collector.Callback(i));
    }
    collector.Wait(4);
    head_ = (*log)->stats().head_hash;
  }

  int Verify() {
    out_.str("");
    err_.str("");
    return RunAuditVerify(*DefaultFileSystem(), dir_, out_, err_);
  }

  std::string dir_;
  std::string head_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(AuditCliTest, VerifyPrintsCountAndHead) {
  EXPECT_EQ(Verify(), 0);
  EXPECT_EQ(out_.str(), "verified 4 records\nhead " + head_ + "\n");
}

TEST_F(AuditCliTest, VerifyNamesFileLineAndSeqOfTheFirstBreak) {
  const std::string segment = dir_ + "/000001.jsonl";
  std::vector<std::string> lines = Lines(ReadAll(segment));
  lines[1].replace(lines[1].find("\"d2\""), 4, "\"dX\"");
  WriteAll(segment, JoinLines(lines));
  EXPECT_EQ(Verify(), 1);
  EXPECT_THAT(
      out_.str(),
      StartsWith(segment + ":2: seq 2: hash does not match the record\n"));
}

TEST_F(AuditCliTest, VerifyFailsOnAnUnreadableFolder) {
  dir_ += "/missing";
  EXPECT_EQ(Verify(), 1);
  EXPECT_THAT(err_.str(), HasSubstr("cannot verify"));
}

TEST_F(AuditCliTest, ShowPrintsTheRecordIndented) {
  std::ostringstream out, err;
  EXPECT_EQ(RunAuditShow(*DefaultFileSystem(), dir_, "d3", out, err), 0);
  EXPECT_THAT(out.str(),
              StartsWith("{\n  \"seq\": 3,\n  \"kind\": \"decision\""));
  EXPECT_THAT(out.str(), HasSubstr("\n  \"decision_id\": \"d3\",\n"));
}

TEST_F(AuditCliTest, ShowFailsForAnUnknownDecision) {
  std::ostringstream out, err;
  EXPECT_EQ(RunAuditShow(*DefaultFileSystem(), dir_, "nope", out, err), 1);
  EXPECT_EQ(out.str(), "");
  EXPECT_THAT(err.str(), HasSubstr("no decision record"));
}

}  // namespace
}  // namespace stepwise::service::audit
