#include "engine/instrument.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/engine.h"

namespace stepwise::engine {

void InstrumentDef::BuildItemIndex() {
  item_index.clear();
  numbered_items = true;
  for (size_t i = 0; i < item_names.size(); ++i) {
    item_index[item_names[i]] = static_cast<int>(i);
    if (item_names[i] != absl::StrCat("item", i + 1)) numbered_items = false;
  }
}

int InstrumentDef::NamedItemIndex(std::string_view name) const {
  const auto it = item_index.find(absl::string_view(name.data(), name.size()));
  return it == item_index.end() ? -1 : it->second;
}

const Band* InstrumentDef::BandFor(int total) const {
  for (const Band& band : bands) {
    if (total >= band.min && total <= band.max) return &band;
  }
  return nullptr;
}

std::string InstrumentDef::DescribeItems() const {
  if (item_names.empty()) return "none";
  bool numbered = true;
  for (size_t i = 0; i < item_names.size(); ++i) {
    if (item_names[i] != absl::StrCat("item", i + 1)) numbered = false;
  }
  if (numbered) return absl::StrCat("item1..item", item_names.size());
  return absl::StrJoin(item_names, ", ");
}

namespace {

// round-half-up(sum * n / answered) in integer arithmetic; all non-negative.
int ProrateHalfUp(int64_t sum, int64_t n, int64_t answered) {
  return static_cast<int>((2 * sum * n + answered) / (2 * answered));
}

}  // namespace

void ScoreAdministration(const InstrumentDef& def,
                         const v1::Assessment& assessment, int index,
                         std::vector<FieldViolation>* violations,
                         std::vector<std::string>* warnings,
                         ScoredAdministration* out) {
  ScoredAdministration& scored = *out;
  scored.total.reset();
  scored.def = &def;
  scored.request_index = index;
  scored.at_seconds = assessment.administered_at().seconds();
  scored.at_nanos = assessment.administered_at().nanos();
  // resize + fill: InlinedVector::assign's generic path costs several times
  // more for a handful of ints.
  scored.items.resize(def.item_names.size());
  std::fill(scored.items.begin(), scored.items.end(), kMissingItem);

  // Built only when a message needs it: the common, valid path allocates no
  // field paths.
  auto prefix = [index] { return absl::StrCat("assessments[", index, "]"); };
  const size_t violations_before = violations->size();

  // Raw pointers: indexing an InlinedVector tests where it lives each time.
  int* const items = scored.items.data();
  const int* const item_min = def.item_min.data();
  const int* const item_max = def.item_max.data();
  for (const auto& [name, value] : assessment.items()) {
    const int idx = def.ItemIndex(name);
    if (idx < 0) {
      violations->push_back(
          {absl::StrCat(prefix(), ".items.", name),
           absl::StrCat("'", name, "' is not an item of ", def.id,
                        " (its items are ", def.DescribeItems(), ")")});
      continue;
    }
    if (value < item_min[idx] || value > item_max[idx]) {
      violations->push_back(
          {absl::StrCat(prefix(), ".items.", name),
           absl::StrCat(value, " is outside ", def.item_min[idx], "..",
                        def.item_max[idx], " for ", def.id)});
      continue;
    }
    items[idx] = value;
  }
  // Protobuf maps iterate in no fixed order: keep messages deterministic.
  std::sort(violations->begin() + violations_before, violations->end(),
            [](const FieldViolation& a, const FieldViolation& b) {
              return a.field < b.field;
            });

  const bool has_items = assessment.items_size() > 0;
  const bool has_given_total = assessment.has_total();
  if (!has_items && !has_given_total) {
    violations->push_back(
        {prefix(), absl::StrCat("a ", def.id,
                                " administration needs its items or a total")});
    return;
  }
  if (has_given_total && !def.has_total) {
    violations->push_back(
        {absl::StrCat(prefix(), ".total"),
         absl::StrCat(def.id, " has no total; send its items")});
    return;
  }
  if (!has_items && !def.has_total) {
    violations->push_back({absl::StrCat(prefix(), ".items"),
                           absl::StrCat(def.id, " needs its items")});
    return;
  }
  const int given = assessment.total();
  if (has_given_total && (given < def.total_min || given > def.total_max)) {
    violations->push_back({absl::StrCat(prefix(), ".total"),
                           absl::StrCat(given, " is outside ", def.total_min,
                                        "..", def.total_max, " for ", def.id)});
    return;
  }
  if (!has_items) {
    scored.total = given;  // a total without items: the items stay absent
    return;
  }
  if (violations->size() != violations_before) return;

  for (const SkipRule& rule : def.skip_logic) {
    if (items[rule.if_item] != rule.equals) continue;
    for (int skipped : rule.skipped) {
      if (items[skipped] == kMissingItem) items[skipped] = rule.value;
    }
  }

  int64_t sum = 0;
  int answered = 0;
  int missing_max_sum = 0;
  std::vector<std::string> missing_names;
  // Hoisted: a store through `items` could alias the vector's size.
  const int item_count = def.item_count();
  for (int i = 0; i < item_count; ++i) {
    if (items[i] == kMissingItem) {
      missing_names.push_back(def.item_names[i]);
      missing_max_sum += item_max[i];
    } else {
      sum += items[i];
      ++answered;
    }
  }
  const int missing = item_count - answered;

  std::optional<int> computed;
  if (missing == 0) {
    computed = static_cast<int>(sum);
  } else if (missing <= def.max_missing && answered > 0) {
    if (def.proration) {
      computed = ProrateHalfUp(sum, def.item_count(), answered);
      warnings->push_back(
          absl::StrCat(def.id, " (", prefix(), "): ", missing, " item",
                       missing == 1 ? "" : "s", " missing (",
                       absl::StrJoin(missing_names, ", "),
                       "); total prorated to ", *computed, " from ", sum,
                       " over ", answered, " of ", def.item_count(),
                       " items, rounded half up; missing items stay absent"));
    } else {
      computed = static_cast<int>(sum);
    }
  } else if (def.beyond_max == BeyondMax::kReject) {
    for (const std::string& name : missing_names) {
      violations->push_back(
          {absl::StrCat(prefix(), ".items.", name),
           absl::StrCat("missing: every ", def.id,
                        " item must be answered (an incomplete screen is never "
                        "guessed at)")});
    }
    return;
  } else {
    // Too many missing: the administration has no total (the spec's facts
    // table: "absent if too many items are missing"), even when one was
    // sent beside the items; a sent total is still checked against them
    // below, as bad input when it cannot be right.
    warnings->push_back(absl::StrCat(
        def.id, " (", prefix(), "): ", missing, " of ", def.item_count(),
        " items missing (", absl::StrJoin(missing_names, ", "),
        "), more than the ", def.max_missing, " allowed: no total",
        has_given_total
            ? absl::StrCat(" (the total sent, ", given, ", is not used)")
            : "",
        "; the answered items still count"));
  }

  if (!def.has_total) return;
  if (has_given_total) {
    if (computed.has_value()) {
      if (given != *computed) {
        violations->push_back(
            {absl::StrCat(prefix(), ".total"),
             missing == 0
                 ? absl::StrCat("total ", given,
                                " disagrees with the items (sum ", *computed,
                                ")")
                 : absl::StrCat("total ", given,
                                " disagrees with the items (prorated total ",
                                *computed, ")")});
        return;
      }
    } else {
      const int64_t lo = sum;
      const int64_t hi = sum + missing_max_sum;
      if (given < lo || given > hi) {
        violations->push_back(
            {absl::StrCat(prefix(), ".total"),
             absl::StrCat("total ", given, " disagrees with the items: with ",
                          missing, " missing it must lie in ", lo, "..", hi)});
      }
      return;  // consistent or not, no total
    }
    scored.total = given;
  } else {
    scored.total = computed;
  }
  return;
}

ScoredAdministration ScoreAdministration(
    const InstrumentDef& def, const v1::Assessment& assessment, int index,
    std::vector<FieldViolation>* violations,
    std::vector<std::string>* warnings) {
  ScoredAdministration scored;
  ScoreAdministration(def, assessment, index, violations, warnings, &scored);
  return scored;
}

}  // namespace stepwise::engine
