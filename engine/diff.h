// What changed between two loaded rule bundles, for the people who approve a
// new one: rules added, removed and changed field by field (with threshold
// changes picked out of conditions), instruments, and ruleset metadata; plus
// the two renderings `stepwise diff` prints (plain text for clinicians, JSON
// for tools). docs/diff.md is the reference.
//
// Everything here is a pure function of its arguments: no I/O, no shared
// state, safe from any thread. The bundles are only read.
#ifndef STEPWISE_ENGINE_DIFF_H_
#define STEPWISE_ENGINE_DIFF_H_

#include <string>
#include <string_view>
#include <vector>

#include "engine/bundle.h"
#include "stepwise/v1/diff.pb.h"

namespace stepwise::engine {

using BundleDiff = v1::BundleDiff;

// Compares two bundles. Rules are matched by id, instruments by id. The
// result is deterministic: rules added and changed in NEW's order, removed
// ones in OLD's order, instruments sorted by id.
BundleDiff DiffBundles(const Bundle& old_bundle, const Bundle& new_bundle);

// True when the diff holds any rule, instrument or metadata difference.
// False for identical bundles and for bundles whose files differ only in
// layout, comments or test cases.
bool HasDifferences(const BundleDiff& diff);

// The report for a clinician: a header naming both bundles (name, version,
// sha256, counts), then "Rules added", "Rules removed", "Rules changed",
// "Instruments" and "Ruleset metadata", each entry a few indented lines.
// Entries that need a clinical safety review are marked with '!'.
std::string FormatDiffText(const BundleDiff& diff);

// The diff as one JSON object in protobuf's JSON mapping, ending in a
// newline.
std::string FormatDiffJson(const BundleDiff& diff);

// How two texts of one expression (a rule's condition, a define) differ.
struct ExpressionDelta {
  enum class Kind {
    kSame,        // the same tokens: only layout or comments differ
    kThresholds,  // only numeric literals differ; see `thresholds`
    kRewritten,   // anything else
  };
  Kind kind = Kind::kSame;
  std::vector<v1::ThresholdChange> thresholds;
};
ExpressionDelta CompareExpressions(std::string_view old_text,
                                   std::string_view new_text);

}  // namespace stepwise::engine

#endif  // STEPWISE_ENGINE_DIFF_H_
