#include "service/audit/format.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stepwise::service::audit {
namespace {

using ::testing::HasSubstr;

const absl::Time kTime = absl::FromUnixSeconds(1795167000);

TEST(FormatTest, SegmentNames) {
  EXPECT_EQ(SegmentFileName(1), "000001.jsonl");
  EXPECT_EQ(SegmentFileName(1234567), "1234567.jsonl");
  EXPECT_EQ(ParseSegmentFileName("000042.jsonl"), 42u);
  EXPECT_EQ(ParseSegmentFileName("1234567.jsonl"), 1234567u);
  EXPECT_EQ(ParseSegmentFileName("42.jsonl"), std::nullopt);
  EXPECT_EQ(ParseSegmentFileName("0000042.jsonl"), std::nullopt);
  EXPECT_EQ(ParseSegmentFileName("000000.jsonl"), std::nullopt);
  EXPECT_EQ(ParseSegmentFileName("000001.jsonl.torn-1"), std::nullopt);
  EXPECT_EQ(ParseSegmentFileName("00000a.jsonl"), std::nullopt);
  EXPECT_EQ(QuarantineFileName("000003.jsonl", 2), "000003.jsonl.torn-2");
}

TEST(FormatTest, TimeIsRfc3339UtcWithMicroseconds) {
  EXPECT_EQ(FormatRecordTime(kTime + absl::Microseconds(123456)),
            "2026-11-20T09:30:00.123456Z");
}

// The hash as docs/audit-log.md §2 defines it, computed independently
// (Python's hashlib over the record without its hash member).
TEST(FormatTest, RecordLineMatchesTheSpecByteForByte) {
  std::string hash;
  const std::string line = BuildRecordLine(
      1, "decision", kTime, "\"decision_id\":\"d1\"", kZeroHash, &hash);
  EXPECT_EQ(hash,
            "2e226e6e78789936d087bb08435dbd8d1c9cb6c428d952330ffc7895e34da164");
  EXPECT_EQ(line,
            "{\"seq\":1,\"kind\":\"decision\",\"time\":\"2026-11-20T09:30:00."
            "000000Z\",\"decision_id\":\"d1\",\"prev_hash\":\"" +
                std::string(kZeroHash) + "\",\"hash\":\"" + hash + "\"}\n");
  absl::StatusOr<RecordLineFields> fields =
      CheckRecordLine(absl::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ(fields->seq, 1u);
  EXPECT_EQ(fields->hash, hash);
  EXPECT_EQ(fields->prev_hash, kZeroHash);
}

TEST(FormatTest, EmptyBody) {
  std::string hash;
  const std::string line =
      BuildRecordLine(7, "activation", kTime, "", kZeroHash, &hash);
  EXPECT_TRUE(
      CheckRecordLine(absl::string_view(line).substr(0, line.size() - 1)).ok());
}

TEST(FormatTest, RejectsLinesOfTheWrongShape) {
  std::string hash;
  std::string line =
      BuildRecordLine(3, "decision", kTime, "\"a\":1", kZeroHash, &hash);
  line.pop_back();
  const auto check = [](absl::string_view l) {
    return std::string(CheckRecordLine(l).status().message());
  };
  EXPECT_EQ(check(line), "");
  std::string edited = line;
  edited.replace(edited.find("\"a\":1"), 5, "\"a\":2");
  EXPECT_EQ(check(edited), "hash does not match the record");
  EXPECT_THAT(check(line.substr(0, 30)), HasSubstr("not valid JSON"));
  EXPECT_THAT(check("{\"seq\":1}"), HasSubstr("not a record"));
  std::string spaced = line;
  spaced.replace(spaced.find(",\"hash\""), 1, ", ");
  EXPECT_THAT(check(spaced), HasSubstr("at the end of the line"));
  std::string fraction = line;
  fraction.replace(0, 8, "{\"seq\":3.0");
  EXPECT_THAT(check(fraction), HasSubstr("seq is not a positive integer"));
  std::string upper = line;
  upper.replace(upper.size() - 3, 1, "A");
  EXPECT_THAT(check(upper), HasSubstr("64 lowercase hex"));
  std::string bad_time = line;
  bad_time.replace(bad_time.find("2026-11-20T"), 11, "2026-11-20 ");
  EXPECT_THAT(check(bad_time), HasSubstr("RFC 3339"));
}

TEST(FormatTest, RejectsABodyThatRepeatsReservedMembers) {
  std::string hash;
  std::string line =
      BuildRecordLine(1, "decision", kTime, "\"seq\":2", kZeroHash, &hash);
  line.pop_back();
  EXPECT_THAT(CheckRecordLine(line).status().message(),
              HasSubstr("\"seq\" appears twice"));
}

TEST(FormatTest, SplitsSegmentLines) {
  const std::vector<SegmentLine> lines = SplitSegmentLines("ab\ncd\nef");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "ab");
  EXPECT_TRUE(lines[0].terminated);
  EXPECT_EQ(lines[1].offset, 3u);
  EXPECT_EQ(lines[1].number, 2u);
  EXPECT_EQ(lines[2].text, "ef");
  EXPECT_FALSE(lines[2].terminated);
  EXPECT_TRUE(SplitSegmentLines("").empty());
  EXPECT_EQ(SplitSegmentLines("a\n").size(), 1u);
}

// The group commit appends a batch's lines to one buffer; each is the line
// BuildRecordLine makes on its own.
TEST(FormatTest, AppendRecordLineBuildsTheSameLinesInOneBuffer) {
  std::string buffer = "earlier lines\n";
  std::string hash;
  AppendRecordLine(41, "decision", FormatRecordTime(kTime), "\"a\":1",
                   kZeroHash, &buffer, &hash);
  const std::string first_hash = hash;
  AppendRecordLine(42, "activation", FormatRecordTime(kTime), "", first_hash,
                   &buffer, &hash);
  std::string h1, h2;
  const std::string l1 =
      BuildRecordLine(41, "decision", kTime, "\"a\":1", kZeroHash, &h1);
  const std::string l2 = BuildRecordLine(42, "activation", kTime, "", h1, &h2);
  EXPECT_EQ(buffer, absl::StrCat("earlier lines\n", l1, l2));
  EXPECT_EQ(first_hash, h1);
  EXPECT_EQ(hash, h2);
  EXPECT_TRUE(
      CheckRecordLine(absl::string_view(l2).substr(0, l2.size() - 1)).ok());
}

TEST(FormatTest, Sha256KnownAnswers) {
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  unsigned char digest[32];
  Sha256Of({"a", "", "bc"}, digest);
  EXPECT_EQ(absl::BytesToHexString(absl::string_view(
                reinterpret_cast<const char*>(digest), sizeof(digest))),
            Sha256Hex("abc"));
}

TEST(FormatTest, ChainCheckerFollowsLinks) {
  std::string h1, h2, h3;
  const std::string l1 =
      BuildRecordLine(1, "decision", kTime, "", kZeroHash, &h1);
  const std::string l2 = BuildRecordLine(2, "decision", kTime, "", h1, &h2);
  const std::string bad = BuildRecordLine(3, "decision", kTime, "", h1, &h3);
  const auto line = [](const std::string& l) {
    return SegmentLine{absl::string_view(l).substr(0, l.size() - 1), 1, 0,
                       true};
  };
  ChainChecker chain;
  EXPECT_FALSE(chain.Next(line(l1)));
  EXPECT_FALSE(chain.Next(line(l2)));
  EXPECT_EQ(chain.last_seq(), 2u);
  EXPECT_EQ(chain.last_hash(), h2);
  std::optional<ChainChecker::Break> broken = chain.Next(line(bad));
  ASSERT_TRUE(broken);
  EXPECT_FALSE(broken->damaged);
  EXPECT_EQ(broken->seq, 3u);
  EXPECT_EQ(broken->reason, "prev_hash does not match the hash of seq 2");
  // A repeat is out of sequence.
  broken = chain.Next(line(l2));
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->reason, "expected seq 3 after seq 2");
  // The first record must start from zeros.
  ChainChecker fresh;
  broken = fresh.Next(line(l2));
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->reason, "expected seq 1 (the first record)");
}

}  // namespace
}  // namespace stepwise::service::audit
