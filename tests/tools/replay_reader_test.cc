// The replay reader: its fast line reader against the exact parser
// (service::audit::ParseRecord) on many generated records, and a whole log
// replayed with any number of threads and chunk sizes to the same report.
#include "tools/replay_reader.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/engine.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "service/audit/format.h"
#include "service/audit/json.h"
#include "service/audit/record.h"

namespace stepwise::tools {
namespace {

namespace audit = ::stepwise::service::audit;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

const std::string kTestBundle =
    std::string(STEPWISE_SOURCE_DIR) + "/tests/engine/testdata/base";
const std::string kSubject(64, 'a');

std::string Line(uint64_t seq, absl::string_view kind, absl::string_view body,
                 std::string* prev_hash) {
  std::string hash;
  std::string line =
      audit::BuildRecordLine(seq, kind, absl::FromUnixMicros(1795165200123456),
                             body, *prev_hash, &hash);
  *prev_hash = hash;
  line.pop_back();  // the line feed
  return line;
}

// The record body's members without the braces, as BuildRecordLine takes it.
std::string Members(const std::string& body) {
  return body.substr(1, body.size() - 2);
}

// ---------------------------------------------------------------------------
// Random content.

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}

  uint64_t Below(uint64_t n) { return rng_() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }

  // Short text with the characters JSON must or may escape, and multi-byte
  // UTF-8 (2, 3 and 4 bytes).
  std::string Text(size_t max_length = 10) {
    static const std::vector<std::string> kPieces = {"a",
                                                     "Z",
                                                     "7",
                                                     "_",
                                                     "-",
                                                     " ",
                                                     ".",
                                                     "item",
                                                     "phq9",
                                                     "\"",
                                                     "\\",
                                                     "/",
                                                     "\n",
                                                     "\t",
                                                     "\x01",
                                                     "\x1f",
                                                     "<",
                                                     ">",
                                                     "&",
                                                     "'",
                                                     "\xc3\xa9",
                                                     "\xe2\x82\xac",
                                                     "\xf0\x9f\x98\x80",
                                                     "\xe2\x80\xa8"};
    std::string out;
    const size_t n = Below(max_length + 1);
    for (size_t i = 0; i < n; ++i) out += Pick(kPieces);
    return out;
  }

  int32_t Int32() {
    switch (Below(4)) {
      case 0:
        return static_cast<int32_t>(Below(5));
      case 1:
        return static_cast<int32_t>(Below(100)) - 50;
      case 2:
        return static_cast<int32_t>(static_cast<uint32_t>(rng_()));
      default:
        return OneIn(2) ? INT32_MAX : INT32_MIN;
    }
  }

  double Double() {
    switch (Below(6)) {
      case 0:
        return static_cast<double>(Below(20));
      case 1:
        return static_cast<double>(Below(1000)) / 10.0;
      case 2:
        return -static_cast<double>(Below(1000)) / 7.0;
      case 3:
        return std::ldexp(static_cast<double>(rng_() >> 11),
                          static_cast<int>(Below(200)) - 150);
      case 4:
        return 1e300 * static_cast<double>(Below(100));
      default:
        return 0.0;
    }
  }

  void Timestamp(google::protobuf::Timestamp* t) {
    // 0001-01-01 .. 9999-12-31, at second, milli, micro or nano precision.
    constexpr int64_t kMin = -62135596800;
    constexpr int64_t kMax = 253402300799;
    t->set_seconds(OneIn(3)
                       ? 1795165200 + static_cast<int64_t>(Below(86400 * 365))
                       : kMin + static_cast<int64_t>(
                                    Below(static_cast<uint64_t>(kMax - kMin))));
    static const int kScale[] = {0, 1000000, 1000, 1};
    const int scale = kScale[Below(4)];
    t->set_nanos(scale == 0
                     ? 0
                     : static_cast<int32_t>(Below(1000000000 / scale)) * scale);
  }

 private:
  std::mt19937_64 rng_;
};

v1::EvaluateRequest RandomRequest(Random& r) {
  v1::EvaluateRequest request;
  if (!r.OneIn(5)) request.set_current_step(r.Int32());
  if (!r.OneIn(5)) request.set_weeks_at_step(r.Double());
  const int assessments = static_cast<int>(r.Below(5));
  for (int a = 0; a < assessments; ++a) {
    v1::Assessment* assessment = request.add_assessments();
    assessment->set_instrument(r.OneIn(3) ? r.Text() : "phq9");
    const int items = static_cast<int>(r.Below(10));
    for (int i = 0; i < items; ++i) {
      (*assessment->mutable_items())[r.OneIn(4) ? r.Text(4)
                                                : absl::StrCat("item", i + 1)] =
          r.Int32();
    }
    if (r.OneIn(2)) assessment->set_total(r.Int32());
    if (!r.OneIn(6)) r.Timestamp(assessment->mutable_administered_at());
  }
  const int flags = static_cast<int>(r.Below(3));
  for (int f = 0; f < flags; ++f) request.add_flags(r.Text());
  r.Timestamp(request.mutable_as_of());
  return request;
}

