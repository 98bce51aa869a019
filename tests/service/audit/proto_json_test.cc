// The direct writers of service/audit/proto_json.h against their oracle,
// protobuf's own JSON printer: every code point, the timestamp and double
// edge cases, and seeded random requests and decisions, byte for byte.
#include "service/audit/proto_json.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace stepwise::service::audit {
namespace {

namespace v1 = ::stepwise::v1;
using ::google::protobuf::Message;
using ::google::protobuf::Timestamp;

// What the printer writes for `message`, or "<error>".
std::string Printed(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options)
           .ok()) {
    return "<error>";
  }
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string StringJson(absl::string_view s) {
  std::string out;
  EXPECT_TRUE(AppendProtoJsonString(s, &out)) << s;
  return out;
}

TEST(ProtoJsonTest, EscapesEveryCodePointAsThePrinterDoes) {
  // In runs of 256 code points, so that a mismatch names its neighbourhood.
  for (uint32_t start = 0; start <= 0x10FFFF; start += 256) {
    if (start >= 0xD800 && start < 0xE000) continue;  // surrogates
    std::string s;
    for (uint32_t cp = start; cp < start + 256; ++cp) AppendUtf8(cp, &s);
    v1::RulesetRef ref;
    ref.set_name(s);
    ASSERT_EQ(absl::StrCat("{\"name\":", StringJson(s), "}"), Printed(ref))
        << "code points from U+" << std::hex << start;
  }
}

TEST(ProtoJsonTest, RefusesWhatIsNotUtf8) {
  for (const char* bad : {"\x80", "a\xC0\x80", "\xED\xA0\x80",
                          "\xF4\x90\x80\x80", "\xE2\x82", "\xFF"}) {
    std::string out;
    EXPECT_FALSE(AppendProtoJsonString(bad, &out)) << bad;
  }
}

std::string TimestampJson(const Timestamp& t) {
  std::string out;
  if (!AppendProtoJsonTimestamp(t, &out)) return "<error>";
  return out;
}

std::string PrintedTimestamp(const Timestamp& t) {
  v1::Decision d;
  *d.mutable_evaluated_at() = t;
  const std::string printed = Printed(d);
  if (printed == "<error>") return printed;
  // {"evaluated_at":"..."}
  return printed.substr(16, printed.size() - 17);
}

TEST(ProtoJsonTest, WritesTimestampsAsThePrinterDoes) {
  std::vector<std::pair<int64_t, int32_t>> cases = {
      {0, 0},
      {-1, 0},
      {-1, 999999999},
      {1795167000, 0},
      {1795167000, 5000000},
      {1795167000, 123000},
      {1795167000, 1},
      {1795167000, 999999999},
      {951782400, 0},     // 2000-02-29
      {4107542400, 0},    // 2100-02-28
      {-62135596800, 0},  // 0001-01-01
      {253402300799, 999999999},
      {-62135596801, 0},  // out of range
      {253402300800, 0},  // out of range
      {0, -1},
      {0, 1000000000},
  };
  std::mt19937_64 random(7);
  std::uniform_int_distribution<int64_t> seconds(-62135596800, 253402300799);
  std::uniform_int_distribution<int32_t> nanos(0, 999999999);
  for (int i = 0; i < 2000; ++i) {
    int32_t n = nanos(random);
    if (i % 4 == 1) n -= n % 1000000;
    if (i % 4 == 2) n -= n % 1000;
    if (i % 4 == 3) n = 0;
    cases.push_back({seconds(random), n});
  }
  for (const auto& [s, n] : cases) {
    Timestamp t;
    t.set_seconds(s);
    t.set_nanos(n);
    EXPECT_EQ(TimestampJson(t), PrintedTimestamp(t)) << s << "s " << n << "ns";
  }
}

std::string DoubleJson(double v) {
  std::string out;
  if (!AppendProtoJsonDouble(v, &out)) return "<non-finite>";
  return out;
}

