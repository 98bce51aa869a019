#include "service/work_queue.h"

#include <utility>

namespace stepwise::service {

WorkQueue::WorkQueue(int threads) {
  absl::MutexLock join_lock(&join_mu_);
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkQueue::~WorkQueue() { Stop(); }

bool WorkQueue::Post(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  jobs_.push_back(std::move(job));
  return true;
}

void WorkQueue::Stop() {
  absl::MutexLock join_lock(&join_mu_);  // a second Stop waits for the first
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WorkQueue::Loop() {
  for (;;) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !jobs_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (jobs_.empty()) return;  // stopping, and nothing left to run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace stepwise::service
