// The committed logs under testdata/ were written by make_golden.py, a second
// implementation of docs/audit-log.md: the C++ reader must verify them, and
// the C++ writer must continue their chain. A change to the format breaks
// this test before it breaks a deployed log.
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/audit/audit_log.h"
#include "service/audit/reader.h"
#include "tests/service/audit/test_util.h"

namespace stepwise::service::audit {
namespace {

using ::stepwise::service::audit::testing::Collector;
using ::stepwise::service::audit::testing::FreshDir;
using ::stepwise::service::audit::testing::Options;

constexpr char kGoldenHead[] =
    "faf36e0858b6a629bcea62b50c2db0a0a55a4d743f56e7d70440068149a21320";

std::string TestData(absl::string_view name) {
  return JoinPath(STEPWISE_AUDIT_TESTDATA, name);
}

TEST(GoldenTest, VerifiesALogWrittenByAnotherImplementation) {
  absl::StatusOr<VerifyResult> result =
      Verify(*DefaultFileSystem(), TestData("good"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->ok()) << result->FirstBreakText();
  EXPECT_EQ(result->records_checked, 4u);
  EXPECT_EQ(result->head_hash, kGoldenHead);
}

TEST(GoldenTest, FindsTheEditedRecord) {
  absl::StatusOr<VerifyResult> result =
      Verify(*DefaultFileSystem(), TestData("broken"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->FirstBreakText(),
            "000002.jsonl:1: seq 3: hash does not match the record");
  EXPECT_EQ(result->records_checked, 2u);
}

TEST(GoldenTest, ReadsADecisionBack) {
  absl::StatusOr<FoundRecord> found =
      FindDecision(*DefaultFileSystem(), TestData("good"),
                   "01936f3e-7c2a-7000-8000-000000000002");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->file, "000002.jsonl");
  EXPECT_EQ(found->line, 1u);
  const ParsedRecord& r = found->record;
  EXPECT_EQ(r.seq, 3u);
  EXPECT_EQ(r.kind, "decision");  // not the shadow record after it
  EXPECT_EQ(r.principal, "ehr-north \xC3\xA9\xC3\xA8");
  EXPECT_EQ(r.time, absl::FromUnixSeconds(1795167003));
  EXPECT_EQ(r.request.current_step(), 2);
  EXPECT_EQ(r.request.assessments(0).items().at("item9"), 1);
  EXPECT_FALSE(r.request.assessments(0).has_total());
  EXPECT_EQ(r.decision.action(), stepwise::v1::STEP_UP);
  EXPECT_EQ(r.decision.matched_rules(0).rule_id(), "STEP-UP-01");
  EXPECT_EQ(r.ruleset.version(), "2026.11.0");
}

TEST(GoldenTest, WriterContinuesTheChain) {
  const std::string dir = FreshDir();
  for (const char* name : {"000001.jsonl", "000002.jsonl"}) {
    std::filesystem::copy_file(TestData("good/") + name, JoinPath(dir, name));
  }
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(Options(dir));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->stats().last_seq, 4u);
  EXPECT_EQ((*log)->stats().head_hash, kGoldenHead);
  Collector collector;
  (*log)->Append("decision", "{\"decision_id\":\"next\"}",
                 collector.Callback(0));
  collector.Wait(1);
  (*log)->Close();
  EXPECT_EQ(collector.results()[0].seq, 5u);
  absl::StatusOr<VerifyResult> result = Verify(*DefaultFileSystem(), dir);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->ok()) << result->FirstBreakText();
  EXPECT_EQ(result->records_checked, 5u);
}

}  // namespace
}  // namespace stepwise::service::audit