v1::Decision RandomDecision(Random& r) {
  v1::Decision decision;
  decision.set_decision_id(absl::StrCat("0193", r.Text()));
  decision.set_action(static_cast<v1::Action>(r.Below(6)));
  decision.set_recommended_step(r.Int32());
  for (int i = static_cast<int>(r.Below(3)); i > 0; --i)
    decision.add_refer_to(r.Text());
  for (int i = static_cast<int>(r.Below(5)); i > 0; --i) {
    v1::MatchedRule* m = decision.add_matched_rules();
    m->set_rule_id(r.OneIn(3) ? r.Text() : absl::StrCat("RULE-", r.Below(40)));
    m->set_action(static_cast<v1::Action>(r.Below(6)));
    m->set_explanation(r.Text(30));
    m->set_target_step(r.Int32());
    if (r.OneIn(3)) m->set_refer_to(r.Text());
  }
  for (int i = static_cast<int>(r.Below(4)); i > 0; --i) {
    v1::UnevaluatedRule* u = decision.add_unevaluated_rules();
    u->set_rule_id(r.Text());
    for (int k = static_cast<int>(r.Below(3)); k > 0; --k)
      u->add_missing_facts(r.Text());
  }
  for (int i = static_cast<int>(r.Below(3)); i > 0; --i)
    decision.add_warnings(r.Text(20));
  decision.mutable_ruleset()->set_name(r.Text());
  decision.mutable_ruleset()->set_sha256(std::string(64, 'b'));
  r.Timestamp(decision.mutable_evaluated_at());
  r.Timestamp(decision.mutable_as_of());
  if (r.OneIn(4)) {
    decision.mutable_default_rule()->set_rule_id("default");
    decision.mutable_default_rule()->set_action(v1::STAY);
  }
  return decision;
}

// ---------------------------------------------------------------------------
// Comparison.

// Reads `line` both ways. Whenever the fast reader accepts a decision line,
// the exact parser must accept it too and read the same values.
struct Agreement {
  int fast = 0;   // lines the fast reader read
  int exact = 0;  // lines only the exact parser read
  int neither = 0;
  // Read by the fast reader after every earlier line of the test, so that
  // what it keeps from line to line (the request it fills in place, its
  // pooled assessments and their item maps) meets every kind of line
  // before, including those it gave up on halfway.
  ReplayLine reused;
};

void ExpectSameRead(const std::string& line, const ReplayLine& fast,
                    const ReplayLine& exact) {
  ASSERT_EQ(fast.kind, exact.kind) << line;
  const engine::RecordedDecision& f = fast.decision;
  const engine::RecordedDecision& e = exact.decision;
  EXPECT_EQ(f.seq, e.seq) << line;
  if (fast.kind != ReplayLine::Kind::kDecision) return;
  EXPECT_EQ(f.decision_id, e.decision_id) << line;
  EXPECT_EQ(f.ruleset_sha256, e.ruleset_sha256) << line;
  EXPECT_EQ(f.action, e.action) << line;
  EXPECT_EQ(f.recommended_step, e.recommended_step) << line;
  EXPECT_EQ(f.matched_rule_ids, e.matched_rule_ids) << line;
  EXPECT_EQ(f.refer_to, e.refer_to) << line;
  EXPECT_TRUE(MessageDifferencer::Equals(f.request(), e.request()))
      << line << "\nfast:  " << f.request().ShortDebugString()
      << "\nexact: " << e.request().ShortDebugString();
}

void ExpectAgreement(const std::string& line, Agreement* agreement) {
  ReplayLine fast;
  ReplayLine exact;
  const bool fast_ok = ReadReplayLineFast(line, &fast);
  const bool reused_ok = ReadReplayLineFast(line, &agreement->reused);
  const absl::Status exact_status = ReadReplayLineExact(line, &exact);
  ASSERT_EQ(reused_ok, fast_ok)
      << "a reused fast reader judges a line differently:\n"
      << line;
  if (!fast_ok) {
    ++(exact_status.ok() ? agreement->exact : agreement->neither);
    return;
  }
  ++agreement->fast;
  ASSERT_TRUE(exact_status.ok())
      << "the fast reader accepts a line the exact parser rejects ("
      << exact_status << "):\n"
      << line;
  ExpectSameRead(line, fast, exact);
  ExpectSameRead(line, agreement->reused, exact);
}

TEST(ReplayReaderTest,
     RecordsAsTheServerWritesThemAreReadFastAndAsParseRecordReadsThem) {
  Random r(1);
  std::string prev(audit::kZeroHash);
  Agreement agreement;
  for (uint64_t seq = 1; seq <= 3000; ++seq) {
    absl::StatusOr<std::string> body = audit::DecisionRecordBody(
        RandomRequest(r), RandomDecision(r), r.Text(), kSubject);
    ASSERT_TRUE(body.ok()) << body.status();
    ExpectAgreement(Line(seq, "decision", Members(*body), &prev), &agreement);
    if (HasFailure()) return;
  }
  // Everything the writer writes takes the fast path.
  EXPECT_EQ(agreement.fast, 3000);
}

