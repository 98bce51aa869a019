#include "service/bundle_watch.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/bundle.h"

namespace stepwise::service {
namespace {

constexpr uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                             IN_CREATE | IN_DELETE | IN_DELETE_SELF |
                             IN_MOVE_SELF | IN_ATTRIB;

}  // namespace

absl::StatusOr<std::unique_ptr<BundleWatch>> BundleWatch::Start(
    std::string dir, std::function<void()> changed) {
  const int inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot watch ", dir, ": inotify: ", strerror(errno)));
  }
  const int stop_fd = eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) {
    close(inotify_fd);
    return absl::UnavailableError(
        absl::StrCat("cannot watch ", dir, ": eventfd: ", strerror(errno)));
  }
  std::unique_ptr<BundleWatch> watch(
      new BundleWatch(std::move(dir), std::move(changed), inotify_fd, stop_fd));
  if (inotify_add_watch(inotify_fd, watch->dir_.c_str(), kEvents) < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot watch ", watch->dir_, ": ", strerror(errno)));
  }
  watch->AddWatches();
  watch->last_sha256_ = watch->ContentSha256();
  watch->thread_ = std::thread([w = watch.get()] { w->Loop(); });
  return watch;
}

BundleWatch::BundleWatch(std::string dir, std::function<void()> changed,
                         int inotify_fd, int stop_fd)
    : dir_(std::move(dir)),
      changed_(std::move(changed)),
      inotify_fd_(inotify_fd),
      stop_fd_(stop_fd) {}

BundleWatch::~BundleWatch() { Stop(); }

void BundleWatch::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    // An eventfd write of 8 bytes cannot be short.
    if (write(stop_fd_, &one, sizeof(one)) < 0) {
    }
    thread_.join();
  }
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  inotify_fd_ = -1;
  stop_fd_ = -1;
}

void BundleWatch::AddWatches() {
  inotify_add_watch(inotify_fd_, dir_.c_str(), kEvents);
  // A subfolder that does not exist (yet) is simply not watched; the folder
  // itself reports its creation.
  for (const char* sub : {"instruments", "tests"}) {
    inotify_add_watch(inotify_fd_, absl::StrCat(dir_, "/", sub).c_str(),
                      kEvents);
  }
}

std::string BundleWatch::ContentSha256() const {
  absl::StatusOr<engine::BundleFiles> files = engine::ReadBundleFiles(dir_);
  return files.ok() ? engine::BundleSha256(*files) : "";
}

void BundleWatch::Loop() {
  alignas(inotify_event) char buffer[16 * 1024];
  for (;;) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    // Drain the batch; what the events say does not matter, the content does.
    while (read(inotify_fd_, buffer, sizeof(buffer)) > 0) {
    }
    AddWatches();
    const std::string sha = ContentSha256();
    if (sha.empty() || sha == last_sha256_) continue;
    last_sha256_ = sha;
    changed_();
  }
}

}  // namespace stepwise::service
