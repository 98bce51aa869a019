#include "service/idempotency.h"

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
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

FirstAnswer AnswerWithId(const std::string& id, uint64_t audit_seq) {
  FirstAnswer first;
  first.decision_id = id;
  first.received_at = kT0;
  first.evaluated_at = kT0 + absl::Milliseconds(1);
  first.audit_seq = audit_seq;
  return first;
}

IdempotencyCache::Waiter Never() {
  return [](absl::StatusOr<FirstAnswer>) { FAIL() << "unexpected waiter"; };
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
  cache.Complete(key, AnswerWithId("d1", 42), kT0);

  IdempotencyCache::AdmitResult again = cache.Admit(key, fp, kT0, Never());
  ASSERT_EQ(again.admission, Admission::kReplay);
  EXPECT_EQ(again.first.decision_id, "d1");
  EXPECT_EQ(again.first.audit_seq, 42u);
  EXPECT_EQ(again.first.received_at, kT0);
  EXPECT_EQ(again.first.evaluated_at, kT0 + absl::Milliseconds(1));

  const std::string other = IdempotencyCache::Fingerprint(Request("r1", 3));
  EXPECT_EQ(cache.Admit(key, other, kT0, Never()).admission,
            Admission::kConflict);
  // Another caller's r1 is another key.
  EXPECT_EQ(
      cache.Admit(IdempotencyCache::Key("someone", "r1"), other, kT0, Never())
          .admission,
      Admission::kOwner);
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
                         [&](absl::StatusOr<FirstAnswer> first) {
                           ASSERT_TRUE(first.ok());
                           EXPECT_EQ(first->audit_seq, 7u);
                           answers.push_back(first->decision_id);
                         })
                  .admission,
              Admission::kWaiting);
  }
  EXPECT_TRUE(answers.empty());
  cache.Complete(key, AnswerWithId("d", 7), kT0);
  EXPECT_EQ(answers, std::vector<std::string>({"d", "d", "d"}));
}

TEST(IdempotencyTest, ManyThreadsAdmittingOneKeyMakeOneOwner) {
  // As the server does it: callers on several threads, the owner completed
  // from another (the audit writer). Run under TSan by scripts/test.sh.
  IdempotencyCache cache({});
  const std::string key = IdempotencyCache::Key("p", "r");
  constexpr int kThreads = 8;
  std::atomic<int> owners{0}, replays{0}, waiting{0}, told{0};
  std::atomic<bool> owner_ready{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      IdempotencyCache::AdmitResult r =
          cache.Admit(key, "fp", kT0, [&](absl::StatusOr<FirstAnswer> first) {
            EXPECT_TRUE(first.ok());
            if (first.ok()) {
              EXPECT_EQ(first->decision_id, "d");
            }
            told.fetch_add(1);
          });
      switch (r.admission) {
        case Admission::kOwner:
          owners.fetch_add(1);
          owner_ready.store(true);
          break;
        case Admission::kReplay:
          EXPECT_EQ(r.first.decision_id, "d");
          replays.fetch_add(1);
          break;
        case Admission::kWaiting:
          waiting.fetch_add(1);
          break;
        case Admission::kConflict:
          ADD_FAILURE() << "same content cannot conflict";
          break;
      }
    });
  }
  std::thread writer([&] {
    // Bounded: every caller has admitted long before this many yields.
    for (int spin = 0; spin < 10000000 && !owner_ready.load(); ++spin) {
      std::this_thread::yield();
    }
    cache.Complete(key, AnswerWithId("d", 3), kT0);
  });
  for (std::thread& t : threads) t.join();
  writer.join();
  EXPECT_EQ(owners.load(), 1);
  EXPECT_EQ(owners.load() + replays.load() + waiting.load(), kThreads);
  EXPECT_EQ(told.load(), waiting.load());
}

TEST(IdempotencyTest, FailureForgetsTheKeyAndTellsTheWaiters) {
  IdempotencyCache cache({});
  const std::string key = IdempotencyCache::Key("p", "r");
  ASSERT_EQ(cache.Admit(key, "fp", kT0, Never()).admission, Admission::kOwner);
  std::optional<absl::Status> told;
  cache.Admit(key, "fp", kT0, [&](absl::StatusOr<FirstAnswer> first) {
    told = first.status();
  });
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
  cache.Complete(key, AnswerWithId("d", 1), kT0);
  EXPECT_EQ(cache.Admit(key, "fp", kT0 + absl::Minutes(59), Never()).admission,
            Admission::kReplay);
  EXPECT_EQ(cache.Admit(key, "other", kT0 + absl::Hours(1), Never()).admission,
            Admission::kOwner);
}

TEST(IdempotencyTest, EvictsTheLeastRecentlyUsedPastCapacity) {
  IdempotencyCache cache({.capacity = 2, .window = absl::Hours(24)});
  for (const char* id : {"a", "b"}) {
    cache.Admit(id, "fp", kT0, Never());
    cache.Complete(id, AnswerWithId(id, 1), kT0);
  }
  // Touch "a" so that "b" is the coldest.
  EXPECT_EQ(cache.Admit("a", "fp", kT0, Never()).admission, Admission::kReplay);
  cache.Admit("c", "fp", kT0, Never());
  cache.Complete("c", AnswerWithId("c", 1), kT0);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Admit("a", "fp", kT0, Never()).admission, Admission::kReplay);
  EXPECT_EQ(cache.Admit("b", "fp", kT0, Never()).admission, Admission::kOwner);
}

TEST(IdempotencyTest, InFlightEntriesAreNeverEvicted) {
  IdempotencyCache cache({.capacity = 1, .window = absl::Hours(24)});
  cache.Admit("inflight", "fp", kT0, Never());
  for (const char* id : {"x", "y", "z"}) {
    cache.Admit(id, "fp", kT0, Never());
    cache.Complete(id, AnswerWithId(id, 1), kT0);
  }
  bool answered = false;
  EXPECT_EQ(cache
                .Admit("inflight", "fp", kT0,
                       [&](absl::StatusOr<FirstAnswer>) { answered = true; })
                .admission,
            Admission::kWaiting);
  cache.Complete("inflight", AnswerWithId("i", 9), kT0);
  EXPECT_TRUE(answered);
}

}  // namespace
}  // namespace stepwise::service
