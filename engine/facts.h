// The fact table: a request turned, once, into the values the rules read
// (docs/engine.md "Facts"). Slots are assigned per bundle at load
// (DeclareFacts), so evaluating a rule indexes an array and never looks a
// name up.
//
// A FactTable is per request and per thread; it keeps its slots inline for
// bundles of up to kInlineSlots facts, so deriving facts for a typical bundle
// allocates little. Only the bundle's own slots are ever written (a table
// starts as a copy of the bundle's empty table, not as kInlineSlots absent
// values), and a Reset of a table nobody wrote to since costs nothing.
#ifndef STEPWISE_ENGINE_FACTS_H_
#define STEPWISE_ENGINE_FACTS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/time/time.h"
#include "engine/compiled_bundle.h"
#include "engine/expr/value.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::engine {

struct FieldViolation;

// Assigns every fact slot of `bundle` (context, then per instrument) and
// declares each fact with its type and range for the expression checker.
// Call once, after instruments, flags and steps are loaded.
void DeclareFacts(CompiledBundle* bundle);

class FactTable {
 public:
  static constexpr size_t kInlineSlots = 320;

  // Starts reset (as after Reset(bundle)).
  explicit FactTable(const CompiledBundle& bundle);
  FactTable(const FactTable&) = delete;
  FactTable& operator=(const FactTable&) = delete;

  // Every fact absent, every group (has(X)) false, no flags.
  void Reset(const CompiledBundle& bundle);

  const expr::Value* slots() const { return slots_; }
  expr::Value* mutable_slots() {
    dirty_ = true;
    return slots_;
  }
  size_t size() const { return size_; }

  // Storage for the elements of list facts (flags); the list Value points
  // into it.
  absl::InlinedVector<expr::Value, 8>& flag_values() {
    dirty_ = true;
    return flag_values_;
  }

 private:
  // Inline slots left uninitialized: the constructor copies only the
  // bundle's slot_count() of them.
  union InlineSlots {
    InlineSlots() {}
    expr::Value values[kInlineSlots];
  };

  size_t size_;
  expr::Value* slots_;
  // Whether anything may have been written since the last Reset.
  bool dirty_ = true;
  std::unique_ptr<expr::Value[]> heap_;  // when size_ > kInlineSlots
  absl::InlinedVector<expr::Value, 8> flag_values_;
  InlineSlots inline_;
};

// Resolves the request's as_of: its own, or `received_at` when it has none.
absl::Time ResolveAsOf(const v1::EvaluateRequest& request,
                       absl::Time received_at);

// Validates `request` against the bundle and fills `facts` as of `as_of`.
// Every violation is appended (nothing is derived when there is one);
// warnings (prorated totals, missing totals) are appended too.
// Returns true when the request is valid.
bool DeriveFacts(const CompiledBundle& bundle,
                 const v1::EvaluateRequest& request, absl::Time as_of,
                 FactTable* facts, std::vector<FieldViolation>* violations,
                 std::vector<std::string>* warnings);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_FACTS_H_
