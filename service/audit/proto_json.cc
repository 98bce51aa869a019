#include "service/audit/proto_json.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "absl/strings/numbers.h"

namespace stepwise::service::audit {
namespace {

namespace v1 = ::stepwise::v1;
using ::google::protobuf::Timestamp;

constexpr char kHex[] = "0123456789abcdef";

// Bytes copied as they are: printable ASCII but for the four the printer
// escapes (`"`, `\`, `<`, `>`). Everything else goes through EscapeCodePoint.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x7f; ++c) plain[c] = true;
  plain['"'] = plain['\\'] = plain['<'] = plain['>'] = false;
  return plain;
}();

void AppendU16Escape(uint32_t unit, std::string* out) {
  char buf[6] = {'\\',
                 'u',
                 kHex[(unit >> 12) & 0xf],
                 kHex[(unit >> 8) & 0xf],
                 kHex[(unit >> 4) & 0xf],
                 kHex[unit & 0xf]};
  out->append(buf, sizeof(buf));
}

// Whether the printer escapes code point `cp` (>= 0x80): C1 controls and the
// invisible characters it escapes "to prevent security bugs in javascript".
bool PrinterEscapes(uint32_t cp) {
  return cp < 0xa0 || cp == 0xad || (cp >= 0x600 && cp <= 0x603) ||
         cp == 0x6dd || cp == 0x70f || cp == 0x17b4 || cp == 0x17b5 ||
         (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x206a && cp <= 0x206f) ||
         cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) || cp == 0xe0001 ||
         (cp >= 0x1d173 && cp <= 0x1d17a) || (cp >= 0xe0020 && cp <= 0xe007f);
}

// Decodes the well-formed UTF-8 sequence (RFC 3629) at s[i]; its length, or
// 0 if there is none.
size_t DecodeUtf8(absl::string_view s, size_t i, uint32_t* cp) {
  const auto byte = [&](size_t k) -> uint32_t {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100;
  };
  const auto cont = [&](size_t k, uint32_t lo = 0x80, uint32_t hi = 0xbf) {
    const uint32_t b = byte(k);
    return b >= lo && b <= hi;
  };
  const uint32_t b0 = byte(0);
  size_t n = 0;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = cont(1) ? 2 : 0;
  } else if (b0 == 0xe0) {
    n = cont(1, 0xa0) && cont(2) ? 3 : 0;
  } else if (b0 == 0xed) {
    n = cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  } else if (b0 >= 0xe1 && b0 <= 0xef) {
    n = cont(1) && cont(2) ? 3 : 0;
  } else if (b0 == 0xf0) {
    n = cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  } else if (b0 >= 0xf1 && b0 <= 0xf3) {
    n = cont(1) && cont(2) && cont(3) ? 4 : 0;
  } else if (b0 == 0xf4) {
    n = cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  }
  if (n == 0) return 0;
  uint32_t v = b0 & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) v = (v << 6) | (byte(k) & 0x3f);
  *cp = v;
  return n;
}

// Days since 1970-01-01 -> civil date (H. Hinnant's civil_from_days).
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

