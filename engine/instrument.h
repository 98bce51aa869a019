// Instruments as data: the definition of one questionnaire (items, ranges,
// total, bands, missing-item rule, change figures) as declared by a bundle's
// instruments/*.yaml, and the scoring of one administration of it.
//
// Scoring validates every item and total against the declared ranges,
// applies the missing-item rule (proration with round-half-up, skip logic)
// and checks that a given total agrees with the items. It never reads out of
// bounds whatever the request holds. InstrumentDef is immutable after load.
#ifndef STEPWISE_ENGINE_INSTRUMENT_H_
#define STEPWISE_ENGINE_INSTRUMENT_H_

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "engine/expr/value.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::engine {

struct FieldViolation;

struct Band {
  std::string label;
  int min = 0;
  int max = 0;
};

// Items not asked, given another answer (C-SSRS: q2 = 0 skips q3..q5).
struct SkipRule {
  int if_item = 0;  // index into items
  int equals = 0;
  std::vector<int> skipped;  // item indices
  int value = 0;             // what a skipped item counts as
};

enum class BeyondMax { kNoTotal, kReject };

// Fact slots of one instrument in the request's fact table (kNoSlot when the
// instrument does not have that fact, e.g. cssrs.total).
struct InstrumentSlots {
  uint32_t present = expr::kNoSlot;  // group "X": bool
  uint32_t total = expr::kNoSlot;
  uint32_t severity = expr::kNoSlot;
  uint32_t caseness = expr::kNoSlot;
  uint32_t days_since = expr::kNoSlot;
  uint32_t count = expr::kNoSlot;
  uint32_t change = expr::kNoSlot;
  uint32_t pct_change = expr::kNoSlot;
  uint32_t reliable_improvement = expr::kNoSlot;
  uint32_t reliable_deterioration = expr::kNoSlot;
  uint32_t previous_present = expr::kNoSlot;  // group "previous.X"
  uint32_t previous_total = expr::kNoSlot;
  uint32_t baseline_present = expr::kNoSlot;  // group "baseline.X"
  uint32_t baseline_total = expr::kNoSlot;
  std::vector<uint32_t> items;
};

struct InstrumentDef {
  int index = 0;  // position in the bundle's instrument list
  std::string id;
  std::string title;
  std::string source;
  std::string file;
  std::map<std::string, std::string> loinc;  // concept -> code

  std::vector<std::string> item_names;
  // Name -> index, built by BuildItemIndex(); when every name is "item<N>"
  // (N = 1..count in order), ItemIndex parses N instead of hashing.
  absl::flat_hash_map<std::string, int> item_index;
  bool numbered_items = false;
  std::vector<int> item_min;
  std::vector<int> item_max;

  bool has_total = true;
  int total_min = 0;
  int total_max = 0;

  int max_missing = 0;
  bool proration = false;
  BeyondMax beyond_max = BeyondMax::kNoTotal;
  std::vector<SkipRule> skip_logic;

  std::vector<Band> bands;  // labels are pointed to by severity facts
  std::optional<int> reliable_change;
  std::optional<int> caseness;
  std::optional<int> minimal_important_difference;

  InstrumentSlots slots;

  int item_count() const { return static_cast<int>(item_names.size()); }
  // Index of `name` among the items, or -1. Call BuildItemIndex() first.
  // Inline: called for every item of every request.
  int ItemIndex(std::string_view name) const {
    if (!numbered_items) return NamedItemIndex(name);
    // "item<N>" with N in 1..count, no leading zeros: no hashing.
    const size_t size = name.size();
    if (size < 5 || size > 7 || std::memcmp(name.data(), "item", 4) != 0 ||
        name[4] == '0') {
      return -1;
    }
    int n = 0;
    for (size_t i = 4; i < size; ++i) {
      const unsigned digit = static_cast<unsigned char>(name[i]) - '0';
      if (digit > 9) return -1;
      n = n * 10 + static_cast<int>(digit);
    }
    return n <= static_cast<int>(item_names.size()) ? n - 1 : -1;
  }
  int NamedItemIndex(std::string_view name) const;
  void BuildItemIndex();
  // The band holding `total`, or null.
  const Band* BandFor(int total) const;
  // "item1..item9" or "q1, q2, ..." for messages.
  std::string DescribeItems() const;
};

inline constexpr int kMissingItem = INT32_MIN;

// One administration after scoring.
struct ScoredAdministration {
  const InstrumentDef* def = nullptr;
  int request_index = 0;  // position in EvaluateRequest.assessments
  int64_t at_seconds = 0;
  int32_t at_nanos = 0;
  // Item values by index; kMissingItem when absent (skipped items hold the
  // skip value: they count as answered).
  absl::InlinedVector<int, 16> items;
  std::optional<int> total;
};

// Scores `assessment` (the request's assessments[index]) against `def`.
// Appends every violation (field paths relative to the request) and every
// warning (prorated total, too many missing items for a total).
ScoredAdministration ScoreAdministration(
    const InstrumentDef& def, const v1::Assessment& assessment, int index,
    std::vector<FieldViolation>* violations,
    std::vector<std::string>* warnings);
// The same, into `*out` (every field overwritten), which lets a caller keep
// its administrations in place.
void ScoreAdministration(const InstrumentDef& def,
                         const v1::Assessment& assessment, int index,
                         std::vector<FieldViolation>* violations,
                         std::vector<std::string>* warnings,
                         ScoredAdministration* out);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_INSTRUMENT_H_
