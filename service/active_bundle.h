// The bundle the server answers with, swapped atomically: a call takes one
// snapshot at its start and evaluates against it to the end, so a reload
// (service/reloader.h: ReloadRuleset, SIGHUP, the folder watch) never
// changes the rules under a call that is running.
//
// Thread-safety: Get and Set may be called from any thread.
#ifndef STEPWISE_SERVICE_ACTIVE_BUNDLE_H_
#define STEPWISE_SERVICE_ACTIVE_BUNDLE_H_

#include <atomic>
#include <memory>

#include "absl/time/time.h"
#include "engine/bundle.h"

namespace stepwise::service {

class ActiveBundle {
 public:
  struct Snapshot {
    std::shared_ptr<const engine::Bundle> bundle;
    absl::Time loaded_at;
  };

  // Null until the first Set.
  std::shared_ptr<const Snapshot> Get() const { return current_.load(); }

  // Returns the previous snapshot (null at the first activation).
  std::shared_ptr<const Snapshot> Set(
      std::shared_ptr<const engine::Bundle> bundle, absl::Time loaded_at) {
    auto next = std::make_shared<const Snapshot>(
        Snapshot{std::move(bundle), loaded_at});
    return current_.exchange(std::move(next));
  }

 private:
  std::atomic<std::shared_ptr<const Snapshot>> current_;
};

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_ACTIVE_BUNDLE_H_