void PutDigits(uint64_t value, int width, char* at) {
  for (int i = width - 1; i >= 0; --i) {
    at[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

// Writes `"name":` after a `{` or a `,`.
class Members {
 public:
  explicit Members(std::string* out) : out_(out) { out_->push_back('{'); }
  void Name(absl::string_view name) {
    if (!first_) out_->push_back(',');
    first_ = false;
    out_->push_back('"');
    out_->append(name.data(), name.size());
    out_->append("\":", 2);
  }
  void End() { out_->push_back('}'); }

 private:
  std::string* const out_;
  bool first_ = true;
};

void AppendInt(int64_t value, std::string* out) {
  char buf[absl::numbers_internal::kFastToBufferSize];
  const char* end = absl::numbers_internal::FastIntToBuffer(value, buf);
  out->append(buf, static_cast<size_t>(end - buf));
}

bool AppendStringList(
    const google::protobuf::RepeatedPtrField<std::string>& list,
    std::string* out) {
  out->push_back('[');
  for (int i = 0; i < list.size(); ++i) {
    if (i > 0) out->push_back(',');
    if (!AppendProtoJsonString(list.Get(i), out)) return false;
  }
  out->push_back(']');
  return true;
}

bool AppendAction(int action, std::string* out) {
  if (!v1::Action_IsValid(action)) return false;  // the printer's own case
  return AppendProtoJsonString(v1::Action_Name(static_cast<v1::Action>(action)),
                               out);
}

bool AppendAssessment(const v1::Assessment& a, std::string* out) {
  Members m(out);
  if (!a.instrument().empty()) {
    m.Name("instrument");
    if (!AppendProtoJsonString(a.instrument(), out)) return false;
  }
  if (!a.items().empty()) {
    m.Name("items");
    out->push_back('{');
    bool first = true;
    for (const auto& [key, value] : a.items()) {
      if (key.empty()) return false;
      if (!first) out->push_back(',');
      first = false;
      if (!AppendProtoJsonString(key, out)) return false;
      out->push_back(':');
      AppendInt(value, out);
    }
    out->push_back('}');
  }
  if (a.has_total()) {
    m.Name("total");
    AppendInt(a.total(), out);
  }
  if (a.has_administered_at()) {
    m.Name("administered_at");
    if (!AppendProtoJsonTimestamp(a.administered_at(), out)) return false;
  }
  m.End();
  return true;
}

// `full`: every field (default_rule); otherwise without the bundle's texts.
bool AppendMatchedRule(const v1::MatchedRule& r, bool full, std::string* out) {
  Members m(out);
  const auto text = [&](absl::string_view name, const std::string& value) {
    if (value.empty()) return true;
    m.Name(name);
    return AppendProtoJsonString(value, out);
  };
  if (!text("rule_id", r.rule_id())) return false;
  if (full && !text("title", r.title())) return false;
  if (r.action() != 0) {
    m.Name("action");
    if (!AppendAction(r.action(), out)) return false;
  }
  if (full && !text("rationale", r.rationale())) return false;
  if (full && !text("follow_up", r.follow_up())) return false;
  if (full && !text("source", r.source())) return false;
  if (!text("explanation", r.explanation())) return false;
  if (r.target_step() != 0) {
    m.Name("target_step");
    AppendInt(r.target_step(), out);
  }
  if (!text("refer_to", r.refer_to())) return false;
  m.End();
  return true;
}

bool AppendUnevaluatedRule(const v1::UnevaluatedRule& r, std::string* out) {
  Members m(out);
  if (!r.rule_id().empty()) {
    m.Name("rule_id");
    if (!AppendProtoJsonString(r.rule_id(), out)) return false;
  }
  if (!r.missing_facts().empty()) {
    m.Name("missing_facts");
    if (!AppendStringList(r.missing_facts(), out)) return false;
  }
  m.End();
  return true;
}

}  // namespace

bool AppendProtoJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    size_t run = i;
    while (run < s.size() && kPlain[static_cast<unsigned char>(s[run])]) ++run;
    out->append(s.data() + i, run - i);
    i = run;
    if (i == s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out->append("\\\"", 2);
          break;
        case '\\':
          out->append("\\\\", 2);
          break;
        case '\b':
          out->append("\\b", 2);
          break;
        case '\t':
          out->append("\\t", 2);
          break;
        case '\n':
          out->append("\\n", 2);
          break;
        case '\f':
          out->append("\\f", 2);
          break;
        case '\r':
          out->append("\\r", 2);
          break;
        default:  // other controls, DEL, '<', '>'
          AppendU16Escape(c, out);
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return false;
    if (!PrinterEscapes(cp)) {
      out->append(s.data() + i, n);
    } else if (cp < 0x10000) {
      AppendU16Escape(cp, out);
    } else {
      const uint32_t v = cp - 0x10000;
      AppendU16Escape(0xd800 + (v >> 10), out);
      AppendU16Escape(0xdc00 + (v & 0x3ff), out);
    }
    i += n;
  }
  out->push_back('"');
  return true;
}

bool AppendProtoJsonTimestamp(const Timestamp& t, std::string* out) {
  // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the printer's limits.
  constexpr int64_t kMinSeconds = -62135596800;
  constexpr int64_t kMaxSeconds = 253402300799;
  const int64_t seconds = t.seconds();
  const int32_t nanos = t.nanos();
  if (seconds < kMinSeconds || seconds > kMaxSeconds || nanos < 0 ||
      nanos > 999999999) {
    return false;
  }
  int64_t days = seconds / 86400;
  int64_t rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    days -= 1;
  }
  int64_t year;
  unsigned month, day;
  CivilFromDays(days, &year, &month, &day);
  // "YYYY-MM-DDTHH:MM:SS" then ".fff", ".ffffff" or ".fffffffff", "Z".
  char buf[40] = "\"0000-00-00T00:00:00";
  PutDigits(static_cast<uint64_t>(year), 4, buf + 1);
  PutDigits(month, 2, buf + 6);
  PutDigits(day, 2, buf + 9);
  PutDigits(static_cast<uint64_t>(rem / 3600), 2, buf + 12);
  PutDigits(static_cast<uint64_t>(rem / 60 % 60), 2, buf + 15);
  PutDigits(static_cast<uint64_t>(rem % 60), 2, buf + 18);
  size_t size = 20;
  if (nanos != 0) {
    buf[size++] = '.';
    if (nanos % 1000000 == 0) {
      PutDigits(static_cast<uint64_t>(nanos / 1000000), 3, buf + size);
      size += 3;
    } else if (nanos % 1000 == 0) {
      PutDigits(static_cast<uint64_t>(nanos / 1000), 6, buf + size);
      size += 6;
    } else {
      PutDigits(static_cast<uint64_t>(nanos), 9, buf + size);
      size += 9;
    }
  }
  buf[size++] = 'Z';
  buf[size++] = '"';
  out->append(buf, size);
  return true;
}

