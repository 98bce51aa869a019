#include "engine/diff.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "engine/compiled_bundle.h"
#include "engine/decide.h"
#include "google/protobuf/util/json_util.h"

namespace stepwise::engine {
namespace {

using v1::FieldChange;
using v1::RuleContent;
using v1::RuleDiff;
using v1::ThresholdChange;
using FieldChanges = google::protobuf::RepeatedPtrField<FieldChange>;

// ------------------------------------------------------ expression tokens
//
// The diff needs only to tell whether two conditions differ in their numbers
// alone, and to name what a number is compared with. That takes a token
// stream, not a parse: a tokenizer that follows the expression language's
// lexical rules closely enough and never fails, so a diff can be computed
// from any two texts.

enum class TokKind { kNumber, kPath, kString, kOp };

struct ExprToken {
  TokKind kind = TokKind::kOp;
  std::string text;  // a path's dotted segments without the layout
  size_t begin = 0;  // byte offsets into the expression text
  size_t end = 0;
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsIdentChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

bool IsOp(const ExprToken& t, absl::string_view op) {
  return t.kind == TokKind::kOp && t.text == op;
}

// A '-' is a sign (part of the number after it) unless something that can
// end an operand comes before it: `x - 1` subtracts, `x >= -1` does not.
bool MinusIsSign(const std::vector<ExprToken>& tokens) {
  if (tokens.empty()) return true;
  const ExprToken& prev = tokens.back();
  if (prev.kind != TokKind::kOp) return false;
  return !IsOp(prev, ")") && !IsOp(prev, "]") && !IsOp(prev, "}");
}

std::vector<ExprToken> Tokenize(std::string_view text) {
  std::vector<ExprToken> tokens;
  const size_t n = text.size();
  const auto at = [&](size_t k) { return k < n ? text[k] : '\0'; };
  size_t i = 0;
  while (i < n) {
    const char c = text[i];
    if (IsSpace(c)) {
      ++i;
      continue;
    }
    if (c == '/' && at(i + 1) == '/') {
      while (i < n && text[i] != '\n') ++i;
      continue;
    }
    const size_t begin = i;
    const auto starts_number = [&](size_t k) {
      return IsDigit(at(k)) || (at(k) == '.' && IsDigit(at(k + 1)));
    };
    const bool sign = c == '-' && MinusIsSign(tokens) && starts_number(i + 1);
    if (sign || starts_number(i)) {
      if (sign) ++i;
      if (at(i) == '0' && (at(i + 1) == 'x' || at(i + 1) == 'X')) {
        i += 2;
        while (absl::ascii_isxdigit(at(i))) ++i;
      } else {
        while (IsDigit(at(i))) ++i;
        if (at(i) == '.' && IsDigit(at(i + 1))) {
          ++i;
          while (IsDigit(at(i))) ++i;
        }
        if ((at(i) == 'e' || at(i) == 'E') &&
            (IsDigit(at(i + 1)) ||
             ((at(i + 1) == '+' || at(i + 1) == '-') && IsDigit(at(i + 2))))) {
          i += 2;
          while (IsDigit(at(i))) ++i;
        }
      }
      while (IsIdentChar(at(i))) ++i;  // a suffix the lexer would reject
      tokens.push_back({TokKind::kNumber,
                        std::string(text.substr(begin, i - begin)), begin, i});
      continue;
    }
    if (IsIdentStart(c)) {
      // `previous.phq9.total` is one token, so that a number's context is
      // the whole fact it is compared with.
      std::string path;
      size_t end = i;
      while (true) {
        size_t j = end;
        while (IsIdentChar(at(j))) ++j;
        path.append(text.substr(end, j - end));
        end = j;
        size_t k = j;
        while (IsSpace(at(k))) ++k;
        if (at(k) != '.') break;
        ++k;
        while (IsSpace(at(k))) ++k;
        if (!IsIdentStart(at(k))) break;
        path.push_back('.');
        end = k;
      }
      tokens.push_back({TokKind::kPath, std::move(path), begin, end});
      i = end;
      continue;
    }
    if (c == '"' || c == '\'') {
      const bool triple = at(i + 1) == c && at(i + 2) == c;
      i += triple ? 3 : 1;
      while (i < n) {
        if (text[i] == '\\') {
          i += 2;
        } else if (triple ? (text[i] == c && at(i + 1) == c && at(i + 2) == c)
                          : text[i] == c) {
          i += triple ? 3 : 1;
          break;
        } else {
          ++i;
        }
      }
      i = std::min(i, n);
      tokens.push_back({TokKind::kString,
                        std::string(text.substr(begin, i - begin)), begin, i});
      continue;
    }
    static constexpr absl::string_view kTwoCharOps[] = {
        "&&", "||", "==", "!=", "<=", ">="};
    size_t length = 1;
    for (absl::string_view op : kTwoCharOps) {
      if (c == op[0] && at(i + 1) == op[1]) length = 2;
    }
    i += length;
    tokens.push_back(
        {TokKind::kOp, std::string(text.substr(begin, length)), begin, i});
  }
  return tokens;
}

bool IsComparison(const ExprToken& t) {
  return IsOp(t, "<") || IsOp(t, "<=") || IsOp(t, ">") || IsOp(t, ">=") ||
         IsOp(t, "==") || IsOp(t, "!=");
}

// Tokens that bound an operand: an operand with these on both sides is
// exactly the fact it names, with no arithmetic beside it.
bool IsDelimiter(const ExprToken& t) {
  return IsOp(t, "(") || IsOp(t, ")") || IsOp(t, "[") || IsOp(t, "]") ||
         IsOp(t, "&&") || IsOp(t, "||") || IsOp(t, ",") || IsOp(t, "?") ||
         IsOp(t, ":");
}

// An opening bracket may come before an operand and a closing one after it,
// not the other way round: `size(x)` is a call, not the fact `size`.
bool DelimitedBefore(const std::vector<ExprToken>& t, size_t i) {
  return i == 0 || (IsDelimiter(t[i - 1]) && !IsOp(t[i - 1], ")") &&
                    !IsOp(t[i - 1], "]"));
}
bool DelimitedAfter(const std::vector<ExprToken>& t, size_t i) {
  return i + 1 >= t.size() || (IsDelimiter(t[i + 1]) && !IsOp(t[i + 1], "(") &&
                               !IsOp(t[i + 1], "["));
}

// `16 <= x` reads as `x >= 16`.
std::string Mirror(absl::string_view op) {
  if (op == "<") return ">";
  if (op == "<=") return ">=";
  if (op == ">") return "<";
  if (op == ">=") return "<=";
  return std::string(op);
}

std::optional<double> ParseNumber(const std::string& literal) {
  std::string digits = literal;
  if (digits.empty()) return std::nullopt;
  bool negative = false;
  if (!digits.empty() && digits[0] == '-') {
    negative = true;
    digits.erase(0, 1);
  }
  char* end = nullptr;
  double value = 0;
  if (absl::StartsWithIgnoreCase(digits, "0x")) {
    value = static_cast<double>(std::strtoull(digits.c_str() + 2, &end, 16));
  } else {
    value = std::strtod(digits.c_str(), &end);
  }
  if (end == nullptr || *end != '\0') return std::nullopt;
  return negative ? -value : value;
}

// Whether token i sits under an odd number of `!(...)`, which turns "true
// for more patients" into "for fewer".
bool UnderNegation(const std::vector<ExprToken>& t, size_t i) {
  std::vector<bool> negated;  // one per open parenthesis
  for (size_t k = 0; k < i; ++k) {
    if (IsOp(t[k], "(")) {
      negated.push_back(k > 0 && IsOp(t[k - 1], "!"));
    } else if (IsOp(t[k], ")") && !negated.empty()) {
      negated.pop_back();
    }
  }
  return std::count(negated.begin(), negated.end(), true) % 2 == 1;
}

std::string CollapseSpace(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (IsSpace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// The text around number `i` when it is not simply compared with a fact:
// the list holding it (`cssrs.q6 in [1, 2]`), else up to two tokens either
// side within the operand (`phq9.days_since + 1.0`).
std::string SurroundingText(const std::vector<ExprToken>& t,
                            std::string_view text, size_t i) {
  size_t first = i;
  size_t last = i;
  int depth = 0;
  size_t open = t.size();
  for (size_t k = i; k-- > 0;) {
    if (IsOp(t[k], "]") || IsOp(t[k], ")")) ++depth;
    if (IsOp(t[k], "(") && depth-- == 0) break;
    if (IsOp(t[k], "[") && depth-- == 0) {
      open = k;
      break;
    }
  }
  if (open < t.size()) {
    depth = 0;
    for (last = open + 1; last + 1 < t.size(); ++last) {
      if (IsOp(t[last], "[")) ++depth;
      if (IsOp(t[last], "]") && depth-- == 0) break;
    }
    first = open;
    // `in` lexes as an identifier; take it and the fact before it.
    if (first > 0 && t[first - 1].kind == TokKind::kPath &&
        t[first - 1].text == "in") {
      --first;
      if (first > 0 && t[first - 1].kind == TokKind::kPath) --first;
    }
  } else {
    while (first > 0 && i - first < 2 && !IsDelimiter(t[first - 1])) --first;
    while (last + 1 < t.size() && last - i < 2 && !IsDelimiter(t[last + 1])) {
      ++last;
    }
  }
  return CollapseSpace(
      text.substr(t[first].begin, t[last].end - t[first].begin));
}

// Describes the change of number `i`; `t` and `text` are the new
// expression's (both sides have the same tokens but for the numbers).
ThresholdChange DescribeThreshold(const std::vector<ExprToken>& t,
                                  std::string_view text,
                                  const std::string& old_literal, size_t i) {
  ThresholdChange change;
  change.set_old_value(old_literal);
  change.set_new_value(t[i].text);
  std::string op;
  if (i >= 2 && IsComparison(t[i - 1]) && t[i - 2].kind == TokKind::kPath &&
      DelimitedBefore(t, i - 2) && DelimitedAfter(t, i)) {
    op = t[i - 1].text;
    change.set_context(absl::StrCat(t[i - 2].text, " ", op));
  } else if (i + 2 < t.size() && IsComparison(t[i + 1]) &&
             t[i + 2].kind == TokKind::kPath && DelimitedBefore(t, i) &&
             DelimitedAfter(t, i + 2)) {
    op = Mirror(t[i + 1].text);
    change.set_context(absl::StrCat(t[i + 2].text, " ", op));
  }
  if (op.empty()) {
    change.set_context(SurroundingText(t, text, i));
    return change;
  }
  change.set_comparison(true);
  const bool ordering = op == "<" || op == "<=" || op == ">" || op == ">=";
  const bool conditional = std::any_of(
      t.begin(), t.end(), [](const ExprToken& k) { return IsOp(k, "?"); });
  const std::optional<double> from = ParseNumber(old_literal);
  const std::optional<double> to = ParseNumber(t[i].text);
  if (!ordering || conditional || !from || !to || *from == *to) return change;
  // `x >= N`: a lower N lets more patients through; `x <= N` the opposite.
  bool more = (*to < *from) == (op[0] == '>');
  if (UnderNegation(t, i)) more = !more;
  change.set_effect(more ? ThresholdChange::MATCHES_MORE
                         : ThresholdChange::MATCHES_FEWER);
  return change;
}

// --------------------------------------------------------- field entries
//
// Rules, instruments and the ruleset's metadata are each flattened into an
// ordered list of (field, key) -> text entries; the diff of two such lists
// gives the field changes. Text values are what a reviewer reads, so they
// are rendered here once, the same way for both sides.

struct Entry {
  std::string field;
  std::string key;          // which member, for a keyed field
  std::string value;        // empty: absent
  bool member = false;      // one of several under `field`, keyed by `key`
  bool expression = false;  // compared token by token
};
using Entries = std::vector<Entry>;

void AddMember(Entries* entries, std::string field, std::string key,
               std::string value, bool expression = false) {
  // Keys must be unique within a field to be matched; a repeated key (two
  // skip rules on one trigger) gets its ordinal.
  int seen = 0;
  for (const Entry& e : *entries) {
    if (e.field == field &&
        (e.key == key || absl::StartsWith(e.key, absl::StrCat(key, " #")))) {
      ++seen;
    }
  }
  if (seen > 0) key = absl::StrCat(key, " #", seen + 1);
  entries->push_back(
      {std::move(field), std::move(key), std::move(value), true, expression});
}

std::string OptionalInt(const std::optional<int>& v) {
  return v ? absl::StrCat(*v) : std::string();
}

std::string Range(int min, int max) { return absl::StrCat(min, "..", max); }

// "item1..item9: 0..3" or "q1..q5: 0..1; q6: 0..2"; one range for all
// items reads "0..3".
std::string ItemRanges(const InstrumentDef& def) {
  std::vector<std::string> runs;
  size_t start = 0;
  for (size_t i = 1; i <= def.item_names.size(); ++i) {
    if (i < def.item_names.size() && def.item_min[i] == def.item_min[start] &&
        def.item_max[i] == def.item_max[start]) {
      continue;
    }
    const std::string names =
        i - start == 1
            ? def.item_names[start]
            : absl::StrCat(def.item_names[start], "..", def.item_names[i - 1]);
    runs.push_back(absl::StrCat(
        names, ": ", Range(def.item_min[start], def.item_max[start])));
    start = i;
  }
  if (runs.size() == 1 && !def.item_names.empty()) {
    return Range(def.item_min[0], def.item_max[0]);
  }
  return absl::StrJoin(runs, "; ");
}

Entries InstrumentEntries(const InstrumentDef& def) {
  Entries e;
  e.push_back({"title", "", def.title});
  e.push_back({"items", "",
               absl::StrCat(def.item_count(), " (", def.DescribeItems(), ")")});
  e.push_back({"item_ranges", "", ItemRanges(def)});
  e.push_back({"total", "",
               def.has_total ? Range(def.total_min, def.total_max) : "none"});
  for (const Band& band : def.bands) {
    AddMember(&e, "band", band.label, Range(band.min, band.max));
  }
  e.push_back({"max_missing", "", absl::StrCat(def.max_missing)});
  e.push_back({"proration", "", def.proration ? "yes" : "no"});
  e.push_back({"beyond_max", "",
               def.beyond_max == BeyondMax::kReject ? "reject" : "no_total"});
  for (const SkipRule& skip : def.skip_logic) {
    std::vector<std::string> skipped;
    for (int idx : skip.skipped) skipped.push_back(def.item_names[idx]);
    AddMember(
        &e, "skip_logic",
        absl::StrCat("if ", def.item_names[skip.if_item], " = ", skip.equals),
        absl::StrCat(absl::StrJoin(skipped, ", "), " skipped, counted as ",
                     skip.value));
  }
  e.push_back({"reliable_change", "", OptionalInt(def.reliable_change)});
  e.push_back({"caseness", "", OptionalInt(def.caseness)});
  e.push_back({"minimal_important_difference", "",
               OptionalInt(def.minimal_important_difference)});
  for (const auto& [concept_name, code] : def.loinc) {
    AddMember(&e, "loinc", concept_name, code);
  }
  e.push_back({"source", "", def.source});
  return e;
}

// The step a rule argues for, as RuleTarget() resolves it.
std::string ToStepText(const CompiledRule& rule) {
  if (rule.to_step.current) return "current";
  if (rule.to_step.step != 0) return absl::StrCat(rule.to_step.step);
  switch (rule.action) {
    case v1::STEP_UP:
      return "current + 1";
    case v1::STEP_DOWN:
      return "current - 1";
    case v1::REFER:
      return "current";
    default:
      return "";
  }
}

RuleContent ContentOf(const CompiledRule& rule, int position) {
  RuleContent c;
  c.set_id(rule.id);
  c.set_title(rule.title);
  c.set_condition(rule.when != nullptr ? rule.when->source() : "");
  c.set_action(rule.action);
  c.set_to_step(ToStepText(rule));
  c.set_refer_to(rule.refer_to);
  c.set_rationale(rule.rationale);
  c.set_follow_up(rule.follow_up);
  c.set_source(rule.source);
  c.set_position(position);
  return c;
}

Entries RuleEntries(const RuleContent& r) {
  Entries e;
  e.push_back({"title", "", r.title()});
  e.push_back({"condition", "", r.condition(), false, true});
  e.push_back({"action", "", v1::Action_Name(r.action())});
  e.push_back({"to_step", "", r.to_step()});
  e.push_back({"refer_to", "", r.refer_to()});
  e.push_back({"rationale", "", r.rationale()});
  e.push_back({"follow_up", "", r.follow_up()});
  e.push_back({"source", "", r.source()});
  return e;
}

std::string TimeText(const std::optional<absl::Time>& t) {
  if (!t) return "";
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond civil = absl::ToCivilSecond(*t, utc);
  if (absl::CivilSecond(absl::CivilDay(civil)) == civil)
    return absl::FormatTime("%Y-%m-%d", *t, utc);
  return absl::FormatTime(absl::RFC3339_full, *t, utc);
}

Entries MetadataEntries(const CompiledBundle& b) {
  Entries e;
  e.push_back({"ruleset", "", b.name});
  e.push_back({"version", "", b.version});
  e.push_back({"approved_by", "", b.approved_by});
  e.push_back({"effective_from", "", TimeText(b.effective_from)});
  e.push_back({"description", "", b.description});
  for (const auto& [step, name] : b.steps) {
    AddMember(&e, "step", absl::StrCat(step), name);
  }
  for (const std::string& flag : b.flags) {
    const auto it = b.flag_descriptions.find(flag);
    AddMember(&e, "flag", flag, it == b.flag_descriptions.end() ? "" : it->second);
  }
  for (const auto& [name, text] : b.define_texts) AddMember(&e, "define", name, text, true);
  e.push_back({"default_rationale", "", b.default_outcome.rationale});
  e.push_back({"default_follow_up", "", b.default_outcome.follow_up});
  e.push_back({"default_source", "", b.default_outcome.source});
  return e;
}

FieldChange* AddChange(FieldChanges* out, const Entry& entry,
                       FieldChange::Kind kind) {
  FieldChange* change = out->Add();
  change->set_field(entry.field);
  change->set_key(entry.key);
  change->set_kind(kind);
  return change;
}

// Fills `change` from two texts of one expression; false when they are the
// same expression.
bool DiffExpression(const std::string& old_text, const std::string& new_text,
                    FieldChange* change) {
  ExpressionDelta delta = CompareExpressions(old_text, new_text);
  if (delta.kind == ExpressionDelta::Kind::kSame) return false;
  for (ThresholdChange& t : delta.thresholds) {
    *change->add_thresholds() = std::move(t);
  }
  return true;
}

// Field by field in order of first appearance (NEW's entries first), and
// within a field NEW's members in order, then the members only OLD has.
void DiffEntries(const Entries& old_entries, const Entries& new_entries,
                 FieldChanges* out) {
  using Key = std::pair<std::string, std::string>;
  std::map<Key, const Entry*> old_by_key;
  std::map<Key, const Entry*> new_by_key;
  for (const Entry& e : old_entries) old_by_key[{e.field, e.key}] = &e;
  for (const Entry& e : new_entries) new_by_key[{e.field, e.key}] = &e;
  std::vector<std::string> fields;
  for (const Entries* list : {&new_entries, &old_entries}) {
    for (const Entry& e : *list) {
      if (std::find(fields.begin(), fields.end(), e.field) == fields.end()) {
        fields.push_back(e.field);
      }
    }
  }
  for (const std::string& field : fields) {
    for (const Entry& e : new_entries) {
      if (e.field != field) continue;
      auto it = old_by_key.find({e.field, e.key});
      if (it == old_by_key.end()) {
        FieldChange* change = AddChange(
            out, e, e.member ? FieldChange::ADDED : FieldChange::CHANGED);
        change->set_new_value(e.value);
        continue;
      }
      const Entry& o = *it->second;
      if (o.value == e.value) continue;
      FieldChange change;
      change.set_field(e.field);
      change.set_key(e.key);
      change.set_kind(FieldChange::CHANGED);
      change.set_old_value(o.value);
      change.set_new_value(e.value);
      if (e.expression && !DiffExpression(o.value, e.value, &change)) continue;
      *out->Add() = std::move(change);
    }
    for (const Entry& o : old_entries) {
      if (o.field != field || new_by_key.count({o.field, o.key}) > 0) continue;
      FieldChange* change = AddChange(
          out, o, o.member ? FieldChange::REMOVED : FieldChange::CHANGED);
      change->set_old_value(o.value);
    }
  }
}

// An added or removed instrument: its content, every non-empty field but
// the title (the InstrumentDiff names it).
void ContentChanges(const Entries& entries, FieldChange::Kind kind,
                    FieldChanges* out) {
  for (const Entry& e : entries) {
    if ((e.value.empty() && !e.member) || e.field == "title") continue;
    FieldChange* change = AddChange(out, e, kind);
    if (kind == FieldChange::ADDED) {
      change->set_new_value(e.value);
    } else {
      change->set_old_value(e.value);
    }
  }
}

// ------------------------------------------------------------ rule order

// The common rules that keep their relative order: a longest increasing
// subsequence of their NEW positions taken in OLD's order. The others moved.
// O(n log n); ties resolve the same way every run.
std::set<std::string> MovedRules(const std::vector<std::string>& common_in_old,
                                 const std::map<std::string, int>& new_pos) {
  const size_t n = common_in_old.size();
  std::vector<int> seq(n);
  for (size_t i = 0; i < n; ++i) seq[i] = new_pos.at(common_in_old[i]);
  std::vector<size_t> tails;  // index into seq of the tail of each length
  std::vector<int> prev(n, -1);
  for (size_t i = 0; i < n; ++i) {
    auto it = std::lower_bound(
        tails.begin(), tails.end(), seq[i],
        [&](size_t idx, int value) { return seq[idx] < value; });
    if (it != tails.begin()) prev[i] = static_cast<int>(*(it - 1));
    if (it == tails.end()) {
      tails.push_back(i);
    } else {
      *it = i;
    }
  }
  std::vector<bool> kept(n, false);
  for (int i = tails.empty() ? -1 : static_cast<int>(tails.back()); i >= 0;
       i = prev[i]) {
    kept[i] = true;
  }
  std::set<std::string> moved;
  for (size_t i = 0; i < n; ++i) {
    if (!kept[i]) moved.insert(common_in_old[i]);
  }
  return moved;
}

// ---------------------------------------------------------------- safety

bool IsSafetyRule(const RuleContent& rule) {
  return absl::StartsWith(rule.id(), "SAFETY-") ||
         rule.action() == v1::URGENT_SAFETY;
}

std::string ActionName(v1::Action action) { return v1::Action_Name(action); }

std::string ThresholdText(const ThresholdChange& t) {
  return t.comparison()
             ? absl::StrCat("threshold of ", t.context(), ": ", t.old_value(),
                            " → ", t.new_value())
             : absl::StrCat("number in \"", t.context(), "\": ", t.old_value(),
                            " → ", t.new_value());
}

void AddChangedRuleWarnings(RuleDiff* d) {
  const RuleContent& o = d->old_rule();
  const RuleContent& n = d->new_rule();
  const bool safety = IsSafetyRule(o);
  if (o.action() != n.action()) {
    const bool weaker = Severity(n.action()) < Severity(o.action());
    if (safety && weaker) {
      d->add_warnings(
          absl::StrCat("safety rule made less severe: ", ActionName(o.action()),
                       " → ", ActionName(n.action())));
    } else {
      d->add_warnings(
          absl::StrCat("action changed: ", ActionName(o.action()), " → ",
                       ActionName(n.action()),
                       weaker ? " (less severe)" : " (more severe)"));
    }
  }
  if (!safety) return;
  for (const FieldChange& c : d->changes()) {
    if (c.field() == "condition") {
      if (c.thresholds().empty()) {
        d->add_warnings(
            "condition of a safety rule rewritten: check that it still "
            "matches every patient it did");
      }
      for (const ThresholdChange& t : c.thresholds()) {
        if (t.effect() == ThresholdChange::MATCHES_FEWER) {
          d->add_warnings(
              absl::StrCat("safety rule now matches fewer patients (",
                           ThresholdText(t), ")"));
        } else if (t.effect() == ThresholdChange::EFFECT_UNKNOWN) {
          d->add_warnings(
              absl::StrCat("safety rule threshold changed (", ThresholdText(t),
                           "): check which patients it now matches"));
        }
      }
    } else if (c.field() == "to_step") {
      const std::optional<double> from = ParseNumber(c.old_value());
      const std::optional<double> to = ParseNumber(c.new_value());
      if (from && to && *to < *from) {
        d->add_warnings(absl::StrCat(
            "safety rule now argues for a lower step: ", c.old_value(), " → ",
            c.new_value()));
      }
    } else if (c.field() == "refer_to" && o.action() == n.action()) {
      d->add_warnings(absl::StrCat("safety rule refers elsewhere: ",
                                   c.old_value(), " → ", c.new_value()));
    }
  }
}

// Safety rules of `rules` whose condition names `define`.
std::vector<std::string> SafetyRulesUsing(const std::vector<RuleContent>& rules,
                                          const std::string& define) {
  std::vector<std::string> ids;
  for (const RuleContent& r : rules) {
    if (!IsSafetyRule(r)) continue;
    for (const ExprToken& t : Tokenize(r.condition())) {
      if (t.kind == TokKind::kPath && t.text == define) {
        ids.push_back(r.id());
        break;
      }
    }
  }
  return ids;
}

v1::BundleSummary Summarize(const Bundle& bundle) {
  const CompiledBundle& c = bundle.compiled();
  v1::BundleSummary s;
  s.set_name(c.name);
  s.set_version(c.version);
  s.set_sha256(c.sha256);
  s.set_rule_count(static_cast<int32_t>(c.rules.size()));
  s.set_instrument_count(static_cast<int32_t>(c.instruments.size()));
  s.set_test_case_count(static_cast<int32_t>(c.tests.size()));
  return s;
}

std::vector<RuleContent> Contents(const CompiledBundle& b) {
  std::vector<RuleContent> rules;
  for (size_t i = 0; i < b.rules.size(); ++i) {
    rules.push_back(ContentOf(b.rules[i], static_cast<int>(i) + 1));
  }
  return rules;
}

void DiffRules(const CompiledBundle& old_b, const CompiledBundle& new_b,
               BundleDiff* diff) {
  const std::vector<RuleContent> old_rules = Contents(old_b);
  const std::vector<RuleContent> new_rules = Contents(new_b);
  std::map<std::string, const RuleContent*> old_by_id;
  std::map<std::string, int> new_pos;
  for (const RuleContent& r : old_rules) old_by_id[r.id()] = &r;
  for (const RuleContent& r : new_rules) new_pos[r.id()] = r.position();
  std::vector<std::string> common_in_old;
  for (const RuleContent& r : old_rules) {
    if (new_pos.count(r.id()) > 0) common_in_old.push_back(r.id());
  }
  const std::set<std::string> moved = MovedRules(common_in_old, new_pos);

  for (const RuleContent& r : new_rules) {
    auto it = old_by_id.find(r.id());
    if (it == old_by_id.end()) {
      RuleDiff* d = diff->add_rules_added();
      d->set_id(r.id());
      *d->mutable_new_rule() = r;
      continue;
    }
    RuleDiff d;
    d.set_id(r.id());
    *d.mutable_old_rule() = *it->second;
    *d.mutable_new_rule() = r;
    DiffEntries(RuleEntries(*it->second), RuleEntries(r), d.mutable_changes());
    d.set_moved(moved.count(r.id()) > 0);
    if (d.changes().empty() && !d.moved()) continue;
    AddChangedRuleWarnings(&d);
    *diff->add_rules_changed() = std::move(d);
  }
  for (const RuleContent& r : old_rules) {
    if (new_pos.count(r.id()) > 0) continue;
    RuleDiff* d = diff->add_rules_removed();
    d->set_id(r.id());
    *d->mutable_old_rule() = r;
    if (r.action() == v1::URGENT_SAFETY) {
      d->add_warnings("URGENT_SAFETY rule removed");
    } else if (IsSafetyRule(r)) {
      d->add_warnings(
          absl::StrCat("safety rule removed (", ActionName(r.action()), ")"));
    }
  }
}

void DiffInstruments(const CompiledBundle& old_b, const CompiledBundle& new_b,
                     BundleDiff* diff) {
  std::map<std::string, const InstrumentDef*> old_by_id;
  std::map<std::string, const InstrumentDef*> new_by_id;
  for (const auto& def : old_b.instruments) old_by_id[def->id] = def.get();
  for (const auto& def : new_b.instruments) new_by_id[def->id] = def.get();
  for (const auto& [id, def] : new_by_id) {
    auto it = old_by_id.find(id);
    if (it == old_by_id.end()) {
      v1::InstrumentDiff* d = diff->add_instruments_added();
      d->set_id(id);
      d->set_title(def->title);
      ContentChanges(InstrumentEntries(*def), FieldChange::ADDED,
                     d->mutable_changes());
      continue;
    }
    v1::InstrumentDiff d;
    d.set_id(id);
    d.set_title(def->title);
    DiffEntries(InstrumentEntries(*it->second), InstrumentEntries(*def),
                d.mutable_changes());
    if (!d.changes().empty()) *diff->add_instruments_changed() = std::move(d);
  }
  for (const auto& [id, def] : old_by_id) {
    if (new_by_id.count(id) > 0) continue;
    v1::InstrumentDiff* d = diff->add_instruments_removed();
    d->set_id(id);
    d->set_title(def->title);
    ContentChanges(InstrumentEntries(*def), FieldChange::REMOVED,
                   d->mutable_changes());
  }
}

void DiffMetadata(const CompiledBundle& old_b, const CompiledBundle& new_b,
                  BundleDiff* diff) {
  DiffEntries(MetadataEntries(old_b), MetadataEntries(new_b),
              diff->mutable_metadata());
  // A define is spliced into the conditions that name it: a change to one
  // that a safety rule uses is a change to that safety rule.
  const std::vector<RuleContent> old_rules = Contents(old_b);
  const std::vector<RuleContent> new_rules = Contents(new_b);
  for (FieldChange& c : *diff->mutable_metadata()) {
    if (c.field() != "define" || c.kind() != FieldChange::CHANGED) continue;
    std::vector<std::string> users = SafetyRulesUsing(new_rules, c.key());
    for (const std::string& id : SafetyRulesUsing(old_rules, c.key())) {
      if (std::find(users.begin(), users.end(), id) == users.end()) {
        users.push_back(id);
      }
    }
    if (users.empty()) continue;
    c.set_warning(absl::StrCat(
        "define used by safety rule", users.size() == 1 ? " " : "s ",
        absl::StrJoin(users, ", "), ": check which patients they now match"));
  }
}

// ------------------------------------------------------------ text output

std::string Label(const FieldChange& c) {
  static const auto* const kLabels = new std::map<std::string, std::string>{
      {"follow_up", "follow-up"},
      {"default_follow_up", "default follow-up"},
      {"ruleset", "ruleset name"},
      {"max_missing", "missing items allowed"},
      {"beyond_max", "too many missing items"},
      {"skip_logic", "skip rule"},
      {"loinc", "LOINC code"},
  };
  auto it = kLabels->find(c.field());
  std::string label = it != kLabels->end()
                          ? it->second
                          : absl::StrReplaceAll(c.field(), {{"_", " "}});
  return label;
}

std::string Shown(const std::string& value) {
  return value.empty() ? "(none)" : CollapseSpace(value);
}

class TextWriter {
 public:
  void Line(int indent, absl::string_view text) {
    absl::StrAppend(&out_, std::string(static_cast<size_t>(indent), ' '), text,
                    "\n");
  }
  void Blank() { out_.push_back('\n'); }

  // One field change, at `indent`. `content`: the change lists an added or
  // removed thing's content, so show "field: value".
  void Change(int indent, const FieldChange& c, bool content = false) {
    const std::string label = Label(c);
    const std::string keyed =
        c.key().empty() ? label : absl::StrCat(label, " ", c.key());
    if (content) {
      const std::string& value =
          c.kind() == FieldChange::REMOVED ? c.old_value() : c.new_value();
      Line(indent,
           value.empty() ? keyed : absl::StrCat(keyed, ": ", Shown(value)));
      return;
    }
    if (!c.warning().empty()) Line(indent, absl::StrCat("! ", c.warning()));
    switch (c.kind()) {
      case FieldChange::ADDED:
      case FieldChange::REMOVED: {
        const char* verb = c.kind() == FieldChange::ADDED ? "added" : "removed";
        const std::string& value =
            c.kind() == FieldChange::ADDED ? c.new_value() : c.old_value();
        Line(indent, value.empty()
                         ? absl::StrCat(label, " ", verb, ": ", c.key())
                         : absl::StrCat(keyed, " ", verb, ": ", Shown(value)));
        return;
      }
      default:
        break;
    }
    if (!c.thresholds().empty()) {
      for (const ThresholdChange& t : c.thresholds()) {
        std::string effect;
        if (t.effect() == ThresholdChange::MATCHES_MORE) {
          effect = " (matches more patients)";
        } else if (t.effect() == ThresholdChange::MATCHES_FEWER) {
          effect = " (matches fewer patients)";
        }
        Line(indent, absl::StrCat(ThresholdText(t), effect));
      }
      Line(indent + 2, absl::StrCat(keyed, " now: ", Shown(c.new_value())));
      return;
    }
    const std::string from = Shown(c.old_value());
    const std::string to = Shown(c.new_value());
    if (from.size() + to.size() <= 60) {
      Line(indent, absl::StrCat(keyed, ": ", from, " → ", to));
      return;
    }
    Line(indent, absl::StrCat(keyed, " changed"));
    Line(indent + 2, absl::StrCat("was: ", from));
    Line(indent + 2, absl::StrCat("now: ", to));
  }

  void RuleBody(int indent, const RuleContent& r) {
    Line(indent, absl::StrCat("condition: ", Shown(r.condition())));
    std::string action = ActionName(r.action());
    if (!r.to_step().empty())
      absl::StrAppend(&action, ", to step ", r.to_step());
    Line(indent, absl::StrCat("action: ", action));
    if (!r.refer_to().empty()) {
      Line(indent, absl::StrCat("refer to: ", r.refer_to()));
    }
    Line(indent, absl::StrCat("rationale: ", Shown(r.rationale())));
    Line(indent, absl::StrCat("follow-up: ", Shown(r.follow_up())));
    Line(indent, absl::StrCat("source: ", Shown(r.source())));
  }

  void Warnings(int indent, const RuleDiff& d) {
    for (const std::string& w : d.warnings()) {
      Line(indent, absl::StrCat("! ", w));
    }
  }

  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string Marker(char plain, bool review) {
  return absl::StrCat("  ", std::string(1, review ? '!' : plain), " ");
}

void WriteSide(TextWriter* w, absl::string_view label,
               const v1::BundleSummary& s) {
  w->Line(2,
          absl::StrCat(label, ": ", s.name(), " ", s.version(), " (",
                       s.rule_count(), " rules, ", s.instrument_count(),
                       " instruments, ", s.test_case_count(), " test cases)"));
  w->Line(7, absl::StrCat("sha256 ", s.sha256()));
}

}  // namespace

ExpressionDelta CompareExpressions(std::string_view old_text,
                                   std::string_view new_text) {
  ExpressionDelta delta;
  const std::vector<ExprToken> a = Tokenize(old_text);
  const std::vector<ExprToken> b = Tokenize(new_text);
  bool numbers_only = a.size() == b.size();
  for (size_t i = 0; numbers_only && i < a.size(); ++i) {
    if (a[i].kind != b[i].kind ||
        (a[i].kind != TokKind::kNumber && a[i].text != b[i].text)) {
      numbers_only = false;
    }
  }
  if (!numbers_only) {
    delta.kind = ExpressionDelta::Kind::kRewritten;
    return delta;
  }
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i].kind == TokKind::kNumber && a[i].text != b[i].text) {
      delta.thresholds.push_back(DescribeThreshold(b, new_text, a[i].text, i));
    }
  }
  delta.kind = delta.thresholds.empty() ? ExpressionDelta::Kind::kSame
                                        : ExpressionDelta::Kind::kThresholds;
  return delta;
}

BundleDiff DiffBundles(const Bundle& old_bundle, const Bundle& new_bundle) {
  BundleDiff diff;
  *diff.mutable_old_bundle() = Summarize(old_bundle);
  *diff.mutable_new_bundle() = Summarize(new_bundle);
  const CompiledBundle& old_b = old_bundle.compiled();
  const CompiledBundle& new_b = new_bundle.compiled();
  DiffRules(old_b, new_b, &diff);
  DiffInstruments(old_b, new_b, &diff);
  DiffMetadata(old_b, new_b, &diff);
  int review = 0;
  for (const auto* list :
       {&diff.rules_added(), &diff.rules_removed(), &diff.rules_changed()}) {
    for (const RuleDiff& d : *list) review += d.warnings().empty() ? 0 : 1;
  }
  for (const FieldChange& c : diff.metadata()) {
    review += c.warning().empty() ? 0 : 1;
  }
  diff.set_review_count(review);
  return diff;
}

bool HasDifferences(const BundleDiff& diff) {
  return !diff.rules_added().empty() || !diff.rules_removed().empty() ||
         !diff.rules_changed().empty() || !diff.instruments_added().empty() ||
         !diff.instruments_removed().empty() ||
         !diff.instruments_changed().empty() || !diff.metadata().empty();
}

std::string FormatDiffText(const BundleDiff& diff) {
  TextWriter w;
  w.Line(0, "Rule bundle diff");
  WriteSide(&w, "old", diff.old_bundle());
  WriteSide(&w, "new", diff.new_bundle());
  w.Blank();
  if (!HasDifferences(diff)) {
    w.Line(0, diff.old_bundle().sha256() == diff.new_bundle().sha256()
                  ? "No differences."
                  : "No differences in rules, instruments or ruleset "
                    "metadata: the files differ only in layout, comments or "
                    "test cases.");
    return w.Take();
  }
  if (diff.review_count() > 0) {
    w.Line(0, absl::StrCat(
                  "! ", diff.review_count(),
                  diff.review_count() == 1 ? " change needs" : " changes need",
                  " a clinical safety review (marked !)."));
    w.Blank();
  }
  const auto heading = [&](absl::string_view title, int count) {
    w.Line(0, absl::StrCat(title, " (", count, ")"));
  };
  if (!diff.rules_added().empty()) {
    heading("Rules added", diff.rules_added_size());
    for (const RuleDiff& d : diff.rules_added()) {
      w.Line(0, absl::StrCat(Marker('+', !d.warnings().empty()), d.id(), "  ",
                             d.new_rule().title()));
      w.Warnings(6, d);
      w.RuleBody(6, d.new_rule());
    }
    w.Blank();
  }
  if (!diff.rules_removed().empty()) {
    heading("Rules removed", diff.rules_removed_size());
    for (const RuleDiff& d : diff.rules_removed()) {
      w.Line(0, absl::StrCat(Marker('-', !d.warnings().empty()), d.id(), "  ",
                             d.old_rule().title()));
      w.Warnings(6, d);
      w.Line(6, absl::StrCat("condition: ", Shown(d.old_rule().condition())));
      std::string action = ActionName(d.old_rule().action());
      if (!d.old_rule().to_step().empty()) {
        absl::StrAppend(&action, ", to step ", d.old_rule().to_step());
      }
      w.Line(6, absl::StrCat("action: ", action));
    }
    w.Blank();
  }
  if (!diff.rules_changed().empty()) {
    heading("Rules changed", diff.rules_changed_size());
    for (const RuleDiff& d : diff.rules_changed()) {
      w.Line(0, absl::StrCat(Marker('~', !d.warnings().empty()), d.id(), "  ",
                             d.new_rule().title()));
      w.Warnings(6, d);
      for (const FieldChange& c : d.changes()) w.Change(6, c);
      if (d.moved()) {
        w.Line(6, absl::StrCat("moved: position ", d.old_rule().position(),
                               " → ", d.new_rule().position(),
                               " (rule order does not change the outcome: "
                               "every rule is evaluated and the most severe "
                               "matched action wins)"));
      }
    }
    w.Blank();
  }
  const int instruments = diff.instruments_added_size() +
                          diff.instruments_removed_size() +
                          diff.instruments_changed_size();
  if (instruments > 0) {
    heading("Instruments", instruments);
    // One list by id, each entry marked added, removed or changed.
    std::map<std::string, std::pair<char, const v1::InstrumentDiff*>> by_id;
    for (const auto& d : diff.instruments_added()) by_id[d.id()] = {'+', &d};
    for (const auto& d : diff.instruments_removed()) by_id[d.id()] = {'-', &d};
    for (const auto& d : diff.instruments_changed()) by_id[d.id()] = {'~', &d};
    for (const auto& [id, entry] : by_id) {
      const auto& [mark, d] = entry;
      w.Line(0, absl::StrCat(Marker(mark, false), id, "  ", d->title()));
      if (mark == '-') continue;
      for (const FieldChange& c : d->changes()) w.Change(6, c, mark == '+');
    }
    w.Blank();
  }
  if (!diff.metadata().empty()) {
    heading("Ruleset metadata", diff.metadata_size());
    for (const FieldChange& c : diff.metadata()) w.Change(2, c);
    w.Blank();
  }
  std::string text = w.Take();
  text.pop_back();  // the blank line after the last section
  return text;
}

std::string FormatDiffJson(const BundleDiff& diff) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(diff, &out, options);
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  return out;
}

}  // namespace stepwise::engine
