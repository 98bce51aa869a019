#include "service/audit/file_system.h"

#include <cerrno>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/audit/fault_fs.h"
#include "tests/service/audit/test_util.h"

namespace stepwise::service::audit {
namespace {

using ::stepwise::service::audit::testing::FreshDir;
using ::stepwise::service::audit::testing::ReadAll;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

TEST(FileSystemTest, Paths) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(ParentDir("a/b/c"), "a/b");
  EXPECT_EQ(ParentDir("a/b/"), "a");
  EXPECT_EQ(ParentDir("/a"), "/");
  EXPECT_EQ(ParentDir("a"), ".");
}

TEST(FileSystemTest, PosixOperations) {
  FileSystem& fs = *DefaultFileSystem();
  const std::string dir = JoinPath(FreshDir(), "x/y");
  ASSERT_TRUE(fs.CreateDir(dir).ok());
  ASSERT_TRUE(fs.CreateDir(dir).ok());  // exists: fine
  const std::string path = JoinPath(dir, "f");
  {
    absl::StatusOr<std::unique_ptr<WritableFile>> f = fs.CreateExclusive(path);
    ASSERT_TRUE(f.ok()) << f.status();
    ASSERT_TRUE((*f)->Append("hello ").ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE((*f)->Close().ok());
    EXPECT_FALSE((*f)->Append("x").ok());
  }
  EXPECT_EQ(fs.CreateExclusive(path).status().code(),
            absl::StatusCode::kAlreadyExists);
  {
    absl::StatusOr<std::unique_ptr<WritableFile>> f = fs.OpenForAppend(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append("world").ok());
  }
  EXPECT_EQ(*fs.ReadFile(path), "hello world");
  EXPECT_EQ(*fs.FileSize(path), 11u);
  EXPECT_EQ(*fs.Permissions(path) & 077, 0u);  // created owner-only
  ASSERT_TRUE(fs.Truncate(path, 5).ok());
  EXPECT_EQ(*fs.ReadFile(path), "hello");
  ASSERT_TRUE(fs.Rename(path, JoinPath(dir, "g")).ok());
  EXPECT_THAT(*fs.ListDir(dir), UnorderedElementsAre("g"));
  EXPECT_FALSE(*fs.FileExists(path));
  ASSERT_TRUE(fs.SyncDir(dir).ok());
  ASSERT_TRUE(fs.Remove(JoinPath(dir, "g")).ok());
  const absl::Status missing = fs.ReadFile(path).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr(path));
}

TEST(FaultInjectingFileSystemTest, FaultsFireOnceAtTheirCount) {
  FaultInjectingFileSystem fs(DefaultFileSystem());
  const std::string path = JoinPath(FreshDir(), "f");
  absl::StatusOr<std::unique_ptr<WritableFile>> f = fs.OpenForAppend(path);
  ASSERT_TRUE(f.ok());
  fs.FailAppend(2, ENOSPC);
  fs.TearAppend(3, EIO);
  fs.FailSync(1, EIO);
  EXPECT_TRUE((*f)->Append("aa").ok());
  const absl::Status full = (*f)->Append("bb");
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_FALSE((*f)->Append("cdef").ok());
  EXPECT_TRUE((*f)->Append("!").ok());
  EXPECT_FALSE((*f)->Sync().ok());
  EXPECT_TRUE((*f)->Sync().ok());
  EXPECT_EQ(ReadAll(path), "aacd!");
  EXPECT_EQ(fs.appends(), 4);
  EXPECT_EQ(fs.syncs(), 2);
  fs.FailTruncate(EIO);
  EXPECT_FALSE(fs.Truncate(path, 0).ok());
  fs.FailTruncate(0);
  EXPECT_TRUE(fs.Truncate(path, 0).ok());
}

}  // namespace
}  // namespace stepwise::service::audit