bool AppendProtoJsonDouble(double value, std::string* out) {
  if (!std::isfinite(value)) return false;
  // to_chars with a precision is printf's %.*g in the C locale.
  char buf[48];
  auto written = std::to_chars(buf, buf + sizeof(buf), value,
                               std::chars_format::general, 15);
  double back = 0;
  std::from_chars(buf, written.ptr, back);
  if (back != value) {
    written = std::to_chars(buf, buf + sizeof(buf), value,
                            std::chars_format::general, 17);
  }
  out->append(buf, static_cast<size_t>(written.ptr - buf));
  return true;
}

bool AppendRecordedRequestJson(const v1::EvaluateRequest& request,
                               const Timestamp& as_of, std::string* out) {
  Members m(out);
  if (request.current_step() != 0) {
    m.Name("current_step");
    AppendInt(request.current_step(), out);
  }
  // proto3 leaves a double out only when its bits are zero: -0.0 is written.
  const double weeks = request.weeks_at_step();
  uint64_t bits;
  std::memcpy(&bits, &weeks, sizeof(bits));
  if (bits != 0) {
    m.Name("weeks_at_step");
    if (!AppendProtoJsonDouble(weeks, out)) return false;
  }
  if (!request.assessments().empty()) {
    m.Name("assessments");
    out->push_back('[');
    for (int i = 0; i < request.assessments_size(); ++i) {
      if (i > 0) out->push_back(',');
      if (!AppendAssessment(request.assessments(i), out)) return false;
    }
    out->push_back(']');
  }
  if (!request.flags().empty()) {
    m.Name("flags");
    if (!AppendStringList(request.flags(), out)) return false;
  }
  m.Name("as_of");
  if (!AppendProtoJsonTimestamp(as_of, out)) return false;
  m.End();
  return true;
}

bool AppendRecordedDecisionJson(const v1::Decision& d, std::string* out) {
  Members m(out);
  if (!d.decision_id().empty()) {
    m.Name("decision_id");
    if (!AppendProtoJsonString(d.decision_id(), out)) return false;
  }
  if (d.action() != 0) {
    m.Name("action");
    if (!AppendAction(d.action(), out)) return false;
  }
  if (d.recommended_step() != 0) {
    m.Name("recommended_step");
    AppendInt(d.recommended_step(), out);
  }
  if (!d.refer_to().empty()) {
    m.Name("refer_to");
    if (!AppendStringList(d.refer_to(), out)) return false;
  }
  if (!d.matched_rules().empty()) {
    m.Name("matched_rules");
    out->push_back('[');
    for (int i = 0; i < d.matched_rules_size(); ++i) {
      if (i > 0) out->push_back(',');
      if (!AppendMatchedRule(d.matched_rules(i), /*full=*/false, out)) {
        return false;
      }
    }
    out->push_back(']');
  }
  if (!d.unevaluated_rules().empty()) {
    m.Name("unevaluated_rules");
    out->push_back('[');
    for (int i = 0; i < d.unevaluated_rules_size(); ++i) {
      if (i > 0) out->push_back(',');
      if (!AppendUnevaluatedRule(d.unevaluated_rules(i), out)) return false;
    }
    out->push_back(']');
  }
  if (!d.warnings().empty()) {
    m.Name("warnings");
    if (!AppendStringList(d.warnings(), out)) return false;
  }
  if (d.has_ruleset()) {
    m.Name("ruleset");
    if (!AppendRulesetRefJson(d.ruleset(), out)) return false;
  }
  if (d.has_evaluated_at()) {
    m.Name("evaluated_at");
    if (!AppendProtoJsonTimestamp(d.evaluated_at(), out)) return false;
  }
  // audit_seq (10) is the record's own seq; trace (12) is not recorded.
  if (d.has_as_of()) {
    m.Name("as_of");
    if (!AppendProtoJsonTimestamp(d.as_of(), out)) return false;
  }
  if (d.has_default_rule()) {
    m.Name("default_rule");
    if (!AppendMatchedRule(d.default_rule(), /*full=*/true, out)) return false;
  }
  m.End();
  return true;
}

bool AppendRulesetRefJson(const v1::RulesetRef& ruleset, std::string* out) {
  Members m(out);
  const auto text = [&](absl::string_view name, const std::string& value) {
    if (value.empty()) return true;
    m.Name(name);
    return AppendProtoJsonString(value, out);
  };
  if (!text("name", ruleset.name()) || !text("version", ruleset.version()) ||
      !text("sha256", ruleset.sha256())) {
    return false;
  }
  m.End();
  return true;
}

}  // namespace stepwise::service::audit
