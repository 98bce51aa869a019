// What an expression may name: the facts a bundle declares (each bound to a
// slot of the request's fact table, with its type and declared range), the
// fact groups has() may test ("phq9", "previous.phq9"), and the named
// expressions of the ruleset's `define:` block. Built once per bundle by the
// loader; read-only (and so thread-safe) afterwards.
#ifndef STEPWISE_ENGINE_EXPR_DECLARATIONS_H_
#define STEPWISE_ENGINE_EXPR_DECLARATIONS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/expr/value.h"

namespace stepwise::expr {

struct FactDecl {
  // Index into the fact table (`const Value* slots`) the program reads.
  uint32_t slot = kNoSlot;
  Type type;
  // Declared numeric range, inclusive, when known (e.g. phq9.total 0..27).
  // The checker uses it to reject comparisons that can never be true.
  std::optional<double> min;
  std::optional<double> max;
  // For string facts with a closed set of values (severity labels): the
  // values. Empty means any string.
  std::vector<std::string> allowed_values;
};

class Declarations {
 public:
  // A dotted fact path: "phq9.total", "previous.phq9.total", "flags".
  void AddFact(std::string path, FactDecl decl);
  // A path usable only as the argument of has(); `slot` holds a bool that is
  // always present ("phq9", "previous.phq9", "baseline.phq9").
  void AddGroup(std::string path, uint32_t slot);

  const FactDecl* FindFact(std::string_view path) const;
  std::optional<uint32_t> FindGroup(std::string_view path) const;

  // Slot -> path, for explanations and for naming the facts an undecided
  // rule lacked. Empty string for an unknown slot.
  const std::string& SlotName(uint32_t slot) const;

  // Every fact and group path, sorted (for "did you mean" hints).
  std::vector<std::string> AllPaths() const;

  // The number of slots a fact table needs (max slot + 1).
  uint32_t slot_count() const { return slot_count_; }

 private:
  std::map<std::string, FactDecl, std::less<>> facts_;
  std::map<std::string, uint32_t, std::less<>> groups_;
  std::vector<std::string> slot_names_;
  uint32_t slot_count_ = 0;
};

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_DECLARATIONS_H_
