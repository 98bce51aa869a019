// A few threads that run posted jobs in order, for work that must not block
// gRPC's callback threads: reading and compiling a candidate bundle, running
// its tests, waiting for an activation record to be durable, reading the
// audit log back (GovernanceService, SIGHUP, the bundle folder watch).
//
//   WorkQueue work(2);
//   work.Post([] { ... });   // returns at once
//   work.Stop();             // runs what was posted, then joins
//
// Thread-safety: Post and Stop may be called from any thread except a job of
// this queue (Stop joins the threads). The locks are std::mutex rather than
// absl::Mutex: Debian's Abseil is built without ThreadSanitizer
// instrumentation, and a queue handing work between threads must be
// checkable by TSan.
#ifndef STEPWISE_SERVICE_WORK_QUEUE_H_
#define STEPWISE_SERVICE_WORK_QUEUE_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace stepwise::service {

class WorkQueue {
 public:
  explicit WorkQueue(int threads);
  ~WorkQueue();  // Stop()

  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `job`. After Stop() it is dropped and false is returned.
  bool Post(std::function<void()> job);

  // Runs every job already posted, then joins the threads. Idempotent.
  void Stop();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::mutex join_mu_;  // held while joining; never together with mu_
  std::vector<std::thread> threads_;  // guarded by join_mu_
};

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_WORK_QUEUE_H_
