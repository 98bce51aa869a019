// The file system the audit log writes through, injected in the style of
// leveldb's Env so that tests can make a write or a sync fail (disk full, I/O
// error) or tear a write in half without filling a real disk; see
// service/audit/fault_fs.h.
//
// Paths are plain strings; a folder and a name are joined with JoinPath.
// Errors come back as absl::Status carrying the errno's code and the path.
//
// Thread-safety: a FileSystem may be used from any thread; one WritableFile is
// used by one thread at a time.
#ifndef STEPWISE_SERVICE_AUDIT_FILE_SYSTEM_H_
#define STEPWISE_SERVICE_AUDIT_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stepwise::service::audit {

// A file open for appending. Bytes are durable only after Sync() returns OK.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Appends all of `data`, or fails; after a failure some prefix of `data`
  // may have been written.
  virtual absl::Status Append(absl::string_view data) = 0;
  // fdatasync: the data appended so far (and the file size) reach the disk.
  virtual absl::Status Sync() = 0;
  // Closes the file (without syncing). Further calls fail. Idempotent.
  virtual absl::Status Close() = 0;
};

// A claim on a folder, held until destroyed (FileSystem::LockDir).
class DirLock {
 public:
  virtual ~DirLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens `path` for appending, creating it (mode 0600) if it does not exist.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(
      const std::string& path) = 0;
  // Creates `path` (mode 0600) and opens it for appending; ALREADY_EXISTS if
  // there is a file by that name. Two processes racing get one winner.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> CreateExclusive(
      const std::string& path) = 0;

  virtual absl::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  // The names (not paths) of the entries of `dir`, without "." and "..", in
  // no particular order.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  // Creates `dir` and any missing parents (mode 0750); OK if it exists.
  virtual absl::Status CreateDir(const std::string& dir) = 0;
  // fsync on the folder, so that names created or renamed in it are durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  // Cuts `path` to `size` bytes (not synced: sync an open handle after it).
  virtual absl::Status Truncate(const std::string& path, uint64_t size) = 0;
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  // False if nothing is at `path`; an error only if that cannot be told.
  virtual absl::StatusOr<bool> FileExists(const std::string& path) = 0;
  // The permission bits of `path` (mode & 0777).
  virtual absl::StatusOr<uint32_t> Permissions(const std::string& path) = 0;
  // chmod 0600.
  virtual absl::Status SetOwnerOnly(const std::string& path) = 0;
  // Claims `dir` (which must exist) for one writer: an exclusive advisory
  // lock (flock) on dir/LOCK, held until the result is destroyed and let go
  // by the kernel when the process dies. FAILED_PRECONDITION while another
  // holder, in this process or another, has it. Not pure: every file system
  // here works on real folders, so wrappers inherit the POSIX lock.
  virtual absl::StatusOr<std::unique_ptr<DirLock>> LockDir(
      const std::string& dir);
};

// The POSIX file system. Never null; lives for the whole process.
FileSystem* DefaultFileSystem();

// "dir/name"; `dir` may end with a slash.
std::string JoinPath(absl::string_view dir, absl::string_view name);
// The folder holding `path` ("." for a bare name), for SyncDir after
// creating `path`.
std::string ParentDir(absl::string_view path);

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_FILE_SYSTEM_H_
