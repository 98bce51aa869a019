// absl::Mutex as ThreadSanitizer needs to see it. Debian 12's Abseil is built
// without TSan instrumentation, so in a -fsanitize=thread build TSan cannot
// see that an absl::Mutex orders memory and reports races between accesses
// the mutex does order. AnnotatedMutexLock and AnnotatedWait tell TSan about
// every lock and unlock (an acquire and a release on the mutex's address);
// outside TSan builds they are exactly absl::MutexLock and
// absl::CondVar::Wait / WaitWithDeadline.
//
// Waiting goes through absl::CondVar, not Mutex::Await: Await evaluates a
// waiter's condition on the unlocking thread, inside the uninstrumented
// library, which no annotation here can order.
//
// Thread-safety: as absl::Mutex.
#ifndef STEPWISE_SERVICE_AUDIT_ANNOTATED_MUTEX_H_
#define STEPWISE_SERVICE_AUDIT_ANNOTATED_MUTEX_H_

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

// The root CMakeLists.txt undefines GCC's __SANITIZE_THREAD__ in TSan builds
// (to keep protobuf's class layouts) and defines STEPWISE_TSAN instead.
#if defined(ABSL_HAVE_THREAD_SANITIZER) || defined(STEPWISE_TSAN)
#define STEPWISE_AUDIT_ANNOTATE_TSAN 1
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace stepwise::service::audit {

inline void TsanAcquire(absl::Mutex* mu) {
#ifdef STEPWISE_AUDIT_ANNOTATE_TSAN
  __tsan_acquire(mu);
#else
  (void)mu;
#endif
}

inline void TsanRelease(absl::Mutex* mu) {
#ifdef STEPWISE_AUDIT_ANNOTATE_TSAN
  __tsan_release(mu);
#else
  (void)mu;
#endif
}

// absl::MutexLock, visible to TSan.
class ABSL_SCOPED_LOCKABLE AnnotatedMutexLock {
 public:
  explicit AnnotatedMutexLock(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock();
    TsanAcquire(mu_);
  }
  ~AnnotatedMutexLock() ABSL_UNLOCK_FUNCTION() {
    TsanRelease(mu_);
    mu_->Unlock();
  }

  AnnotatedMutexLock(const AnnotatedMutexLock&) = delete;
  AnnotatedMutexLock& operator=(const AnnotatedMutexLock&) = delete;

 private:
  absl::Mutex* const mu_;
};

// cv->Wait(mu), visible to TSan. `mu` must be held.
inline void AnnotatedWait(absl::CondVar* cv, absl::Mutex* mu)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  TsanRelease(mu);
  cv->Wait(mu);
  TsanAcquire(mu);
}

// cv->WaitWithDeadline(mu, deadline), visible to TSan; true if the deadline
// passed. `mu` must be held.
inline bool AnnotatedWaitWithDeadline(absl::CondVar* cv, absl::Mutex* mu,
                                      absl::Time deadline)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  TsanRelease(mu);
  const bool timed_out = cv->WaitWithDeadline(mu, deadline);
  TsanAcquire(mu);
  return timed_out;
}

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_ANNOTATED_MUTEX_H_
