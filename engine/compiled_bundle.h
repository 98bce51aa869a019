// Internal: what a loaded bundle compiles to. The instruments with their fact
// slots, the expression declarations, the compiled rules and the default.
// Built once by the loader (bundle.cc), immutable afterwards, shared by every
// evaluation thread.
#ifndef STEPWISE_ENGINE_COMPILED_BUNDLE_H_
#define STEPWISE_ENGINE_COMPILED_BUNDLE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/expr/batch.h"
#include "engine/expr/declarations.h"
#include "engine/expr/program.h"
#include "engine/instrument.h"
#include "engine/options.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::engine {

// A rule's to_step: a fixed step, or the patient's current step.
struct StepTarget {
  bool current = false;
  int step = 0;  // when !current; 0 = not given (STEP_UP/DOWN: current +/- 1)
};

struct CompiledRule {
  std::string id;
  std::string title;
  v1::Action action = v1::ACTION_UNSPECIFIED;
  StepTarget to_step;
  std::string refer_to;
  std::string rationale;
  std::string follow_up;
  std::string source;
  std::unique_ptr<expr::Program> when;
};

struct DefaultOutcome {
  v1::Action action = v1::STAY;
  std::string rationale;
  std::string follow_up;
  std::string source;
};

// What Decide runs (decide.cc, PrepareDecide): every rule's condition in one
// batch, and each rule's Severity(action), 0..5.
//
// For a bundle whose rules fit one chunk of the batch, the hit policy's step
// is looked up rather than looped for, so that Decide has no branch that
// depends on the facts (a request's answers are as unpredictable as the
// patient): for each action whose rules argue for a step (its step class:
// REFER 0, STEP_UP 1, STEP_DOWN 2; 3 for the others, whose tables are zero)
// and each byte k of the matched rules (rules 8k..8k+7), 256 entries indexed
// by the byte: the highest fixed to_step among those rules of that action
// (fixed_step; 0: none) and the highest move relative to the current step
// (relative_move: the move + 2, i.e. 1 for -1, 2 for 0, 3 for +1; 0: none).
struct DecidePlan {
  std::unique_ptr<expr::Batch> batch;
  std::vector<uint8_t> severity;
  bool step_tables = false;
  uint32_t step_table_bytes = 0;       // bytes of the matched word
  std::vector<uint8_t> fixed_step;     // [class][byte][256]
  std::vector<uint8_t> relative_move;  // [class][byte][256]
};

// Fixed context slots of every fact table.
inline constexpr uint32_t kCurrentStepSlot = 0;
inline constexpr uint32_t kWeeksAtStepSlot = 1;
inline constexpr uint32_t kFlagsSlot = 2;

class CompiledBundle {
 public:
  EngineOptions options;
  std::string name;
  std::string version;
  std::string description;
  std::string approved_by;
  std::optional<absl::Time> effective_from;
  std::map<int, std::string> steps;
  int max_step = 0;

  // Declared flags; fact values point at these strings, so the vector is
  // never resized after load.
  std::vector<std::string> flags;
  std::vector<std::unique_ptr<InstrumentDef>> instruments;

  expr::Declarations decls;
  // A fact table before any request: every fact absent, every group false
  // (DeclareFacts); a request's table starts as a copy of it.
  std::vector<expr::Value> empty_facts;
  expr::Defines defines;
  // The define: block as written, in order (name, expression text), for
  // reviewers (stepwise diff).
  std::vector<std::pair<std::string, std::string>> define_texts;
  // flag -> its description, as written.
  std::map<std::string, std::string> flag_descriptions;
  std::vector<CompiledRule> rules;
  DefaultOutcome default_outcome;
  DecidePlan decide_plan;

  std::vector<RuleSummary> rule_summaries;
  std::vector<TestCase> tests;
  BundleFiles files;
  std::string sha256;

  const InstrumentDef* FindInstrument(std::string_view id) const {
    for (const auto& def : instruments) {
      if (def->id == id) return def.get();
    }
    return nullptr;
  }
  // Index of a declared flag, or -1.
  int FlagIndex(std::string_view flag) const {
    for (size_t i = 0; i < flags.size(); ++i) {
      if (flags[i] == flag) return static_cast<int>(i);
    }
    return -1;
  }
};

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_COMPILED_BUNDLE_H_
