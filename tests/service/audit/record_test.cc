#include "service/audit/record.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "service/audit/audit_log.h"
#include "service/audit/reader.h"
#include "service/audit/subject_key.h"
#include "tests/service/audit/test_util.h"

namespace stepwise::service::audit {
namespace {

using ::google::protobuf::TextFormat;
using ::google::protobuf::util::MessageDifferencer;
using ::stepwise::service::audit::testing::Collector;
using ::stepwise::service::audit::testing::FreshDir;
using ::stepwise::service::audit::testing::Options;
using ::testing::HasSubstr;
using ::testing::Not;

template <typename T>
T Parse(const char* text) {
  T message;
  EXPECT_TRUE(TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

stepwise::v1::EvaluateRequest Request() {
  return Parse<stepwise::v1::EvaluateRequest>(R"pb(
    request_id: "req-7731"
    subject_id: "MRN-0042-Smith"
    current_step: 2
    weeks_at_step: 8.5
    assessments {
      instrument: "phq9"
      items { key: "item1" value: 2 }
      items { key: "item9" value: 1 }
      total: 17
      administered_at { seconds: 1795000000 }
    }
    assessments {
      instrument: "gad7"
      total: 0
      administered_at { seconds: 1795100000 nanos: 500000000 }
    }
    flags: "red_flag"
    as_of { seconds: 1795167000 }
  )pb");
}

stepwise::v1::Decision Decision() {
  return Parse<stepwise::v1::Decision>(R"pb(
    decision_id: "01936f3e-7c2a-7000-8000-000000000001"
    action: URGENT_SAFETY
    recommended_step: 2
    refer_to: "crisis-team"
    matched_rules {
      rule_id: "SAFETY-02"
      title: "Suicidal ideation"
      action: URGENT_SAFETY
      rationale: "long text"
      follow_up: "call today"
      source: "NICE CG90"
      explanation: "phq9.item9 = 1 >= 1"
    }
    matched_rules { rule_id: "STEP-UP-01" action: STEP_UP target_step: 3 }
    unevaluated_rules {
      rule_id: "RCI-01"
      title: "t"
      missing_facts: "previous.phq9.total"
    }
    warnings: "prorated phq9"
    ruleset { name: "stepped-care" version: "2026.11.0" sha256: "ab12" }
    evaluated_at { seconds: 1795167001 }
    audit_seq: 99
    as_of { seconds: 1795167000 }
    trace { rule_id: "SAFETY-02" outcome: MATCHED }
  )pb");
}

std::string SubjectHashForTest(absl::string_view subject_id) {
  absl::StatusOr<SubjectKey> key = SubjectKey::FromBytes(std::string(32, 'k'));
  return key->Hash(subject_id);
}

TEST(RecordTest, DecisionBodyNeverHoldsTheSubjectOrRequestId) {
  absl::StatusOr<std::string> body = DecisionRecordBody(
      Request(), Decision(), "ehr-north", SubjectHashForTest("MRN-0042-Smith"));
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(*body, Not(HasSubstr("MRN-0042")));
  EXPECT_THAT(*body, Not(HasSubstr("req-7731")));
  EXPECT_THAT(*body, Not(HasSubstr("subject_id")));
  EXPECT_THAT(*body, Not(HasSubstr("request_id")));
  EXPECT_THAT(*body, HasSubstr(SubjectHashForTest("MRN-0042-Smith")));
  // Bundle texts are left out; the explanation with the values seen stays.
  EXPECT_THAT(*body, Not(HasSubstr("call today")));
  // (protobuf escapes ">" as \u003e.)
  EXPECT_THAT(*body, HasSubstr("phq9.item9 = 1 \\u003e= 1"));
  EXPECT_TRUE(absl::StartsWith(
      *body,
      "{\"decision_id\":\"01936f3e-7c2a-7000-8000-000000000001\","
      "\"principal\":\"ehr-north\",\"subject\":\""));
}

TEST(RecordTest, RefusesAClearSubject) {
  EXPECT_EQ(DecisionRecordBody(Request(), Decision(), "p", "MRN-0042-Smith")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RecordTest, NeedsAsOfAndADecisionId) {
  stepwise::v1::EvaluateRequest request = Request();
  request.clear_as_of();
  stepwise::v1::Decision decision = Decision();
  // The decision's as_of stands in for the request's.
  absl::StatusOr<std::string> body =
      DecisionRecordBody(request, decision, "p", SubjectHashForTest("s"));
  ASSERT_TRUE(body.ok());
  EXPECT_THAT(*body, HasSubstr("\"as_of\":\"2026-11-20T09:30:00Z\""));
  decision.clear_as_of();
  EXPECT_EQ(DecisionRecordBody(request, decision, "p", SubjectHashForTest("s"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  decision = Decision();
  decision.clear_decision_id();
  EXPECT_FALSE(
      DecisionRecordBody(Request(), decision, "p", SubjectHashForTest("s"))
          .ok());
}

// Written through the log and read back, the record gives a replay exactly
// the request and outcome that were decided.
TEST(RecordTest, ParseRecordReadsBackWhatReplayNeeds) {
  const std::string dir = FreshDir();
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(Options(dir));
  ASSERT_TRUE(log.ok()) << log.status();
  absl::StatusOr<std::string> body = DecisionRecordBody(
      Request(), Decision(), "ehr-north", SubjectHashForTest("MRN-0042-Smith"));
  ASSERT_TRUE(body.ok());
  stepwise::v1::RulesetInfo info;
  info.set_name("stepped-care");
  info.set_version("2026.11.0");
  info.set_sha256("ab12");
  info.add_rules()->set_rule_id("SAFETY-02");
  absl::StatusOr<std::string> activation =
      ActivationRecordBody(info, "", "startup");
  ASSERT_TRUE(activation.ok());
  Collector collector;
  (*log)->Append("activation", *activation, collector.Callback(0));
  (*log)->Append("decision", *body, collector.Callback(1));
  collector.Wait(2);
  (*log)->Close();
  for (const auto& r : collector.results()) ASSERT_TRUE(r.status.ok());

  absl::StatusOr<FoundRecord> found = FindDecision(
      *DefaultFileSystem(), dir, "01936f3e-7c2a-7000-8000-000000000001");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->file, "000001.jsonl");
  EXPECT_EQ(found->line, 2u);
  const ParsedRecord& record = found->record;
  EXPECT_EQ(record.seq, 2u);
  EXPECT_EQ(record.kind, "decision");
  EXPECT_EQ(record.time, testing::FixedTime());
  EXPECT_EQ(record.principal, "ehr-north");
  EXPECT_EQ(record.subject, SubjectHashForTest("MRN-0042-Smith"));

  stepwise::v1::EvaluateRequest expected_request = Request();
  expected_request.clear_subject_id();
  expected_request.clear_request_id();
  EXPECT_TRUE(MessageDifferencer::Equals(record.request, expected_request))
      << record.request.DebugString();
  // proto3 `optional` keeps its presence: gad7's total 0 is not "missing".
  ASSERT_EQ(record.request.assessments_size(), 2);
  EXPECT_TRUE(record.request.assessments(1).has_total());

  EXPECT_EQ(record.decision.action(), stepwise::v1::URGENT_SAFETY);
  EXPECT_EQ(record.decision.recommended_step(), 2);
  ASSERT_EQ(record.decision.matched_rules_size(), 2);
  EXPECT_EQ(record.decision.matched_rules(0).rule_id(), "SAFETY-02");
  EXPECT_EQ(record.decision.matched_rules(0).title(), "");
  EXPECT_EQ(record.decision.matched_rules(1).target_step(), 3);
  EXPECT_EQ(record.decision.refer_to(0), "crisis-team");
  EXPECT_EQ(record.decision.warnings(0), "prorated phq9");
  EXPECT_EQ(record.decision.audit_seq(), 0u);
  EXPECT_EQ(record.decision.trace_size(), 0);
  EXPECT_EQ(record.decision.evaluated_at().seconds(), 1795167001);
  EXPECT_EQ(record.ruleset.name(), "stepped-care");
  EXPECT_EQ(record.ruleset.version(), "2026.11.0");
  EXPECT_EQ(record.ruleset.sha256(), "ab12");
  EXPECT_EQ(record.hash.size(), 64u);

  // The activation record reads back too, and is not mistaken for a decision.
  std::vector<ParsedRecord> all;
  ASSERT_TRUE(
      ForEachRecord(*DefaultFileSystem(), dir, [&](const RecordRef& ref) {
        absl::StatusOr<ParsedRecord> r = ParseRecord(ref.json);
        if (!r.ok()) return r.status();
        all.push_back(*std::move(r));
        return absl::OkStatus();
      }).ok());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].kind, "activation");
  EXPECT_EQ(all[0].principal, "startup");
  EXPECT_EQ(all[0].ruleset.sha256(), "ab12");
  EXPECT_EQ(all[0].json.find("SAFETY-02"), std::string::npos);
  EXPECT_EQ(all[1].prev_hash, all[0].hash);
}

// RecordBody carries the same bodies, which AppendBody writes unchecked: the
// lines must be exactly those Append writes after checking them.
TEST(RecordTest, RecordBodiesAreTheCheckedBodies) {
  const std::string subject = SubjectHashForTest("MRN-0042-Smith");
  // One request object throughout: map entries come in the order of the
  // map object walked.
  const stepwise::v1::EvaluateRequest request = Request();
  absl::StatusOr<RecordBody> decision =
      DecisionRecord(request, Decision(), "ehr-north", subject);
  absl::StatusOr<RecordBody> shadow =
      ShadowRecord(request, Decision(), "ehr-north", subject, "d-1");
  stepwise::v1::RulesetInfo info;
  info.set_name("stepped-care");
  absl::StatusOr<RecordBody> activation = ActivationRecord(info, "", "startup");
  ASSERT_TRUE(decision.ok() && shadow.ok() && activation.ok());
  EXPECT_EQ(decision->kind(), "decision");
  EXPECT_EQ(decision->json(),
            *DecisionRecordBody(request, Decision(), "ehr-north", subject));
  EXPECT_EQ(shadow->kind(), "shadow");
  EXPECT_EQ(activation->kind(), "activation");
  // Refusals carry over.
  EXPECT_FALSE(DecisionRecord(request, Decision(), "p", "MRN").ok());

  std::vector<std::string> files;
  for (bool checked : {true, false}) {
    const std::string dir = FreshDir(checked ? "checked" : "unchecked");
    absl::StatusOr<std::unique_ptr<AuditLog>> log =
        AuditLog::Open(Options(dir));
    ASSERT_TRUE(log.ok()) << log.status();
    const auto make = [&](int i) {
      switch (i) {
        case 0:
          return *ActivationRecord(info, "", "startup");
        case 1:
          return *DecisionRecord(request, Decision(), "ehr-north", subject);
        default:
          return *ShadowRecord(request, Decision(), "ehr-north", subject,
                               "d-1");
      }
    };
    Collector collector;
    for (int i = 0; i < 3; ++i) {
      RecordBody body = make(i);
      if (checked) {
        (*log)->Append(std::string(body.kind()), body.json(),
                       collector.Callback(i));
      } else {
        (*log)->AppendBody(std::move(body), collector.Callback(i));
      }
    }
    collector.Wait(3);
    (*log)->Close();
    for (const auto& r : collector.results()) ASSERT_TRUE(r.status.ok());
    files.push_back(testing::ReadAll(JoinPath(dir, "000001.jsonl")));
  }
  EXPECT_EQ(files[0], files[1]);
  EXPECT_EQ(testing::Lines(files[1]).size(), 3u);
}

TEST(RecordTest, ShadowRecordIsNotFoundAsTheDecision) {
  const std::string dir = FreshDir();
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(Options(dir));
  ASSERT_TRUE(log.ok());
  stepwise::v1::Decision candidate = Decision();
  candidate.set_action(stepwise::v1::STAY);
  absl::StatusOr<std::string> shadow = ShadowRecordBody(
      Request(), candidate, "ehr-north", SubjectHashForTest("s"), "d-77");
  ASSERT_TRUE(shadow.ok()) << shadow.status();
  Collector collector;
  (*log)->Append("shadow", *shadow, collector.Callback(0));
  collector.Wait(1);
  (*log)->Close();
  EXPECT_EQ(FindDecision(*DefaultFileSystem(), dir, "d-77").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(RecordTest, ParseRecordChecksTheHash) {
  EXPECT_EQ(ParseRecord("{\"seq\":1}").status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace stepwise::service::audit
