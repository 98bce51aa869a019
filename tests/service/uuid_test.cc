#include "service/uuid.h"

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace stepwise::service {
namespace {

// 2026-11-20T12:00:00.123Z
constexpr int64_t kMillis = 1795176000123;

TEST(UuidV7Test, EncodesTheClockVersionAndVariant) {
  UuidV7Generator ids([] { return absl::FromUnixMillis(kMillis); },
                      UuidV7Generator::SeededRandom(1));
  const std::string id = ids.Next();
  EXPECT_TRUE(IsUuidV7(id)) << id;
  // The first 48 bits are the Unix milliseconds.
  EXPECT_EQ(id.substr(0, 8) + id.substr(9, 4), "01a1f8d3ea7b");
  EXPECT_EQ(std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16),
            kMillis);
}

TEST(UuidV7Test, StrictlyIncreasingWhenTheClockStandsStillOrStepsBack) {
  int64_t now = kMillis;
  UuidV7Generator ids([&] { return absl::FromUnixMillis(now); },
                      UuidV7Generator::SeededRandom(2));
  std::string previous = ids.Next();
  for (int i = 0; i < 10000; ++i) {  // more than the 12-bit counter holds
    if (i == 5000) now -= 1000;      // the clock steps back a second
    const std::string id = ids.Next();
    ASSERT_TRUE(IsUuidV7(id)) << id;
    ASSERT_GT(id, previous) << "at " << i;
    previous = id;
  }
}

TEST(UuidV7Test, SameSeedSameIds) {
  auto clock = [] { return absl::FromUnixMillis(kMillis); };
  UuidV7Generator a(clock, UuidV7Generator::SeededRandom(7));
  UuidV7Generator b(clock, UuidV7Generator::SeededRandom(7));
  UuidV7Generator c(clock, UuidV7Generator::SeededRandom(8));
  const std::string first = a.Next();
  EXPECT_EQ(first, b.Next());
  EXPECT_NE(first, c.Next());
}

TEST(UuidV7Test, DefaultGeneratorIsUnique) {
  UuidV7Generator ids;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = ids.Next();
    ASSERT_TRUE(IsUuidV7(id)) << id;
    ASSERT_TRUE(seen.insert(id).second) << id;
  }
}

// The default randomness is buffered per thread; a forked child must not
// hand out the bytes its parent goes on to use.
TEST(UuidV7Test, ForkedChildDoesNotRepeatTheParentsIds) {
  UuidV7Generator ids;
  ids.Next();  // the buffer now holds bytes both would otherwise share
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string child_id = ids.Next();
    const ssize_t n = write(fds[1], child_id.data(), child_id.size());
    _exit(n == static_cast<ssize_t>(child_id.size()) ? 0 : 1);
  }
  close(fds[1]);
  const std::string parent_id = ids.Next();
  std::string child_id(36, '\0');
  size_t got = 0;
  while (got < child_id.size()) {
    const ssize_t n =
        read(fds[0], child_id.data() + got, child_id.size() - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, child_id.size());
  EXPECT_TRUE(IsUuidV7(child_id)) << child_id;
  // The random tail (rand_b) differs.
  EXPECT_NE(child_id.substr(19), parent_id.substr(19));
}

TEST(UuidV7Test, IsUuidV7RejectsOtherShapes) {
  EXPECT_FALSE(IsUuidV7(""));
  EXPECT_FALSE(IsUuidV7("01a1a5d9-1bfb-4000-8000-000000000000"));  // v4
  EXPECT_FALSE(IsUuidV7("01a1a5d9-1bfb-7000-c000-000000000000"));  // variant
  EXPECT_FALSE(IsUuidV7("01A1A5D9-1BFB-7000-8000-000000000000"));  // case
  EXPECT_FALSE(IsUuidV7("01a1a5d91bfb-7000-8000-0000000000000"));  // dashes
  EXPECT_TRUE(IsUuidV7("01a1a5d9-1bfb-7000-8000-000000000000"));
}

}  // namespace
}  // namespace stepwise::service
