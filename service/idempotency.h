// Idempotency of Evaluate: a repeated request_id with the same content gets
// the first decision back (no second audit record); the same request_id with
// different content is refused (ALREADY_EXISTS).
//
// What is remembered is not the Decision but what it is rebuilt from
// (FirstAnswer): evaluation is deterministic given the bundle, the request
// and the time it was received (tests/engine/evaluate_digest_test.cc pins
// it), and a duplicate carries the same request (its fingerprint matched).
// So the cache keeps the bundle that decided, the time, and the identity the
// answer was given — about a hundred bytes per id instead of a ~1.5 KB
// Decision — and the rare duplicate is evaluated again under that very
// bundle, even after a reload, giving the same bytes.
//
// Keys are "principal \0 request_id", so two callers cannot collide. Content
// is compared by a fingerprint (SHA-256 of the request's deterministic
// serialization). An entry is remembered for `window` after its decision was
// recorded, and at most `capacity` entries are kept (least recently used go
// first); entries whose decision is still being recorded are never evicted.
// The cache lives in memory: a restarted server forgets it (docs/service.md,
// "Idempotency").
//
// Concurrent duplicates: the first call to Admit a key becomes its owner and
// must end with Complete() or Fail(); a duplicate arriving meanwhile is parked
// as a waiter and called back with the owner's outcome, so two concurrent
// calls never produce two records.
//
// Thread-safety: all members may be called from any thread; waiters run on
// the thread that calls Complete/Fail, outside the lock, and must not block.
// The lock is taken through audit::AnnotatedMutexLock so that TSan sees it
// (Debian's Abseil is not TSan-instrumented).
#ifndef STEPWISE_SERVICE_IDEMPOTENCY_H_
#define STEPWISE_SERVICE_IDEMPOTENCY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::service {

struct IdempotencyOptions {
  // Most remembered request ids. 0 disables idempotency. Default: 50000.
  size_t capacity = 50000;
  // How long after its decision a request id is remembered. Default: 24h.
  absl::Duration window = absl::Hours(24);
};

// The first call's answer, as a duplicate rebuilds it.
struct FirstAnswer {
  std::shared_ptr<const engine::Bundle> bundle;  // the bundle that decided
  absl::Time received_at;                        // the first call's
  std::string decision_id;
  absl::Time evaluated_at;
  uint64_t audit_seq = 0;
};

class IdempotencyCache {
 public:
  // Receives the owner's answer or its failure.
  using Waiter = std::function<void(absl::StatusOr<FirstAnswer> first)>;

  enum class Admission {
    kOwner,     // new key: evaluate, then Complete() or Fail()
    kReplay,    // seen with the same content: `decision` is the first answer
    kWaiting,   // the same request is in flight: the waiter will be called
    kConflict,  // seen with different content
  };
  struct AdmitResult {
    Admission admission;
    FirstAnswer first;  // kReplay only
  };

  explicit IdempotencyCache(IdempotencyOptions options);

  // `waiter` is kept only for kWaiting.
  AdmitResult Admit(const std::string& key, const std::string& fingerprint,
                    absl::Time now, Waiter waiter);
  // The owner's decision is recorded (first.audit_seq): remember it, answer
  // the waiters.
  void Complete(const std::string& key, FirstAnswer first, absl::Time now);
  // The owner produced no decision: forget the key (a retry starts afresh)
  // and pass `status` to the waiters.
  void Fail(const std::string& key, const absl::Status& status);

  // Entries held, in flight included.
  size_t size() const;

  // "principal \0 request_id".
  static std::string Key(const std::string& principal,
                         const std::string& request_id);
  // SHA-256 (hex) of the request's deterministic serialization.
  static std::string Fingerprint(const v1::EvaluateRequest& request);

 private:
  struct Entry {
    std::string fingerprint;
    bool done = false;
    FirstAnswer first;  // done only
    absl::Time recorded_at;
    std::vector<Waiter> waiters;           // in flight only
    std::list<std::string>::iterator lru;  // done only; front = most recent
  };

  // Drops expired entries from the cold end and trims to capacity.
  void EvictLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const IdempotencyOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // done entries only
};

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_IDEMPOTENCY_H_
