// No input, however malformed, may crash the engine or read out of bounds:
// seeded, bounded streams of mangled bundles and hostile requests. Run under
// ASan/UBSan (scripts/test.sh --sanitize address) to make "no crash" mean
// "no invalid memory access and no undefined behaviour" too.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/engine.h"
#include "engine/testing.h"
#include "gtest/gtest.h"
#include "tests/engine/test_bundle.h"

namespace stepwise::engine {
namespace {

std::string Mangle(std::string text, std::mt19937& rng) {
  static const char kAlphabet[] =
      " \n\t:-{}[]'\"#&*!|>%@`,.0123456789abcxyz_()<=>\\";
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !text.empty(); ++e) {
    const size_t at = rng() % text.size();
    switch (rng() % 5) {
      case 0:
        text.erase(at, 1 + rng() % 8);
        break;
      case 1:
        text.insert(at, 1, kAlphabet[rng() % (sizeof(kAlphabet) - 1)]);
        break;
      case 2:
        text[at] = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
        break;
      case 3: {  // duplicate a slice
        const size_t len = std::min<size_t>(text.size() - at, 1 + rng() % 40);
        text.insert(rng() % text.size(), text.substr(at, len));
        break;
      }
      default:
        text.insert(at,
                    std::string(1 + rng() % 3, static_cast<char>(rng() % 256)));
        break;
    }
  }
  return text;
}

// Test cases for the base bundle, so that mangling reaches the test-file
// loader too: outcomes, facts (absent, has(), each type) and bad input.
constexpr char kBaseTests[] = R"(defaults:
  request: {subject_id: s, current_step: 2, weeks_at_step: 9, as_of: "2026-11-20T12:00:00Z"}
cases:
  - name: outcome
    request: {assessments: [{instrument: phq9, total: 12, administered_at: "2026-11-20T09:00:00Z"}]}
    expect: {action: STAY, step: 2, matched: [], warnings: 0}
  - name: facts
    request:
      assessments:
        - {instrument: phq9, total: 16, administered_at: "2026-10-20T12:00:00Z"}
        - {instrument: phq9, total: 12, administered_at: "2026-11-20T00:00:00Z"}
    expect:
      action: STAY
      step: 2
      matched: []
      facts: {phq9.total: 12, phq9.pct_change: -0.25, phq9.days_since: 0.5,
              has(baseline.phq9): true, gad7.total: null, phq9.item9: null}
  - name: bad input
    request: {assessments: [{instrument: phq9, total: 99, administered_at: "2026-11-20T09:00:00Z"}]}
    expect: {violations: ["assessments[0].total"]}
)";

TEST(RobustnessTest, MangledBundlesNeverCrashTheLoader) {
  std::mt19937 rng(7);
  BundleFiles base = testing::BaseFiles();
  base["tests/cases.yaml"] = kBaseTests;
  ASSERT_TRUE(CompileBundle(base).ok()) << "the unmangled bundle must load";
  int loaded = 0;
  for (int i = 0; i < 3000; ++i) {
    BundleFiles files = base;
    auto it = files.begin();
    std::advance(it, rng() % files.size());
    it->second = Mangle(it->second, rng);
    const LoadResult result = CompileBundle(files);
    if (result.ok()) {
      ++loaded;
      // Whatever loaded must run its own tests without trouble.
      (void)RunBundleTests(*result.bundle);
    } else {
      for (const Diagnostic& d : result.diagnostics) {
        EXPECT_FALSE(d.message.empty());
        EXPECT_GE(d.line, 0);
        EXPECT_GE(d.column, 0);
      }
    }
  }
  // Some mutations are harmless (a comment, a space): the loop must have
  // exercised both outcomes.
  EXPECT_GT(loaded, 0);
  EXPECT_LT(loaded, 3000);
}

TEST(RobustnessTest, HostileRequestsAreRejectedOrDecidedNeverCrash) {
  std::mt19937 rng(11);
  std::shared_ptr<const Bundle> bundle =
      testing::MustLoad(testing::BaseFiles());
  ASSERT_NE(bundle, nullptr);
  const char* const kInstruments[] = {"phq9", "gad7",  "cssrs", "",
                                      "PHQ9", "phq9 ", "x"};
  const char* const kItems[] = {
      "item1", "item9", "item0",  "item10",          "q1",    "q6",
      "q7",    "",      "item01", "item99999999999", "itemx", "item-1"};
  const int32_t kValues[] = {0,
                             1,
                             2,
                             3,
                             -1,
                             4,
                             std::numeric_limits<int32_t>::min(),
                             std::numeric_limits<int32_t>::max()};
  const int64_t kSeconds[] = {0,
                              1795608000,
                              -62135596800,
                              -62135596801,
                              253402300799,
                              253402300800,
                              std::numeric_limits<int64_t>::min(),
                              std::numeric_limits<int64_t>::max()};
  const double kWeeks[] = {0,
                           8,
                           -1,
                           1e308,
                           std::numeric_limits<double>::quiet_NaN(),
                           std::numeric_limits<double>::infinity()};
  int decided = 0;
  for (int i = 0; i < 20000; ++i) {
    v1::EvaluateRequest request;
    if (rng() % 8) request.set_subject_id("s");
    request.set_current_step(static_cast<int32_t>(rng() % 7) - 1);
    request.set_weeks_at_step(kWeeks[rng() % 6]);
    if (rng() % 4) {
      request.mutable_as_of()->set_seconds(rng() % 4 ? 1795608000
                                                     : kSeconds[rng() % 8]);
      request.mutable_as_of()->set_nanos(
          rng() % 8 ? 0 : static_cast<int32_t>(rng()));
    }
    if (rng() % 5 == 0) request.add_flags(rng() % 2 ? "red_flag" : "nope");
    const int n = static_cast<int>(rng() % 5);
    for (int a = 0; a < n; ++a) {
      v1::Assessment* assessment = request.add_assessments();
      assessment->set_instrument(kInstruments[rng() % 7]);
      const int items = static_cast<int>(rng() % 11);
      for (int k = 0; k < items; ++k) {
        (*assessment->mutable_items())[kItems[rng() % 12]] = kValues[rng() % 8];
      }
      if (rng() % 3 == 0) {
        // In 64 bits and saturated: kValues holds the int32 limits.
        const int64_t total =
            int64_t{kValues[rng() % 8]} + static_cast<int64_t>(rng() % 30);
        assessment->set_total(static_cast<int32_t>(
            std::clamp<int64_t>(total, std::numeric_limits<int32_t>::min(),
                                std::numeric_limits<int32_t>::max())));
      }
      if (rng() % 8) {
        assessment->mutable_administered_at()->set_seconds(
            rng() % 4 ? 1795600000 - static_cast<int64_t>(rng() % 3) * 86400
                      : kSeconds[rng() % 8]);
        assessment->mutable_administered_at()->set_nanos(
            rng() % 8 ? 0 : static_cast<int32_t>(rng()));
      }
    }
    const EvaluationResult result =
        Evaluate(*bundle, request, absl::FromUnixSeconds(1795608000));
    if (result.ok()) {
      ++decided;
      EXPECT_NE(result.decision.action(), v1::ACTION_UNSPECIFIED);
      EXPECT_GE(result.decision.recommended_step(), 1);
      EXPECT_LE(result.decision.recommended_step(), bundle->max_step());
    } else {
      for (const FieldViolation& v : result.violations)
        EXPECT_FALSE(v.field.empty());
    }
  }
  EXPECT_GT(decided, 100);
}

}  // namespace
}  // namespace stepwise::engine
