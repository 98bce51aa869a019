#include "service/uuid.h"

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