// A log's records mostly repeat a few sets of item names (one per
// instrument) with other answers: the reused reader then writes the answers
// into item maps it already has. Sets that repeat, grow, shrink, reorder,
// repeat within one record or go missing must all read as ParseRecord reads
// them.
TEST(ReplayReaderTest, ItemMapsReusedFromLineToLineReadAsParseRecordReadsThem) {
  Random r(5);
  std::string prev(audit::kZeroHash);
  Agreement agreement;
  const std::vector<std::vector<std::string>> name_sets = {
      {"item1", "item2", "item3", "item4", "item5", "item6", "item7", "item8",
       "item9"},
      {"item1", "item2", "item3", "item4", "item5", "item6", "item7"},
      {"q1", "q2", "q6"},
      {"q1", "q2", "q3", "q4", "q5", "q6"},
      {"q1", "q2"},
      {},
      {"\xc3\xa9", "a\"b", "\\", "\n"}};
  for (uint64_t seq = 1; seq <= 3000; ++seq) {
    v1::EvaluateRequest request;
    if (!r.OneIn(5)) request.set_current_step(r.Int32());
    for (int a = static_cast<int>(r.Below(7)); a > 0; --a) {
      v1::Assessment* assessment = request.add_assessments();
      assessment->set_instrument(r.OneIn(2) ? "phq9" : "gad7");
      const std::vector<std::string>& names = r.Pick(name_sets);
      for (const std::string& name : names) {
        if (!r.OneIn(20)) (*assessment->mutable_items())[name] = r.Int32();
      }
      if (r.OneIn(2)) assessment->set_total(r.Int32());
      if (!r.OneIn(6)) r.Timestamp(assessment->mutable_administered_at());
    }
    if (r.OneIn(4)) request.add_flags(r.Text());
    if (!r.OneIn(50)) r.Timestamp(request.mutable_as_of());
    absl::StatusOr<std::string> body =
        audit::DecisionRecordBody(request, RandomDecision(r), "p", kSubject);
    if (!body.ok()) continue;  // no as_of anywhere: the writer refuses
    std::string members = Members(*body);
    if (r.OneIn(30)) {
      // A name given twice, which neither reader accepts.
      const size_t at = members.find("\"item1\":");
      if (at != std::string::npos) members.insert(at, "\"item1\":1,");
    }
    ExpectAgreement(Line(seq, "decision", members, &prev), &agreement);
    if (HasFailure()) return;
    if (r.OneIn(40)) {
      // A line of another kind in between.
      ExpectAgreement(Line(++seq, "activation", "\"principal\":\"p\"", &prev),
                      &agreement);
    }
  }
  EXPECT_GT(agreement.fast, 2500);
}

// A copy of a line read fast holds its own request: reading the next line
// into the original does not change it.
TEST(ReplayReaderTest, ACopyOfALineReadFastKeepsItsRequest) {
  Random r(6);
  std::string prev(audit::kZeroHash);
  ReplayLine line;
  std::vector<std::pair<ReplayLine, ReplayLine>> copies;  // (copy, exact)
  for (uint64_t seq = 1; seq <= 50; ++seq) {
    absl::StatusOr<std::string> body = audit::DecisionRecordBody(
        RandomRequest(r), RandomDecision(r), "p", kSubject);
    ASSERT_TRUE(body.ok());
    const std::string text = Line(seq, "decision", Members(*body), &prev);
    ASSERT_TRUE(ReadReplayLineFast(text, &line)) << text;
    ReplayLine exact;
    ASSERT_TRUE(ReadReplayLineExact(text, &exact).ok()) << text;
    copies.emplace_back(line, std::move(exact));
  }
  for (const auto& [copy, exact] : copies) {
    ExpectSameRead("(copied)", copy, exact);
  }
}

// The two hashes ending a line must be 64 lowercase hex digits, as the
// audit log writes them: every other byte, at every position, sends the line
// to the exact parser (the fast reader checks them 16 bytes at a time).
TEST(ReplayReaderTest, AHashWithAnyOtherByteIsNotReadFast) {
  std::string prev(audit::kZeroHash);
  Random r(9);
  absl::StatusOr<std::string> body = audit::DecisionRecordBody(
      RandomRequest(r), RandomDecision(r), "p", kSubject);
  ASSERT_TRUE(body.ok()) << body.status();
  const std::string line = Line(1, "decision", Members(*body), &prev);
  ReplayLine out;
  ASSERT_TRUE(ReadReplayLineFast(line, &out));
  const size_t prev_at = line.rfind("\"prev_hash\":\"") + 13;
  const size_t hash_at = line.rfind("\"hash\":\"") + 8;
  ASSERT_EQ(line.size(), hash_at + 64 + 2);
  for (const size_t start : {prev_at, hash_at}) {
    for (size_t i = 0; i < 64; ++i) {
      // Just outside and at the edges of '0'-'9' and 'a'-'f'.
      for (const char c : {'/', ':', '`', 'g', 'A', 'F', '0', '9', 'a', 'f',
                           ' ', '"', '\x7f', '\x80', '\xff', '\0'}) {
        std::string mutated = line;
        mutated[start + i] = c;
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        EXPECT_EQ(ReadReplayLineFast(mutated, &out), hex)
            << "byte " << i << " of a hash set to " << static_cast<int>(c);
      }
    }
  }
}