TEST(ProtoJsonTest, WritesDoublesAsThePrinterDoes) {
  std::vector<double> cases = {0.5,
                               8.5,
                               9,
                               -0.0,
                               0.1,
                               1.0 / 3,
                               1e21,
                               1e-7,
                               123456789012345678.0,
                               5e-324,
                               1e308,
                               -2.25,
                               0.30000000000000004,
                               100,
                               1e15,
                               1e16,
                               1e17};
  std::mt19937_64 random(11);
  for (int i = 0; i < 3000; ++i) {
    uint64_t bits = random();
    double v;
    std::memcpy(&v, &bits, sizeof(v));
    if (std::isfinite(v)) cases.push_back(v);
    cases.push_back(static_cast<double>(random() % 4000) / 8);
    cases.push_back(static_cast<double>(random() % 100000) / 100);
  }
  for (double v : cases) {
    if (v == 0 && !std::signbit(v)) continue;  // the default, left out
    v1::EvaluateRequest request;
    request.set_weeks_at_step(v);
    std::string expected = Printed(request);
    // {"weeks_at_step":...}
    expected = expected.substr(17, expected.size() - 18);
    EXPECT_EQ(DoubleJson(v), expected) << v;
  }
  EXPECT_EQ(DoubleJson(std::numeric_limits<double>::quiet_NaN()),
            "<non-finite>");
  EXPECT_EQ(DoubleJson(-std::numeric_limits<double>::infinity()),
            "<non-finite>");
}

// Seeded random messages in the shapes the server records.
class Generator {
 public:
  explicit Generator(uint64_t seed) : random_(seed) {}

  bool Coin(int percent = 50) { return Int(0, 99) < percent; }
  int Int(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(random_);
  }

  std::string Text() {
    static const std::vector<std::string> kPieces = {"phq9",
                                                     "item9",
                                                     " >= ",
                                                     "<",
                                                     "&",
                                                     "'",
                                                     "\"",
                                                     "\\",
                                                     "\n",
                                                     "\t",
                                                     "\x01",
                                                     "\x7f",
                                                     "é",
                                                     "\xE2\x80\xA8",
                                                     "\xF0\x9F\x98\x80",
                                                     "\xC2\xAD",
                                                     "SAFETY-02",
                                                     "crisis-team",
                                                     "ü",
                                                     "/"};
    std::string s;
    const int n = Int(0, 5);
    for (int i = 0; i < n; ++i) s += kPieces[Int(0, kPieces.size() - 1)];
    return s;
  }

  Timestamp Time() {
    Timestamp t;
    t.set_seconds(Int(0, 2000000000));
    t.set_nanos(Coin() ? 0 : Int(0, 999) * 1000000);
    return t;
  }

  // Maps with at most one entry: the printer and the writer walk a map in
  // the same order only when they walk the same object.
  v1::EvaluateRequest Request() {
    v1::EvaluateRequest r;
    if (Coin()) r.set_request_id(Text());
    if (Coin()) r.set_subject_id(Text());
    if (Coin()) r.set_current_step(Int(-3, 5));
    if (Coin()) r.set_weeks_at_step(Int(0, 400) / 8.0);
    for (int i = Int(0, 3); i > 0; --i) {
      v1::Assessment* a = r.add_assessments();
      if (Coin(80)) a->set_instrument(Text());
      if (Coin())
        (*a->mutable_items())[Coin() ? "item1" : Text() + "x"] = Int(-1, 3);
      if (Coin()) a->set_total(Int(0, 27));
      if (Coin()) *a->mutable_administered_at() = Time();
    }
    for (int i = Int(0, 2); i > 0; --i) r.add_flags(Text());
    *r.mutable_as_of() = Time();
    return r;
  }

  v1::MatchedRule Rule() {
    v1::MatchedRule m;
    if (Coin(90)) m.set_rule_id(Text());
    if (Coin()) m.set_title(Text());
    if (Coin()) m.set_action(static_cast<v1::Action>(Int(0, 5)));
    if (Coin()) m.set_rationale(Text());
    if (Coin()) m.set_follow_up(Text());
    if (Coin()) m.set_source(Text());
    if (Coin()) m.set_explanation(Text());
    if (Coin()) m.set_target_step(Int(-1, 5));
    if (Coin()) m.set_refer_to(Text());
    return m;
  }

