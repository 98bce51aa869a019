#include "service/audit/fault_fs.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "service/audit/annotated_mutex.h"

namespace stepwise::service::audit {
namespace {

absl::Status Injected(int error_number, absl::string_view op,
                      const std::string& path) {
  return absl::ErrnoToStatus(error_number,
                             absl::StrCat(op, " ", path, " (injected)"));
}

}  // namespace

class FaultInjectingFileSystem::File final : public WritableFile {
 public:
  File(FaultInjectingFileSystem* fs, std::string path,
       std::unique_ptr<WritableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}

  absl::Status Append(absl::string_view data) override {
    const Armed armed = fs_->NextAppend();
    switch (armed.fault) {
      case Fault::kNone:
        return base_->Append(data);
      case Fault::kFail:
        return Injected(armed.error_number, "write", path_);
      case Fault::kTear:
        base_->Append(data.substr(0, data.size() / 2)).IgnoreError();
        return Injected(armed.error_number, "write", path_);
    }
    return absl::InternalError("unreachable");
  }

  absl::Status Sync() override {
    const Armed armed = fs_->NextSync();
    if (armed.fault != Fault::kNone) {
      return Injected(armed.error_number, "fdatasync", path_);
    }
    return base_->Sync();
  }

  absl::Status Close() override { return base_->Close(); }

 private:
  FaultInjectingFileSystem* const fs_;
  const std::string path_;
  const std::unique_ptr<WritableFile> base_;
};

void FaultInjectingFileSystem::FailAppend(int n, int error_number) {
  AnnotatedMutexLock lock(&mu_);
  append_faults_.push_back({appends_ + n, Fault::kFail, error_number});
}

void FaultInjectingFileSystem::TearAppend(int n, int error_number) {
  AnnotatedMutexLock lock(&mu_);
  append_faults_.push_back({appends_ + n, Fault::kTear, error_number});
}

void FaultInjectingFileSystem::FailSync(int n, int error_number) {
  AnnotatedMutexLock lock(&mu_);
  sync_faults_.push_back({syncs_ + n, Fault::kFail, error_number});
}

void FaultInjectingFileSystem::FailTruncate(int error_number) {
  AnnotatedMutexLock lock(&mu_);
  truncate_errno_ = error_number;
}

int FaultInjectingFileSystem::appends() const {
  AnnotatedMutexLock lock(&mu_);
  return appends_;
}

int FaultInjectingFileSystem::syncs() const {
  AnnotatedMutexLock lock(&mu_);
  return syncs_;
}

namespace {

template <typename Faults>
auto TakeFault(Faults& faults, int count) {
  for (auto it = faults.begin(); it != faults.end(); ++it) {
    if (it->at == count) {
      auto armed = *it;
      faults.erase(it);
      return armed;
    }
  }
  return typename Faults::value_type{count, {}, 0};
}

}  // namespace

FaultInjectingFileSystem::Armed FaultInjectingFileSystem::NextAppend() {
  AnnotatedMutexLock lock(&mu_);
  return TakeFault(append_faults_, ++appends_);
}

FaultInjectingFileSystem::Armed FaultInjectingFileSystem::NextSync() {
  AnnotatedMutexLock lock(&mu_);
  return TakeFault(sync_faults_, ++syncs_);
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectingFileSystem::OpenForAppend(const std::string& path) {
  auto file = base_->OpenForAppend(path);
  if (!file.ok()) return file.status();
  return std::make_unique<File>(this, path, *std::move(file));
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectingFileSystem::CreateExclusive(const std::string& path) {
  auto file = base_->CreateExclusive(path);
  if (!file.ok()) return file.status();
  return std::make_unique<File>(this, path, *std::move(file));
}

absl::Status FaultInjectingFileSystem::Truncate(const std::string& path,
                                                uint64_t size) {
  {
    AnnotatedMutexLock lock(&mu_);
    if (truncate_errno_ != 0) {
      return Injected(truncate_errno_, "truncate", path);
    }
  }
  return base_->Truncate(path, size);
}

}  // namespace stepwise::service::audit