// The reader's shortcuts, each beside spellings that only look like what
// it takes: one-digit answers (read without the general number path) and
// numbers that merely start with a digit; decision members in declaration
// order (found by looking a few fields ahead of the last one), reversed,
// under their JSON names, far apart or given twice; times with each fixed
// position wrong and at the calendar's edges.
TEST(ReplayReaderTest, SpellingsBesideTheReadersShortcutsReadAsParseRecord) {
  // Item names as JSON text: short ones (read with the answer in one
  // load), empty, eight and nine bytes, UTF-8 and an escaped quote.
  const std::vector<std::string> names = {
      "item2", "", "abcdefgh", "abcdefghi", "\xc3\xa9", "a\\\"b", "item15"};
  const std::vector<std::string> answers = {
      "7", "0", "12", "7.0", "7e0", "07", "-7", "7 ", "\"7\"", "7E1", "9"};
  const std::vector<std::string> times = {
      "2026-11-20T09:30:00Z",  "2026-11-20T09:30:00.5Z",
      "2026-1a-20T09:30:00Z",  "2026/11-20T09:30:00Z",
      "2026-11-20 09:30:00Z",  "2026-11-20T09-30:00Z",
      "2026-11-20T09:30:0xZ",  "2024-02-29T00:00:00Z",
      "2026-02-29T00:00:00Z",  "9999-12-31T23:59:59.999999999Z",
      "0001-01-01T00:00:00Z",  "2026-11-20T24:00:00Z",
      "2026-11-20T09:60:00Z",  "2026-11-31T09:30:00Z",
      "2026-11-20T09:30:00.Z", "2026-11-20T09:30:00"};
  const std::string rule =
      R"({"rule_id":"R1","action":"STAY","explanation":"e","target_step":2})";
  const std::string ruleset = absl::StrCat(
      R"({"name":"n","version":"1","sha256":")", std::string(64, 'd'), "\"}");
  const std::vector<std::string> decisions = {
      // Declaration order, with gaps (refer_to, unevaluated_rules, warnings,
      // evaluated_at and audit_seq left out).
      absl::StrCat(
          R"({"decision_id":"d","action":"STAY","recommended_step":2,)",
          R"("matched_rules":[)", rule, R"(],"ruleset":)", ruleset,
          R"(,"as_of":"2026-11-20T09:30:00Z"})"),
      // Reversed.
      absl::StrCat(R"({"as_of":"2026-11-20T09:30:00Z","ruleset":)", ruleset,
                   R"(,"matched_rules":[{"target_step":2,"explanation":"e",)",
                   R"("action":"STAY","rule_id":"R1"}],"recommended_step":2,)",
                   R"("action":"STAY","decision_id":"d"})"),
      // JSON names.
      absl::StrCat(R"({"decisionId":"d","action":"STAY","recommendedStep":2,)",
                   R"("matchedRules":[{"ruleId":"R1","action":"STAY",)",
                   R"("targetStep":2}],"ruleset":)", ruleset,
                   R"(,"asOf":"2026-11-20T09:30:00Z"})"),
      // The first field and then the last: further than the reader looks.
      absl::StrCat(R"({"decision_id":"d","default_rule":{"rule_id":"x"},)",
                   R"("action":"STAY","as_of":"2026-11-20T09:30:00Z"})"),
      // A field given again after a later one.
      absl::StrCat(R"({"decision_id":"d","action":"STAY","as_of":)",
                   R"("2026-11-20T09:30:00Z","action":"REFER"})"),
  };
  std::string prev(audit::kZeroHash);
  Agreement agreement;
  uint64_t seq = 0;
  for (const std::string& answer : answers) {
    for (const std::string& name : names) {
      for (const std::string& time : times) {
        for (const std::string& decision : decisions) {
          const std::string members = absl::StrCat(
              R"("decision_id":"d","principal":"p","subject":")", kSubject,
              R"(","request":{"current_step":2,"assessments":[)",
              R"({"instrument":"phq9","items":{"item1":)", answer, ",\"", name,
              "\":", answer, R"(},"administered_at":")", time,
              R"("}],"as_of":"2026-11-20T09:30:00Z"},"ruleset":)", ruleset,
              R"(,"decision":)", decision);
          ExpectAgreement(Line(++seq, "decision", members, &prev), &agreement);
          if (HasFailure()) return;
        }
      }
    }
  }
  // Read fast: the five plain integers ("7", "0", "12", "9", "-7") with
  // every name, the five well-formed times and the four decisions without
  // a repeated field. Everything else went to the exact parser, which read
  // some.
  EXPECT_EQ(agreement.fast, 5 * 7 * 5 * 4);
  EXPECT_GT(agreement.exact, 100);
  EXPECT_GT(agreement.neither, 100);
}

TEST(ReplayReaderTest, OtherKindsAreCountedFromSeqAndKind) {
  std::string prev(audit::kZeroHash);
  v1::RulesetInfo info;
  info.set_name("rules");
  info.set_sha256(std::string(64, 'c'));
  absl::StatusOr<std::string> activation =
      audit::ActivationRecordBody(info, "", "startup");
  ASSERT_TRUE(activation.ok());
  Random r(2);
  absl::StatusOr<std::string> shadow = audit::ShadowRecordBody(
      RandomRequest(r), RandomDecision(r), "p", kSubject, "0193-x");
  ASSERT_TRUE(shadow.ok());
  const std::vector<std::pair<std::string, ReplayLine::Kind>> cases = {
      {Line(1, "activation", Members(*activation), &prev),
       ReplayLine::Kind::kActivation},
      {Line(2, "shadow", Members(*shadow), &prev), ReplayLine::Kind::kShadow},
      {Line(3, "annotation", "\"note\":\"x\"", &prev),
       ReplayLine::Kind::kOther},
  };
  for (const auto& [line, kind] : cases) {
    ReplayLine out;
    bool used_exact = true;
    ASSERT_TRUE(ReadReplayLine(line, &out, &used_exact).ok()) << line;
    EXPECT_FALSE(used_exact) << line;
    EXPECT_EQ(out.kind, kind) << line;
    Agreement agreement;
    ExpectAgreement(line, &agreement);
  }
}

