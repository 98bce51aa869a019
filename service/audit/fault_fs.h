// Test support: a FileSystem that forwards to another one and fails chosen
// operations, so that tests can drive the audit log through a full disk, an
// I/O error or a write torn in half by a crash without touching a real disk's
// limits. Linked only into tests (target stepwise::audit_testing).
//
// Faults are armed by count: FailAppend(3, ENOSPC) makes the third Append
// from now on (through any file opened here) fail. Each armed fault fires
// once.
//
// Thread-safety: all members may be called from any thread.
#ifndef STEPWISE_SERVICE_AUDIT_FAULT_FS_H_
#define STEPWISE_SERVICE_AUDIT_FAULT_FS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "service/audit/file_system.h"

namespace stepwise::service::audit {

class FaultInjectingFileSystem final : public FileSystem {
 public:
  // `base` must outlive this object.
  explicit FaultInjectingFileSystem(FileSystem* base) : base_(base) {}

  // The n-th Append from now on (n >= 1) writes nothing and fails with
  // `error_number` (e.g. ENOSPC).
  void FailAppend(int n, int error_number);
  // The n-th Append from now on writes the first half of its data (rounded
  // down), then fails with `error_number`: what a crash or a full disk in the
  // middle of a write leaves behind.
  void TearAppend(int n, int error_number);
  // The n-th Sync from now on fails with `error_number` (e.g. EIO).
  void FailSync(int n, int error_number);
  // Every Truncate fails with `error_number` (0: stop failing).
  void FailTruncate(int error_number);

  // Operations seen so far, failed ones included.
  int appends() const;
  int syncs() const;

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateExclusive(
      const std::string& path) override;
  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    return base_->ReadFile(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    return base_->ListDir(dir);
  }
  absl::Status CreateDir(const std::string& dir) override {
    return base_->CreateDir(dir);
  }
  absl::Status SyncDir(const std::string& dir) override {
    return base_->SyncDir(dir);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  absl::Status Remove(const std::string& path) override {
    return base_->Remove(path);
  }
  absl::Status Truncate(const std::string& path, uint64_t size) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    return base_->FileSize(path);
  }
  absl::StatusOr<bool> FileExists(const std::string& path) override {
    return base_->FileExists(path);
  }
  absl::StatusOr<uint32_t> Permissions(const std::string& path) override {
    return base_->Permissions(path);
  }
  absl::Status SetOwnerOnly(const std::string& path) override {
    return base_->SetOwnerOnly(path);
  }

 private:
  class File;
  enum class Fault { kNone, kFail, kTear };
  struct Armed {
    int at;  // fires when the operation count reaches this
    Fault fault;
    int error_number;
  };

  // Counts one append (or sync) and returns the fault armed for it, if any.
  Armed NextAppend();
  Armed NextSync();

  FileSystem* const base_;
  mutable absl::Mutex mu_;
  int appends_ ABSL_GUARDED_BY(mu_) = 0;
  int syncs_ ABSL_GUARDED_BY(mu_) = 0;
  int truncate_errno_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Armed> append_faults_ ABSL_GUARDED_BY(mu_);
  std::vector<Armed> sync_faults_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_FAULT_FS_H_
