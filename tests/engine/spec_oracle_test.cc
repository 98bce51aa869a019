// The default bundle against a second implementation of the clinical spec.
//
// tests/spec_oracle/spec_oracle.py decides from the clinical spec of the
// default ruleset alone: it was written from the spec's text without the
// engine or rules/ in view, in another language, with CEL's three-valued
// logic spelled out. Its outcomes for a seeded corpus of generated requests
// (generate.py: every instrument, items and totals, missing items, several
// administrations out of order, C-SSRS screens around the one-day window,
// flags, every step and the week thresholds, bad input) are stored beside
// the requests in testdata/spec_oracle/cases.jsonl. Each request must get,
// from Evaluate on rules/, the same action, recommended step, matched rules,
// undecided rules with the facts each lacked, referrals and warnings
// (tests/spec_oracle/corpus.h), or be bad input on both sides.
//
// A difference is either an engine or bundle bug or a reading of the spec on
// which the two disagree; tests/spec_oracle/README.md lists the readings.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/spec_oracle/corpus.h"

namespace stepwise::engine {
namespace {

using spec_oracle::OracleCase;

TEST(SpecOracleTest, TheBundleDecidesAsTheSecondImplementationDoes) {
  const std::filesystem::path source(STEPWISE_SOURCE_DIR);
  absl::StatusOr<LoadResult> loaded = LoadBundle(source / "rules");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->ok());
  const Bundle& bundle = *loaded->bundle;

  absl::StatusOr<std::vector<OracleCase>> cases = spec_oracle::LoadCorpus(
      source / "tests/engine/testdata/spec_oracle/cases.jsonl");
  ASSERT_TRUE(cases.ok()) << cases.status();
  // Large enough to matter.
  ASSERT_GE(cases->size(), 1000u);

  std::map<std::string, int> outcomes;  // by the oracle's action
  int differences = 0;
  for (const OracleCase& c : *cases) {
    const EvaluationResult r = Evaluate(bundle, c.request, absl::UnixEpoch());
    const std::string engine =
        r.ok() ? spec_oracle::Describe(r.decision) : spec_oracle::kBadInput;
    ++outcomes[c.bad_input ? spec_oracle::kBadInput
                           : c.expected.substr(0, c.expected.find(' '))];
    if (engine != c.expected) {
      ++differences;
      ADD_FAILURE() << c.name << "\n  engine: " << engine
                    << "\n  oracle: " << c.expected;
    }
  }
  EXPECT_EQ(differences, 0) << "of " << cases->size() << " requests";
  // Every outcome the spec has is exercised.
  for (const char* outcome : {"URGENT_SAFETY", "REFER", "STEP_UP", "STAY",
                              "STEP_DOWN", spec_oracle::kBadInput}) {
    EXPECT_GE(outcomes[outcome], 10) << outcome;
  }
}

}  // namespace
}  // namespace stepwise::engine