// Hand-written record bodies: every spelling protobuf's JSON parser accepts
// for what replay reads, and some it does not.
class BodyWriter {
 public:
  explicit BodyWriter(Random& r) : r_(r) {}

  std::string Body() {
    std::vector<std::string> members = {
        absl::StrCat("\"decision_id\":", Quote(r_.Text())),
        absl::StrCat("\"principal\":", Maybe(Quote(r_.Text()), "5")),
        absl::StrCat("\"subject\":", Quote(kSubject)),
        absl::StrCat("\"request\":", Request()),
        absl::StrCat("\"ruleset\":", Ruleset()),
        absl::StrCat("\"decision\":", Decision()),
    };
    if (Odd())
      members.push_back("\"future\":{\"x\":[1,2.5e3,true,null,\"y\"]}");
    if (Odd())
      members.push_back(
          Pick({"\"request\":{}", "\"decision\":{}", "\"seq\":1"}));
    if (Odd())
      std::swap(members[r_.Below(members.size())],
                members[r_.Below(members.size())]);
    if (Odd())
      members.erase(members.begin() +
                    static_cast<long>(r_.Below(members.size())));
    return absl::StrJoin(members, Sep(","));
  }

 private:
  bool Odd() { return r_.OneIn(40); }
  std::string Maybe(std::string usual, std::string odd) {
    return Odd() ? odd : usual;
  }
  std::string Pick(std::vector<std::string> v) { return r_.Pick(v); }
  std::string Sep(absl::string_view s) {
    return r_.OneIn(400) ? absl::StrCat(" ", s, "\n") : std::string(s);
  }
  std::string Name(absl::string_view proto, absl::string_view json) {
    return absl::StrCat("\"", Odd() ? json : proto, "\"", Sep(":"));
  }

