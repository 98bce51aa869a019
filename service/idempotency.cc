#include "service/idempotency.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "service/audit/annotated_mutex.h"
#include "service/audit/format.h"

namespace stepwise::service {

IdempotencyCache::IdempotencyCache(IdempotencyOptions options)
    : options_(options) {}

std::string IdempotencyCache::Key(const std::string& principal,
                                  const std::string& request_id) {
  return absl::StrCat(principal, std::string(1, '\0'), request_id);
}

std::string IdempotencyCache::Fingerprint(const v1::EvaluateRequest& request) {
  // Deterministic serialization sorts map entries, so the same content
  // always hashes the same whatever order the client's map iterated in.
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&out);
  }
  std::string hex(64, '0');
  audit::Sha256HexTo(bytes, hex.data());
  return hex;
}

IdempotencyCache::AdmitResult IdempotencyCache::Admit(
    const std::string& key, const std::string& fingerprint, absl::Time now,
    Waiter waiter) {
  audit::AnnotatedMutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.done &&
      now - it->second.recorded_at >= options_.window) {
    EraseLocked(key);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    Entry entry;
    entry.fingerprint = fingerprint;
    entries_.emplace(key, std::move(entry));
    return {Admission::kOwner, {}};
  }
  Entry& entry = it->second;
  if (entry.fingerprint != fingerprint) return {Admission::kConflict, {}};
  if (!entry.done) {
    entry.waiters.push_back(std::move(waiter));
    return {Admission::kWaiting, {}};
  }
  lru_.splice(lru_.begin(), lru_, entry.lru);
  return {Admission::kReplay, entry.first};
}

void IdempotencyCache::Complete(const std::string& key, FirstAnswer first,
                                absl::Time now) {
  std::vector<Waiter> waiters;
  FirstAnswer told;  // the waiters' copy, if there are any
  {
    audit::AnnotatedMutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.done) return;  // not ours
    Entry& entry = it->second;
    waiters.swap(entry.waiters);
    if (!waiters.empty()) told = first;
    entry.done = true;
    entry.first = std::move(first);
    entry.recorded_at = now;
    lru_.push_front(key);
    entry.lru = lru_.begin();
    EvictLocked(now);
  }
  for (Waiter& waiter : waiters) waiter(told);
}

void IdempotencyCache::Fail(const std::string& key,
                            const absl::Status& status) {
  std::vector<Waiter> waiters;
  {
    audit::AnnotatedMutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.done) return;
    waiters.swap(it->second.waiters);
    entries_.erase(it);
  }
  for (Waiter& waiter : waiters) waiter(status);
}

size_t IdempotencyCache::size() const {
  audit::AnnotatedMutexLock lock(&mu_);
  return entries_.size();
}

void IdempotencyCache::EvictLocked(absl::Time now) {
  while (!lru_.empty()) {
    const std::string& coldest = lru_.back();
    auto it = entries_.find(coldest);
    const bool expired = now - it->second.recorded_at >= options_.window;
    if (lru_.size() <= options_.capacity && !expired) break;
    entries_.erase(it);
    lru_.pop_back();
  }
}

void IdempotencyCache::EraseLocked(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (it->second.done) lru_.erase(it->second.lru);
  entries_.erase(it);
}

}  // namespace stepwise::service
