// Watching the bundle folder (option watch_bundle): when its content
// changes, ask for a reload, as SIGHUP does.
//
// inotify reports every step of a save (create, write, close, rename), and
// an editor may write a file in several pieces. Rather than guess when an
// edit is finished, each batch of events re-reads the folder and compares
// the sha256 of its files (the bundle's own sha256) with the last content
// seen: only a new content asks for a reload. A half-written file therefore
// costs at most one refused reload (logged and counted), and the next good
// save activates.
//
// The folder and its instruments/ and tests/ subfolders are watched (the
// subfolders are re-added after every batch, so a folder replaced by a
// rename, as a Kubernetes ConfigMap update does, is followed).
//
// Thread-safety: one thread of its own calls `changed`; Stop may be called
// from any other thread.
#ifndef STEPWISE_SERVICE_BUNDLE_WATCH_H_
#define STEPWISE_SERVICE_BUNDLE_WATCH_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace stepwise::service {

class BundleWatch {
 public:
  // Starts watching `dir`; `changed` is called on the watch thread each time
  // the content differs from the last content seen (initially: what is in
  // the folder now). UNAVAILABLE when inotify cannot be set up.
  static absl::StatusOr<std::unique_ptr<BundleWatch>> Start(
      std::string dir, std::function<void()> changed);

  ~BundleWatch();  // Stop()
  BundleWatch(const BundleWatch&) = delete;
  BundleWatch& operator=(const BundleWatch&) = delete;

  // Stops the thread and closes the descriptors. Idempotent.
  void Stop();

 private:
  BundleWatch(std::string dir, std::function<void()> changed, int inotify_fd,
              int stop_fd);
  void Loop();
  void AddWatches();
  // The folder's content sha256, or "" while it cannot be read.
  std::string ContentSha256() const;

  const std::string dir_;
  const std::function<void()> changed_;
  int inotify_fd_;
  int stop_fd_;              // an eventfd; written once by Stop
  std::string last_sha256_;  // only the watch thread touches it after Start
  std::thread thread_;
};

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_BUNDLE_WATCH_H_