  // A JSON string literal, escaping at random wherever JSON allows it.
  std::string Quote(const std::string& s) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size();) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      if (c == '"' || c == '\\') {
        out += Odd() ? absl::StrFormat("\\u%04x", c)
                     : absl::StrCat("\\", std::string(1, c));
      } else if (c < 0x20) {
        out += c == '\n' && !Odd() ? "\\n" : absl::StrFormat("\\u%04X", c);
      } else if (c == '/' && Odd()) {
        out += "\\/";
      } else if (n > 1 && Odd()) {
        out += Utf16Escapes(s.substr(i, n));
      } else if (n == 1 && Odd()) {
        out += absl::StrFormat("\\u%04x", c);
      } else {
        out += s.substr(i, n);
      }
      i += n;
    }
    if (r_.OneIn(200)) out += "\\ud800";  // a lone surrogate
    return out + "\"";
  }

  static std::string Utf16Escapes(const std::string& utf8) {
    uint32_t cp = 0;
    const unsigned char c0 = static_cast<unsigned char>(utf8[0]);
    cp = utf8.size() == 2   ? c0 & 0x1F
         : utf8.size() == 3 ? c0 & 0x0F
                            : c0 & 0x07;
    for (size_t k = 1; k < utf8.size(); ++k) cp = (cp << 6) | (utf8[k] & 0x3F);
    if (cp < 0x10000) return absl::StrFormat("\\u%04x", cp);
    cp -= 0x10000;
    return absl::StrFormat("\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                           0xDC00 + (cp & 0x3FF));
  }

  std::string Int() {
    const int32_t v = r_.Int32();
    if (!Odd()) return absl::StrCat(v);
    return Pick({absl::StrCat("\"", v, "\""), absl::StrCat(v, ".0"),
                 absl::StrCat(v, "e0"), "3000000000", "-0", "null", "1.5",
                 "\"x\"", "007", "999999999", "-999999999", "1000000000",
                 "2147483647", "-2147483648", "2147483648", "-", "0E1", "0.5",
                 "-01"});
  }

  std::string Double() {
    if (!Odd())
      return Pick({absl::StrCat(r_.Double()),
                   absl::StrFormat("%.17g", r_.Double()),
                   absl::StrCat(r_.Below(100))});
    return Pick({"-0", "-0.0", "1e400", "-1e-400", "\"2.5\"", "\"NaN\"",
                 "\"Infinity\"", "12345678901234567", "9007199254740993", "1E2",
                 "2.", ".5", "1e+2", "true"});
  }

  std::string Time() {
    google::protobuf::Timestamp t;
    r_.Timestamp(&t);
    const absl::Time time =
        absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
    std::string text =
        absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", time, absl::UTCTimeZone());
    if (Odd()) {
      text = Pick({"2026-02-29T00:00:00Z", "2024-02-29T23:59:59.5Z",
                   "2026-11-20T09:30:00+01:00", "2026-11-20t09:30:00Z",
                   "2026-11-20T09:30:60Z", "0000-01-01T00:00:00Z",
                   "2026-11-20T09:30:00.1234567891Z", "2026-11-20T09:30:00.Z",
                   "2026-13-01T00:00:00Z", "2026-11-20T09:30:00"});
    }
    return absl::StrCat("\"", text, "\"");
  }

  std::string Request() {
    std::vector<std::string> members;
    if (!r_.OneIn(5))
      members.push_back(Name("current_step", "currentStep") + Int());
    if (!r_.OneIn(5))
      members.push_back(Name("weeks_at_step", "weeksAtStep") + Double());
    if (!r_.OneIn(4)) {
      std::vector<std::string> assessments;
      for (int a = static_cast<int>(r_.Below(4)); a > 0; --a)
        assessments.push_back(Assessment());
      members.push_back(Name("assessments", "assessments") + "[" +
                        absl::StrJoin(assessments, Sep(",")) + "]");
    }
    if (r_.OneIn(3)) {
      members.push_back(
          Name("flags", "flags") +
          Maybe(absl::StrCat("[", Quote(r_.Text()), ",", Quote(r_.Text()), "]"),
                "null"));
    }
    if (!r_.OneIn(20)) members.push_back(Name("as_of", "asOf") + Time());
    if (Odd())
      members.push_back(Pick({"\"unknownField\":1", "\"subject_id\":\"s\"",
                              "\"requestId\":\"r\"", "\"as_of\":null"}));
    if (Odd() && !members.empty())
      members.push_back(members[r_.Below(members.size())]);
    return "{" + absl::StrJoin(members, Sep(",")) + "}";
  }

  std::string Assessment() {
    std::vector<std::string> members;
    members.push_back(Name("instrument", "instrument") +
                      Quote(r_.OneIn(3) ? r_.Text() : "phq9"));
    std::vector<std::string> items;
    for (int i = static_cast<int>(r_.Below(6)); i > 0; --i) {
      items.push_back(
          Quote(r_.OneIn(4) ? r_.Text(3) : absl::StrCat("item", i)) + ":" +
          Int());
    }
    if (Odd() && !items.empty()) items.push_back(items[0]);  // a repeated key
    members.push_back(Name("items", "items") + "{" + absl::StrJoin(items, ",") +
                      "}");
    if (r_.OneIn(2)) members.push_back(Name("total", "total") + Int());
    members.push_back(Name("administered_at", "administeredAt") + Time());
    if (Odd()) std::swap(members[0], members.back());
    return "{" + absl::StrJoin(members, Sep(",")) + "}";
  }

  std::string Ruleset() {
    return absl::StrCat("{\"name\":", Quote(r_.Text()),
                        ",\"version\":", Maybe("\"1\"", "1"),
                        ",\"sha256\":", Quote(std::string(64, 'd')),
                        Odd() ? ",\"approved_by\":\"x\"" : "", "}");
  }

  std::string Action() {
    if (!Odd())
      return absl::StrCat(
          "\"", v1::Action_Name(static_cast<v1::Action>(r_.Below(6))), "\"");
    return Pick({"3", "\"SOMETHING_NEW\"", "null", "\"step_up\""});
  }

  std::string Decision() {
    std::vector<std::string> members;
    members.push_back(Name("decision_id", "decisionId") + Quote(r_.Text()));
    members.push_back(Name("action", "action") + Action());
    if (!r_.OneIn(4))
      members.push_back(Name("recommended_step", "recommendedStep") + Int());
    if (r_.OneIn(2)) {
      members.push_back(Name("refer_to", "referTo") + "[" + Quote(r_.Text()) +
                        "]");
    }
    std::vector<std::string> rules;
    for (int i = static_cast<int>(r_.Below(4)); i > 0; --i) {
      std::vector<std::string> rule = {
          Name("rule_id", "ruleId") + Quote(r_.Text()),
          Name("action", "action") + Action(),
          Name("explanation", "explanation") + Quote(r_.Text(20))};
      if (r_.OneIn(2))
        rule.push_back(Name("target_step", "targetStep") + Int());
      if (Odd())
        rule.push_back(Pick(
            {"\"title\":5", "\"futureField\":{}", "\"rule_id\":\"again\""}));
      rules.push_back("{" + absl::StrJoin(rule, ",") + "}");
    }
    members.push_back(Name("matched_rules", "matchedRules") + "[" +
                      absl::StrJoin(rules, ",") + "]");
    if (r_.OneIn(2)) {
      members.push_back(
          Name("unevaluated_rules", "unevaluatedRules") +
          Maybe(absl::StrCat("[{\"rule_id\":", Quote(r_.Text()),
                             ",\"missing_facts\":[", Quote(r_.Text()), "]}]"),
                Pick({"[1]", "{}", "[{\"missing_facts\":\"x\"}]"})));
    }
    if (r_.OneIn(2)) {
      members.push_back(Name("warnings", "warnings") +
                        Maybe(absl::StrCat("[", Quote(r_.Text()), "]"),
                              Pick({"5", "[5]", "\"w\""})));
    }
    members.push_back(Name("ruleset", "ruleset") + Ruleset());
    members.push_back(Name("evaluated_at", "evaluatedAt") +
                      Maybe(Time(), "1795165200"));
    members.push_back(Name("as_of", "asOf") + Time());
    if (Odd()) {
      members.push_back(Pick(
          {"\"audit_seq\":\"17\"", "\"auditSeq\":17", "\"audit_seq\":\"-1\"",
           "\"trace\":[{\"rule_id\":\"A\",\"outcome\":\"MATCHED\"}]",
           "\"trace\":[{\"outcome\":\"NOPE\"}]",
           "\"default_rule\":{\"rule_id\":\"default\",\"action\":\"STAY\"}",
           "\"somethingElse\":[[[]]]", "\"action\":\"STAY\""}));
    }
    if (Odd())
      std::swap(members[r_.Below(members.size())],
                members[r_.Below(members.size())]);
    return "{" + absl::StrJoin(members, Sep(",")) + "}";
  }

  Random& r_;
};