  v1::Decision Decision() {
    v1::Decision d;
    if (Coin(90)) d.set_decision_id(Text());
    if (Coin()) d.set_action(static_cast<v1::Action>(Int(0, 5)));
    if (Coin()) d.set_recommended_step(Int(-1, 5));
    for (int i = Int(0, 2); i > 0; --i) d.add_refer_to(Text());
    for (int i = Int(0, 3); i > 0; --i) *d.add_matched_rules() = Rule();
    for (int i = Int(0, 2); i > 0; --i) {
      v1::UnevaluatedRule* u = d.add_unevaluated_rules();
      if (Coin()) u->set_rule_id(Text());
      if (Coin()) u->set_title(Text());
      for (int k = Int(0, 2); k > 0; --k) u->add_missing_facts(Text());
      if (Coin()) u->set_explanation(Text());
    }
    for (int i = Int(0, 2); i > 0; --i) d.add_warnings(Text());
    if (Coin(80)) {
      v1::RulesetRef* ref = d.mutable_ruleset();
      if (Coin(80)) ref->set_name(Text());
      if (Coin(80)) ref->set_version(Text());
      if (Coin(80)) ref->set_sha256(Text());
    }
    if (Coin(80)) *d.mutable_evaluated_at() = Time();
    if (Coin()) d.set_audit_seq(static_cast<uint64_t>(Int(0, 1000)));
    if (Coin(80)) *d.mutable_as_of() = Time();
    if (Coin()) {
      v1::RuleTrace* t = d.add_trace();
      t->set_rule_id(Text());
      t->set_outcome(v1::RuleTrace::MATCHED);
    }
    if (Coin(30)) *d.mutable_default_rule() = Rule();
    return d;
  }

 private:
  std::mt19937_64 random_;
};

TEST(ProtoJsonTest, RecordedRequestsMatchThePrinter) {
  Generator g(2026);
  for (int i = 0; i < 3000; ++i) {
    v1::EvaluateRequest recorded = g.Request();
    recorded.clear_request_id();
    recorded.clear_subject_id();
    std::string out;
    ASSERT_TRUE(AppendRecordedRequestJson(recorded, recorded.as_of(), &out));
    ASSERT_EQ(out, Printed(recorded)) << recorded.DebugString();
  }
}

TEST(ProtoJsonTest, RecordedRequestsLeaveTheIdsOutAndTakeAsOf) {
  Generator g(5);
  v1::EvaluateRequest request = g.Request();
  request.set_request_id("req-1");
  request.set_subject_id("MRN-1");
  Timestamp as_of;
  as_of.set_seconds(1795167000);
  std::string out;
  ASSERT_TRUE(AppendRecordedRequestJson(request, as_of, &out));
  v1::EvaluateRequest recorded = request;
  recorded.clear_request_id();
  recorded.clear_subject_id();
  *recorded.mutable_as_of() = as_of;
  EXPECT_EQ(out, Printed(recorded));
}

TEST(ProtoJsonTest, RecordedDecisionsMatchThePrinter) {
  Generator g(1789);
  for (int i = 0; i < 3000; ++i) {
    const v1::Decision decision = g.Decision();
    v1::Decision recorded = decision;
    recorded.clear_audit_seq();
    recorded.clear_trace();
    for (v1::MatchedRule& rule : *recorded.mutable_matched_rules()) {
      rule.clear_title();
      rule.clear_rationale();
      rule.clear_follow_up();
      rule.clear_source();
    }
    for (v1::UnevaluatedRule& rule : *recorded.mutable_unevaluated_rules()) {
      rule.clear_title();
      rule.clear_explanation();
    }
    std::string out;
    ASSERT_TRUE(AppendRecordedDecisionJson(decision, &out));
    ASSERT_EQ(out, Printed(recorded)) << decision.DebugString();
    out.clear();
    ASSERT_TRUE(AppendRulesetRefJson(decision.ruleset(), &out));
    ASSERT_EQ(out, Printed(decision.ruleset()));
  }
}

TEST(ProtoJsonTest, LeavesThePrintersOddCasesToThePrinter) {
  v1::Decision decision;
  decision.set_action(static_cast<v1::Action>(42));
  std::string out;
  EXPECT_FALSE(AppendRecordedDecisionJson(decision, &out));
  decision.set_action(v1::STAY);
  decision.mutable_evaluated_at()->set_seconds(253402300800);
  EXPECT_FALSE(AppendRecordedDecisionJson(decision, &out));

  v1::EvaluateRequest request;
  request.set_weeks_at_step(std::numeric_limits<double>::infinity());
  EXPECT_FALSE(AppendRecordedRequestJson(request, Timestamp(), &out));
  request.set_weeks_at_step(1);
  (*request.add_assessments()->mutable_items())[""] = 1;
  EXPECT_FALSE(AppendRecordedRequestJson(request, Timestamp(), &out));
}

}  // namespace
}  // namespace stepwise::service::audit
