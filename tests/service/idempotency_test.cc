#include "service/idempotency.h"

#include <memory>
#include <optional>
#include <vector>

#include "gtest/gtest.h"

namespace stepwise::service {
namespace {

using Admission = IdempotencyCache::Admission;

const absl::Time kT0 = absl::FromUnixSeconds(1795176000);

v1::EvaluateRequest Request(const std::string& id, int item1) {
  v1::EvaluateRequest r;
  r.set_request_id(id);
  r.set_subject_id("s");
  auto* a = r.add_assessments();
  a->set_instrument("mood");
  (*a->mutable_items())["item1"] = item1;
  (*a->mutable_items())["item2"] = 2;
  (*a->mutable_items())["item3"] = 0;
  return r;
}

std::string DecisionWithId(const std::string& id) {
  v1::Decision d;
  d.set_decision_id(id);
  d.set_action(v1::STAY);
  return IdempotencyCache::Serialized(d);
}

IdempotencyCache::Waiter Never() {
  return [](absl::StatusOr<v1::Decision>) { FAIL() << "unexpected waiter"; };
}

TEST(IdempotencyTest, FingerprintIgnoresMapOrderButNotContent) {
  v1::EvaluateRequest a = Request("r", 1);
  v1::EvaluateRequest b;
  b.set_request_id("r");
  b.set_subject_id("s");
  auto* as = b.add_assessments();
  as->set_instrument("mood");
  (*as->mutable_items())["item3"] = 0;  // inserted in another order
  (*as->mutable_items())["item2"] = 2;
  (*as->mutable_items())["item1"] = 1;
  EXPECT_EQ(IdempotencyCache::Fingerprint(a), IdempotencyCache::Fingerprint(b));
  EXPECT_NE(IdempotencyCache::Fingerprint(a),
            IdempotencyCache::Fingerprint(Request("r", 2)));
  EXPECT_EQ(IdempotencyCache::Fingerprint(a).size(), 64u);
}

TEST(IdempotencyTest, ReplayConflictAndKeysPerPrincipal) {
  IdempotencyCache cache({});
  const std::string key = IdempotencyCache::Key("anonymous", "r1");
  const std::string fp = IdempotencyCache::Fingerprint(Request("r1", 1));
  EXPECT_EQ(cache.Admit(key, fp, kT0, Never()).admission, Admission::kOwner);
  cache.Complete(key, DecisionWithId("d1"), 42, kT0);

  IdempotencyCache::AdmitResult again = cache.Admit(key, fp, kT0, Never());
  ASSERT_EQ(again.admission, Admission::kReplay);
  ASSERT_TRUE(again.decision.ok());
  EXPECT_EQ(again.decision->decision_id(), "d1");
  EXPECT_EQ(again.decision->audit_seq(), 42u);

  const std::string other = IdempotencyCache::Fingerprint(Request("r1", 3));
  EXPECT_EQ(cache.Admit(key, other, kT0, Never()).admission,
            Admission::kConflict);
  // Another caller's r1 is another key.
  EXPECT_EQ(
      cache.Admit(IdempotencyCache::Key("someone", "r1"), other, kT0, Never())
          .admission,
      Admission::kOwner);
}

TEST(IdempotencyTest, ReplayIsTheFirstDecisionWithItsAuditSeq) {
  // The cache keeps wire bytes; what comes back must be the whole decision.
  v1::Decision first;
  first.set_decision_id("d-full");
  first.set_action(v1::URGENT_SAFETY);
  first.set_recommended_step(3);
  first.add_refer_to("crisis_team");
  v1::MatchedRule* rule = first.add_matched_rules();
  rule->set_rule_id("SAFE-01");
  rule->set_explanation("phq9.item9 = 2 >= 1");
  first.add_warnings("w");
  IdempotencyCache cache({});
  const std::string key = IdempotencyCache::Key("p", "r");
  ASSERT_EQ(cache.Admit(key, "fp", kT0, Never()).admission, Admission::kOwner);
  cache.Complete(key, IdempotencyCache::Serialized(first), 99, kT0);

  IdempotencyCache::AdmitResult again = cache.Admit(key, "fp", kT0, Never());
  ASSERT_EQ(again.admission, Admission::kReplay);
  ASSERT_TRUE(again.decision.ok());
  v1::Decision expected = first;
  expected.set_audit_seq(99);
  EXPECT_EQ(again.decision->SerializeAsString(), expected.SerializeAsString());
}

TEST(IdempotencyTest, ConcurrentDuplicatesWaitForTheOwner) {
  IdempotencyCache cache({});
  const std::string key = IdempotencyCache::Key("p", "r");
  const std::string fp = "fp";
  ASSERT_EQ(cache.Admit(key, fp, kT0, Never()).admission, Admission::kOwner);
  std::vector<std::string> answers;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(cache
                  .Admit(key, fp, kT0,
                         [&](absl::StatusOr<v1::Decision> d) {
                           ASSERT_TRUE(d.ok());
                           EXPECT_EQ(d->audit_seq(), 7u);
                           answers.push_back(d->decision_id());
                         })
                  .admission,
              Admission::kWaiting);
  }
  EXPECT_TRUE(answers.empty());
  cache.Complete(key, DecisionWithId("d"), 7, kT0);
  EXPECT_EQ(answers, std::vector<std::string>({"d", "d", "d"}));
}

TEST(IdempotencyTest, FailureForgetsTheKeyAndTellsTheWaiters) {
  IdempotencyCache cache({});
  const std::string key = IdempotencyCache::Key("p", "r");
  ASSERT_EQ(cache.Admit(key, "fp", kT0, Never()).admission, Admission::kOwner);
  std::optional<absl::Status> told;
  cache.Admit(key, "fp", kT0,
              [&](absl::StatusOr<v1::Decision> d) { told = d.status(); });
  cache.Fail(key, absl::UnavailableError("disk"));
  ASSERT_TRUE(told.has_value());
  EXPECT_EQ(told->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cache.size(), 0u);
  // A retry starts afresh, even with other content.
  EXPECT_EQ(cache.Admit(key, "other", kT0, Never()).admission,
            Admission::kOwner);
}

TEST(IdempotencyTest, ForgetsAfterTheWindow) {
  IdempotencyCache cache({.capacity = 10, .window = absl::Hours(1)});
  const std::string key = IdempotencyCache::Key("p", "r");
  cache.Admit(key, "fp", kT0, Never());
  cache.Complete(key, DecisionWithId("d"), 1, kT0);
  EXPECT_EQ(cache.Admit(key, "fp", kT0 + absl::Minutes(59), Never()).admission,
            Admission::kReplay);
  EXPECT_EQ(cache.Admit(key, "other", kT0 + absl::Hours(1), Never()).admission,
            Admission::kOwner);
}

TEST(IdempotencyTest, EvictsTheLeastRecentlyUsedPastCapacity) {
  IdempotencyCache cache({.capacity = 2, .window = absl::Hours(24)});
  for (const char* id : {"a", "b"}) {
    cache.Admit(id, "fp", kT0, Never());
    cache.Complete(id, DecisionWithId(id), 1, kT0);
  }
  // Touch "a" so that "b" is the coldest.
  EXPECT_EQ(cache.Admit("a", "fp", kT0, Never()).admission, Admission::kReplay);
  cache.Admit("c", "fp", kT0, Never());
  cache.Complete("c", DecisionWithId("c"), 1, kT0);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Admit("a", "fp", kT0, Never()).admission, Admission::kReplay);
  EXPECT_EQ(cache.Admit("b", "fp", kT0, Never()).admission, Admission::kOwner);
}

TEST(IdempotencyTest, InFlightEntriesAreNeverEvicted) {
  IdempotencyCache cache({.capacity = 1, .window = absl::Hours(24)});
  cache.Admit("inflight", "fp", kT0, Never());
  for (const char* id : {"x", "y", "z"}) {
    cache.Admit(id, "fp", kT0, Never());
    cache.Complete(id, DecisionWithId(id), 1, kT0);
  }
  bool answered = false;
  EXPECT_EQ(cache
                .Admit("inflight", "fp", kT0,
                       [&](absl::StatusOr<v1::Decision>) { answered = true; })
                .admission,
            Admission::kWaiting);
  cache.Complete("inflight", DecisionWithId("i"), 9, kT0);
  EXPECT_TRUE(answered);
}

}  // namespace
}  // namespace stepwise::service