TEST(ReplayReaderTest, HandWrittenSpellingsNeverMakeTheFastReaderDisagree) {
  Random r(3);
  BodyWriter writer(r);
  std::string prev(audit::kZeroHash);
  Agreement agreement;
  for (uint64_t seq = 1; seq <= 6000; ++seq) {
    ExpectAgreement(Line(seq, "decision", writer.Body(), &prev), &agreement);
    if (HasFailure()) return;
  }
  // All three outcomes occur, so the comparison above was not vacuous.
  EXPECT_GT(agreement.fast, 1000);
  EXPECT_GT(agreement.exact, 100);
  EXPECT_GT(agreement.neither, 100);
}

TEST(ReplayReaderTest, MutatedRecordsNeverMakeTheFastReaderDisagree) {
  Random r(4);
  std::string prev(audit::kZeroHash);
  Agreement agreement;
  static const std::vector<std::string> kBytes = {
      "0", "9", "-", ".", "e", "\"", "\\", "{",   "}",
      "[", "]", ",", ":", "u", " ",  "n",  "\xc3"};
  for (uint64_t seq = 1; seq <= 4000; ++seq) {
    absl::StatusOr<std::string> body = audit::DecisionRecordBody(
        RandomRequest(r), RandomDecision(r), "p", kSubject);
    ASSERT_TRUE(body.ok());
    std::string members = Members(*body);
    for (int edits = 1 + static_cast<int>(r.Below(3)); edits > 0; --edits) {
      const size_t at = r.Below(members.size());
      switch (r.Below(3)) {
        case 0:
          members.replace(at, 1, r.Pick(kBytes));
          break;
        case 1:
          members.erase(at, 1);
          break;
        default:
          members.insert(at, r.Pick(kBytes));
          break;
      }
    }
    // Rehashed, so that the exact parser judges the content, not the hash.
    ExpectAgreement(Line(seq, "decision", members, &prev), &agreement);
    if (HasFailure()) return;
  }
  EXPECT_GT(agreement.fast, 100);
  EXPECT_GT(agreement.neither, 100);
}

TEST(ReplayReaderTest, ADecisionWithoutAsOfOrAnUnreadableLineIsAnError) {
  std::string prev(audit::kZeroHash);
  ReplayLine out;
  bool used_exact;
  const std::string no_as_of =
      Line(1, "decision",
           "\"decision_id\":\"d\",\"request\":{\"current_step\":1},"
           "\"decision\":{\"action\":\"STAY\"}",
           &prev);
  absl::Status status = ReadReplayLine(no_as_of, &out, &used_exact);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("as_of"));
  status =
      ReadReplayLine("{\"seq\":1,\"kind\":\"decision\"", &out, &used_exact);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(used_exact);
}

// ---------------------------------------------------------------------------
// A whole log.

class ReplayLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<engine::LoadResult> loaded = engine::LoadBundle(kTestBundle);
    ASSERT_TRUE(loaded.ok() && loaded->ok());
    bundle_ = loaded->bundle;
    // The process id too: this file is built twice (the SSE2 and the
    // portable reader), and CTest runs the two binaries side by side.
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat(
               "replay-log-",
               ::testing::UnitTest::GetInstance()->current_test_info()->name(),
               "-", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // `n` decisions (with an activation first and a shadow record every 10th)
  // decided under the test bundle, spread over segments of `per_segment`
  // lines; the last segment ends in a torn line.
  void WriteLog(int n, int per_segment) {
    Random r(5);
    std::string prev(audit::kZeroHash);
    std::vector<std::string> lines;
    v1::RulesetInfo info;
    info.set_name(bundle_->name());
    info.set_sha256(bundle_->sha256());
    lines.push_back(Line(
        1, "activation",
        Members(*audit::ActivationRecordBody(info, "", "startup")), &prev));
    for (int k = 0; k < n; ++k) {
      v1::EvaluateRequest request;
      request.set_subject_id(absl::StrCat("patient-", k));
      request.set_current_step(1 + static_cast<int>(r.Below(4)));
      request.set_weeks_at_step(static_cast<double>(r.Below(10)));
      v1::Assessment* a = request.add_assessments();
      a->set_instrument("phq9");
      for (int i = 1; i <= 9; ++i) {
        (*a->mutable_items())[absl::StrCat("item", i)] =
            i == 9 ? (r.OneIn(4) ? 1 : 0) : static_cast<int>(r.Below(4));
      }
      a->mutable_administered_at()->set_seconds(1795165200);
      request.mutable_as_of()->set_seconds(1795176000);
      engine::EvaluationResult result =
          engine::Evaluate(*bundle_, request, absl::UnixEpoch());
      ASSERT_TRUE(result.ok());
      result.decision.set_decision_id(absl::StrCat("d-", k));
      // Every 7th decision as if recorded by an older bundle that stepped up
      // where this one stays.
      if (k % 7 == 3 && result.decision.action() == v1::STAY) {
        result.decision.set_action(v1::STEP_UP);
        result.decision.mutable_ruleset()->set_sha256(std::string(64, 'e'));
      }
      const std::string body =
          *audit::DecisionRecordBody(request, result.decision, "p", kSubject);
      lines.push_back(Line(lines.size() + 1, "decision", Members(body), &prev));
      if (k % 10 == 9) {
        lines.push_back(Line(lines.size() + 1, "shadow",
                             Members(*audit::ShadowRecordBody(
                                 request, result.decision, "p", kSubject, "x")),
                             &prev));
      }
    }
    int segment = 0;
    for (size_t i = 0; i < lines.size();
         i += static_cast<size_t>(per_segment)) {
      std::ofstream out(dir_ / audit::SegmentFileName(++segment),
                        std::ios::binary);
      for (size_t k = i; k < std::min(lines.size(), i + per_segment); ++k)
        out << lines[k] << "\n";
      if (i + per_segment >= lines.size())
        out << "{\"seq\":" << lines.size() + 1 << ",\"ki";
    }
  }

  absl::StatusOr<engine::ReplayReport> Replay(int threads, size_t chunk_bytes) {
    ReplayLogOptions options;
    options.threads = threads;
    options.chunk_bytes = chunk_bytes;
    options.limits.max_listed = 5;
    return ReplayAuditLog(*audit::DefaultFileSystem(), dir_.string(), *bundle_,
                          options);
  }

  std::shared_ptr<const engine::Bundle> bundle_;
  std::filesystem::path dir_;
};

TEST_F(ReplayLogTest, TheReportDoesNotDependOnThreadsOrChunks) {
  WriteLog(300, 70);
  absl::StatusOr<engine::ReplayReport> one = Replay(1, 256 << 10);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->records(), 1u + 300u + 30u);  // the torn line is left out
  EXPECT_EQ(one->decisions(), 300u);
  EXPECT_EQ(one->skipped_activation(), 1u);
  EXPECT_EQ(one->skipped_shadow(), 30u);
  EXPECT_EQ(one->exact_parser_records(), 0u);
  EXPECT_GT(one->changed(), 5u);
  EXPECT_EQ(one->changes_size(), 5);
  EXPECT_EQ(one->decided_by_candidate(), 300u - one->changed());
  EXPECT_EQ(one->decided_by_candidate_changed(), 0u);
  EXPECT_EQ(one->threads(), 1u);
  for (int threads : {1, 2, 3, 8}) {
    for (size_t chunk : {size_t{1}, size_t{700}, size_t{256} << 10}) {
      absl::StatusOr<engine::ReplayReport> other = Replay(threads, chunk);
      ASSERT_TRUE(other.ok()) << other.status();
      EXPECT_EQ(other->threads(), static_cast<uint32_t>(threads));
      engine::ReplayReport a = *one;
      engine::ReplayReport b = *other;
      for (engine::ReplayReport* report : {&a, &b}) {
        report->clear_threads();
        report->clear_seconds();
        report->clear_records_per_second();
      }
      EXPECT_TRUE(MessageDifferencer::Equals(a, b))
          << threads << " threads, chunks of " << chunk;
    }
  }
}

TEST_F(ReplayLogTest, ProgressIsReportedUpToTheTotal) {
  WriteLog(50, 20);
  ReplayLogOptions options;
  options.progress_interval = absl::ZeroDuration();
  options.chunk_bytes = 1;
  uint64_t last_done = 0;
  uint64_t last_total = 0;
  uint64_t last_records = 0;
  int calls = 0;
  options.progress = [&](uint64_t done, uint64_t total, uint64_t records) {
    EXPECT_GE(done, last_done);
    EXPECT_LE(done, total);
    last_done = done;
    last_total = total;
    last_records = records;
    ++calls;
  };
  absl::StatusOr<engine::ReplayReport> report = ReplayAuditLog(
      *audit::DefaultFileSystem(), dir_.string(), *bundle_, options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(calls, 10);
  EXPECT_EQ(last_done, last_total);
  EXPECT_EQ(last_records, report->records());
}

TEST_F(ReplayLogTest, AnUnreadableDecisionLineStopsTheReplayNamingFileAndLine) {
  WriteLog(30, 10);
  // Line 3 of the second segment loses a byte in its request.
  const std::filesystem::path segment = dir_ / audit::SegmentFileName(2);
  std::ifstream in(segment, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  in.close();
  const size_t at = lines[2].find("\"request\":{") + 11;
  lines[2].erase(at, 1);
  std::ofstream out(segment, std::ios::binary | std::ios::trunc);
  for (const std::string& line : lines) out << line << "\n";
  out.close();
  for (int threads : {1, 2}) {
    absl::StatusOr<engine::ReplayReport> report = Replay(threads, 1);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(report.status().message(),
                HasSubstr("000002.jsonl:3: cannot read the record"));
  }
}

TEST_F(ReplayLogTest, AnEmptyFolderIsAnEmptyReport) {
  absl::StatusOr<engine::ReplayReport> report = Replay(2, 1);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records(), 0u);
  EXPECT_EQ(report->blocking(), 0u);
}

}  // namespace
}  // namespace stepwise::tools
