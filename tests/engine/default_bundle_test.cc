// Checks on the default bundle in rules/: its own test cases pass with full
// rule coverage, and the invariants of the clinical spec ("Invariants the
// bundle must keep") hold over a large seeded set of generated requests and
// over exhaustive sweeps where those are cheap.
//
// The generator knows the instruments' shapes (item names and ranges) so that
// it produces valid requests; it knows no rule threshold. The only numbers in
// the checks are the ones the invariants themselves state (item 9 >= 1, one
// day, C-SSRS q4/q5 = 1 or q6 = 2, one point more on one item).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/engine.h"
#include "engine/testing.h"
#include "gtest/gtest.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::engine {
namespace {

// The severity order of the spec, most severe last.
int Rank(v1::Action action) {
  switch (action) {
    case v1::STEP_DOWN:
      return 1;
    case v1::STAY:
      return 2;
    case v1::STEP_UP:
      return 3;
    case v1::REFER:
      return 4;
    case v1::URGENT_SAFETY:
      return 5;
    default:
      return 0;
  }
}

std::shared_ptr<const Bundle> LoadDefaultBundle() {
  const std::filesystem::path dir =
      std::filesystem::path(STEPWISE_SOURCE_DIR) / "rules";
  absl::StatusOr<LoadResult> loaded = LoadBundle(dir);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return nullptr;
  for (const Diagnostic& d : loaded->diagnostics) {
    ADD_FAILURE() << d.file << ":" << d.line << ":" << d.column << ": "
                  << d.message;
  }
  return loaded->bundle;
}

// One bundle for the whole binary: compiled once, shared read-only.
const Bundle& DefaultBundle() {
  static const std::shared_ptr<const Bundle> bundle = LoadDefaultBundle();
  if (bundle == nullptr) {
    ADD_FAILURE() << "the default bundle did not load";
    std::abort();
  }
  return *bundle;
}

const absl::Time kAsOf = absl::FromCivil(
    absl::CivilSecond(2026, 11, 20, 12, 0, 0), absl::UTCTimeZone());

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

bool Matched(const v1::Decision& decision, const std::string& rule_id) {
  for (const v1::MatchedRule& rule : decision.matched_rules()) {
    if (rule.rule_id() == rule_id) return true;
  }
  return false;
}

std::string Describe(const v1::EvaluateRequest& request,
                     const v1::Decision& decision) {
  std::vector<std::string> matched;
  for (const v1::MatchedRule& rule : decision.matched_rules()) {
    matched.push_back(rule.rule_id());
  }
  return absl::StrCat("request: ", request.ShortDebugString(),
                      "\n  action: ", v1::Action_Name(decision.action()),
                      " step ", decision.recommended_step(), " matched [",
                      absl::StrJoin(matched, ", "), "]");
}

// ---------------------------------------------------------------------------
// The bundle's own tests.

TEST(DefaultBundleTest, LoadsWithTheSpecsNameVersionStepsAndRules) {
  const Bundle& bundle = DefaultBundle();
  EXPECT_EQ(bundle.name(), "persistent-physical-symptoms");
  EXPECT_EQ(bundle.version(), "2026.11.0");
  EXPECT_FALSE(bundle.approved_by().empty());
  ASSERT_TRUE(bundle.effective_from().has_value());
  EXPECT_LE(*bundle.effective_from(), kAsOf);
  EXPECT_EQ(bundle.max_step(), 4);
  EXPECT_EQ(bundle.steps().at(1), "Active monitoring and basic care");
  EXPECT_EQ(bundle.steps().at(2), "Low-intensity psychological care");
  EXPECT_EQ(bundle.steps().at(3), "High-intensity care in primary care");
  EXPECT_EQ(bundle.steps().at(4), "Specialist care");
  std::vector<std::string> ids;
  for (const RuleSummary& rule : bundle.rules()) ids.push_back(rule.id);
  // The spec's rules, in the spec's order.
  EXPECT_EQ(ids, (std::vector<std::string>{
                     "SAFETY-01", "SAFETY-02", "SAFETY-03", "SAFETY-04",
                     "SAFETY-05", "DATA-01", "MED-01", "DET-01", "SEV-01",
                     "NR-01", "NR-02", "GAD-01", "FUNC-01", "REF-01", "REF-02",
                     "PSS-01", "PSS-02", "PSS-03", "REM-01"}));
}

TEST(DefaultBundleTest, OwnTestsPassWithFullRuleCoverage) {
  const Bundle& bundle = DefaultBundle();
  ASSERT_FALSE(bundle.tests().empty());
  const TestReport report = RunBundleTests(bundle);
  for (const CaseResult& result : report.cases) {
    EXPECT_TRUE(result.passed)
        << result.file << ":" << result.line << ": " << result.name << "\n"
        << result.diff;
  }
  EXPECT_EQ(report.failed, 0);
  EXPECT_EQ(report.passed, static_cast<int>(bundle.tests().size()));
  EXPECT_EQ(report.coverage_percent(), 100.0)
      << "never fired: " << absl::StrJoin(report.uncovered(), ", ");
  EXPECT_TRUE(report.uncovered().empty());
}

// Every rule reports a citation; a follow-up that calls a number a local
// default is matched by a source that says so.
TEST(DefaultBundleTest, EveryMatchedRuleCarriesItsSource) {
  const Bundle& bundle = DefaultBundle();
  std::map<std::string, v1::MatchedRule> seen;
  for (const TestCase& test : bundle.tests()) {
    if (!test.violations.empty()) continue;
    const EvaluationResult result = Evaluate(bundle, test.request, kAsOf);
    ASSERT_TRUE(result.ok()) << test.name;
    for (const v1::MatchedRule& rule : result.decision.matched_rules()) {
      seen.emplace(rule.rule_id(), rule);
    }
  }
  EXPECT_EQ(seen.size(), bundle.rules().size());
  for (const auto& [id, rule] : seen) {
    EXPECT_NE(rule.source().find('['), std::string::npos) << id;
    EXPECT_FALSE(rule.rationale().empty()) << id;
    EXPECT_FALSE(rule.follow_up().empty()) << id;
    if (rule.follow_up().find("local default") != std::string::npos) {
      EXPECT_NE(rule.source().find("*local default*"), std::string::npos) << id;
    }
  }
}

// ---------------------------------------------------------------------------
// Generated requests.

struct Shape {
  const char* id;
  std::vector<std::string> items;
  int item_max;  // every item is 0..item_max (C-SSRS q6 aside)
};

std::vector<std::string> Numbered(int n) {
  std::vector<std::string> names;
  for (int i = 1; i <= n; ++i) names.push_back(absl::StrCat("item", i));
  return names;
}

// Instrument shapes as the bundle's instrument files declare them.
const Shape& Phq9() {
  static const Shape shape{"phq9", Numbered(9), 3};
  return shape;
}

const std::vector<Shape>& OtherScored() {
  static const std::vector<Shape> shapes = {
      {"gad7", Numbered(7), 3}, {"phq15", Numbered(15), 2},
      {"sss8", Numbered(8), 4}, {"ssd12", Numbered(12), 4},
      {"wi7", Numbered(7), 1},  {"wsas", Numbered(5), 8},
  };
  return shapes;
}

// What the invariant checks need to know about a generated request, kept
// beside it rather than recomputed from it.
struct Generated {
  v1::EvaluateRequest request;
  // Index in request.assessments of the current (latest) PHQ-9, or -1.
  int current_phq9 = -1;
  absl::Time current_phq9_at;
  // Index of the latest C-SSRS, or -1.
  int current_cssrs = -1;
  absl::Time current_cssrs_at;
};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  Generated Next() {
    Generated g;
    v1::EvaluateRequest& r = g.request;
    r.set_subject_id("generated");
    SetTime(kAsOf, r.mutable_as_of());
    r.set_current_step(Int(1, 4));
    r.set_weeks_at_step(Weeks());
    if (Chance(0.05)) r.add_flags("clinician_risk_concern");
    if (Chance(0.1)) r.add_flags("red_flag");
    if (Chance(0.1)) r.add_flags("new_or_changed_physical_symptoms");

    // PHQ-9: 0-3 administrations, two weeks apart, the current one between
    // 3 and 72 hours before as_of.
    const absl::Time phq9_at = kAsOf - absl::Minutes(Int(180, 72 * 60));
    const int phq9_count = Pick({0.15, 0.35, 0.2, 0.3});
    const bool remission_shaped = phq9_count == 3 && Chance(0.4);
    for (int k = phq9_count - 1; k >= 0; --k) {
      const absl::Time at = phq9_at - absl::Hours(24 * 14 * k);
      v1::Assessment* a = r.add_assessments();
      a->set_instrument("phq9");
      SetTime(at, a->mutable_administered_at());
      if (k == 0) {
        g.current_phq9 = r.assessments_size() - 1;
        g.current_phq9_at = at;
        if (Chance(0.08)) {
          a->set_total(Int(0, 27));
        } else {
          Phq9Items(remission_shaped, a);
          if (a->items().empty()) a->set_total(Int(0, 27));
        }
      } else if (remission_shaped) {
        a->set_total(k == 2 ? Int(8, 27) : Int(0, 5));
      } else if (Chance(0.5)) {
        a->set_total(Int(0, 27));
      } else {
        FillItems(Phq9(), 0.0, a);
      }
    }

    // C-SSRS: often none; otherwise the latest one lands around the one-day
    // edge before the current PHQ-9 (or anywhere, with no PHQ-9).
    const int cssrs_count = Pick({0.45, 0.4, 0.15});
    if (cssrs_count > 0) {
      absl::Time latest;
      if (g.current_phq9 >= 0) {
        static const absl::Duration kOffsets[] = {
            -absl::Hours(72),
            -absl::Hours(24) - absl::Minutes(1),
            -absl::Hours(24) - absl::Seconds(1),
            -absl::Hours(24),
            -absl::Hours(24) + absl::Seconds(1),
            -absl::Hours(23),
            -absl::Hours(1),
            absl::ZeroDuration(),
            absl::Hours(1),
        };
        latest = g.current_phq9_at +
                 kOffsets[Int(0, static_cast<int>(std::size(kOffsets)) - 1)];
        if (latest > kAsOf) latest = kAsOf;
      } else {
        latest = kAsOf - absl::Minutes(Int(0, 10 * 24 * 60));
      }
      for (int k = cssrs_count - 1; k >= 0; --k) {
        const absl::Time at = latest - absl::Hours(24 * 7 * k);
        v1::Assessment* a = r.add_assessments();
        a->set_instrument("cssrs");
        SetTime(at, a->mutable_administered_at());
        CssrsItems(a);
        if (k == 0) {
          g.current_cssrs = r.assessments_size() - 1;
          g.current_cssrs_at = at;
        }
      }
    }

    for (const Shape& shape : OtherScored()) {
      const int count = Pick({0.5, 0.25, 0.25});
      const absl::Time current = kAsOf - absl::Minutes(Int(10, 48 * 60));
      for (int k = count - 1; k >= 0; --k) {
        v1::Assessment* a = r.add_assessments();
        a->set_instrument(shape.id);
        SetTime(current - absl::Hours(24 * 21 * k),
                a->mutable_administered_at());
        if (Chance(0.5)) {
          a->set_total(
              Int(0, shape.item_max * static_cast<int>(shape.items.size())));
        } else {
          FillItems(shape, 0.03, a);
        }
        // An administration needs items or a total.
        if (a->items().empty() && !a->has_total()) a->set_total(0);
      }
    }
    return g;
  }

 private:
  int Int(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  int Pick(std::initializer_list<double> weights) {
    return std::discrete_distribution<int>(weights)(rng_);
  }

  // Weeks at step: mostly on or beside the round numbers rules compare with,
  // sometimes anywhere in 0..20.
  double Weeks() {
    if (Chance(0.3)) return Int(0, 200) / 10.0;
    const double whole = Int(0, 16);
    switch (Int(0, 2)) {
      case 0:
        return whole;
      case 1:
        return std::max(0.0, whole - 0.1);
      default:
        return whole + 0.1;
    }
  }

  void FillItems(const Shape& shape, double p_missing, v1::Assessment* a) {
    for (const std::string& name : shape.items) {
      if (Chance(p_missing)) continue;
      (*a->mutable_items())[name] = Int(0, shape.item_max);
    }
  }

  void Phq9Items(bool low, v1::Assessment* a) {
    const double p_missing = Chance(0.2) ? 0.15 : 0.0;
    for (const std::string& name : Phq9().items) {
      if (Chance(p_missing)) continue;
      int value;
      if (name == "item9") {
        value = Chance(0.55) ? 0 : Int(1, 3);
      } else if (low) {
        value = Chance(0.7) ? 0 : 1;
      } else {
        value = Int(0, 3);
      }
      (*a->mutable_items())[name] = value;
    }
  }

  void CssrsItems(v1::Assessment* a) {
    auto& items = *a->mutable_items();
    items["q1"] = Chance(0.35) ? 1 : 0;
    items["q2"] = Chance(0.35) ? 1 : 0;
    if (items["q2"] == 1 || Chance(0.4)) {
      // Asked: with q2 = 0 they are all "no".
      const bool asked_after_yes = items["q2"] == 1;
      items["q3"] = asked_after_yes && Chance(0.3) ? 1 : 0;
      items["q4"] = asked_after_yes && Chance(0.15) ? 1 : 0;
      items["q5"] = asked_after_yes && Chance(0.15) ? 1 : 0;
    }
    items["q6"] = Pick({0.8, 0.1, 0.1});
  }

  std::mt19937_64 rng_;
};

// Invariant 1: a current PHQ-9 with item9 >= 1 and no C-SSRS from at most one
// day before it or any time after it -> URGENT_SAFETY.
bool Invariant1Applies(const Generated& g) {
  if (g.current_phq9 < 0) return false;
  const auto& items = g.request.assessments(g.current_phq9).items();
  const auto item9 = items.find("item9");
  if (item9 == items.end() || item9->second < 1) return false;
  return g.current_cssrs < 0 ||
         g.current_cssrs_at < g.current_phq9_at - absl::Hours(24);
}

// Invariant 2: a (current) C-SSRS with q4 or q5 = 1, or q6 = 2 ->
// URGENT_SAFETY. Skipped q4/q5 count as 0.
bool Invariant2Applies(const Generated& g) {
  if (g.current_cssrs < 0) return false;
  const auto& items = g.request.assessments(g.current_cssrs).items();
  auto value = [&](const char* name) {
    const auto it = items.find(name);
    return it == items.end() ? 0 : it->second;
  };
  return value("q4") == 1 || value("q5") == 1 || value("q6") == 2;
}

// Invariant 3: STEP_DOWN never wins while any SAFETY-* rule or DATA-01
// matched.
bool SafetyOrDataMatched(const v1::Decision& decision) {
  for (const v1::MatchedRule& rule : decision.matched_rules()) {
    if (rule.rule_id().rfind("SAFETY-", 0) == 0 ||
        rule.rule_id() == "DATA-01") {
      return true;
    }
  }
  return false;
}

constexpr int kGeneratedRequests = 6000;
constexpr uint64_t kSeed = 0x5eed2026;

TEST(DefaultBundleInvariantsTest, HoldOverGeneratedRequests) {
  const Bundle& bundle = DefaultBundle();
  Generator generator(kSeed);
  int invariant1_cases = 0;
  int invariant2_cases = 0;
  int remission_with_safety_or_data = 0;
  int step_downs = 0;
  int raised = 0;
  std::map<v1::Action, int> actions;

  for (int n = 0; n < kGeneratedRequests; ++n) {
    const Generated g = generator.Next();
    const EvaluationResult result = Evaluate(bundle, g.request, kAsOf);
    ASSERT_TRUE(result.ok())
        << "generated request rejected: " << result.violations.front().field
        << ": " << result.violations.front().description << "\n"
        << g.request.ShortDebugString();
    const v1::Decision& decision = result.decision;
    ++actions[decision.action()];

    if (Invariant1Applies(g)) {
      ++invariant1_cases;
      EXPECT_EQ(decision.action(), v1::URGENT_SAFETY)
          << "invariant 1\n"
          << Describe(g.request, decision);
    }
    if (Invariant2Applies(g)) {
      ++invariant2_cases;
      EXPECT_EQ(decision.action(), v1::URGENT_SAFETY)
          << "invariant 2\n"
          << Describe(g.request, decision);
    }
    if (SafetyOrDataMatched(decision)) {
      EXPECT_NE(decision.action(), v1::STEP_DOWN)
          << "invariant 3\n"
          << Describe(g.request, decision);
      if (Matched(decision, "REM-01")) ++remission_with_safety_or_data;
    }
    if (decision.action() == v1::STEP_DOWN) ++step_downs;

    // Invariant 4: one point more on any one item of the current PHQ-9, all
    // else equal, never makes the action less severe.
    if (g.current_phq9 < 0) continue;
    const v1::Assessment& current = g.request.assessments(g.current_phq9);
    if (current.has_total()) continue;  // a total sent must agree with items
    for (const auto& [name, value] : current.items()) {
      if (value >= Phq9().item_max) continue;
      v1::EvaluateRequest higher = g.request;
      (*higher.mutable_assessments(g.current_phq9)->mutable_items())[name] =
          value + 1;
      const EvaluationResult after = Evaluate(bundle, higher, kAsOf);
      ASSERT_TRUE(after.ok()) << higher.ShortDebugString();
      ++raised;
      EXPECT_GE(Rank(after.decision.action()), Rank(decision.action()))
          << "invariant 4: raising " << name << " to " << value + 1 << "\n"
          << Describe(g.request, decision) << "\n"
          << Describe(higher, after.decision);
    }
  }

  // The checks above must not be vacuous: the generator reaches every case
  // the invariants speak about, and every action.
  EXPECT_GT(invariant1_cases, 100);
  EXPECT_GT(invariant2_cases, 100);
  EXPECT_GT(remission_with_safety_or_data, 5);
  EXPECT_GT(step_downs, 5);
  EXPECT_GT(raised, 10000);
  for (v1::Action action :
       {v1::STEP_DOWN, v1::STAY, v1::STEP_UP, v1::REFER, v1::URGENT_SAFETY}) {
    EXPECT_GT(actions[action], 5) << v1::Action_Name(action);
  }
}

// ---------------------------------------------------------------------------
// Exhaustive sweeps.

v1::EvaluateRequest Context(int step, double weeks) {
  v1::EvaluateRequest r;
  r.set_subject_id("sweep");
  SetTime(kAsOf, r.mutable_as_of());
  r.set_current_step(step);
  r.set_weeks_at_step(weeks);
  return r;
}

v1::Assessment* AddTotal(v1::EvaluateRequest* r, const std::string& instrument,
                         int total, absl::Time at) {
  v1::Assessment* a = r->add_assessments();
  a->set_instrument(instrument);
  a->set_total(total);
  SetTime(at, a->mutable_administered_at());
  return a;
}

// Invariant 4 over every PHQ-9 item vector (4^9 of them) in contexts where
// many rules turn on the PHQ-9: each vector is evaluated once and compared
// with each of its one-point-higher neighbours.
TEST(DefaultBundleInvariantsTest, Phq9MonotoneOverEveryItemVector) {
  const Bundle& bundle = DefaultBundle();
  const absl::Time now = kAsOf - absl::Hours(3);
  struct Sweep {
    const char* label;
    v1::EvaluateRequest context;
  };
  std::vector<Sweep> sweeps;
  {
    // Step 2 at 8 weeks after a PHQ-9 of 14 and a low previous score:
    // remission, non-response, severity, deterioration and item 9 all turn.
    v1::EvaluateRequest r = Context(2, 8.0);
    AddTotal(&r, "phq9", 14, now - absl::Hours(24 * 56));
    AddTotal(&r, "phq9", 4, now - absl::Hours(24 * 14));
    sweeps.push_back({"step 2, week 8, PHQ-9 14 -> 4 -> x", r});
  }
  {
    // Step 3 at 12 weeks after a PHQ-9 of 16 and a low previous score, with
    // a marked impairment and a negative C-SSRS exactly one day before (item
    // 9 answered): step down, stay, non-response, referral all turn.
    v1::EvaluateRequest r = Context(3, 12.0);
    AddTotal(&r, "phq9", 16, now - absl::Hours(24 * 84));
    AddTotal(&r, "phq9", 4, now - absl::Hours(24 * 14));
    AddTotal(&r, "wsas", 24, now);
    v1::Assessment* c = r.add_assessments();
    c->set_instrument("cssrs");
    (*c->mutable_items())["q1"] = 0;
    (*c->mutable_items())["q2"] = 0;
    (*c->mutable_items())["q6"] = 0;
    SetTime(now - absl::Hours(24), c->mutable_administered_at());
    sweeps.push_back(
        {"step 3, week 12, PHQ-9 16 -> 4 -> x, WSAS 24, C-SSRS 1 day before",
         r});
  }

  constexpr int kItems = 9;
  constexpr int kValues = 4;        // 0..3
  constexpr int kVectors = 262144;  // 4^9
  for (const Sweep& sweep : sweeps) {
    SCOPED_TRACE(sweep.label);
    std::vector<uint8_t> rank(kVectors);
    std::set<int> ranks_seen;
    v1::EvaluateRequest r = sweep.context;
    v1::Assessment* current = r.add_assessments();
    current->set_instrument("phq9");
    SetTime(now, current->mutable_administered_at());
    auto& items = *current->mutable_items();
    for (int code = 0; code < kVectors; ++code) {
      int rest = code;
      for (int i = 0; i < kItems; ++i) {
        items[absl::StrCat("item", i + 1)] = rest % kValues;
        rest /= kValues;
      }
      const EvaluationResult result = Evaluate(bundle, r, kAsOf);
      ASSERT_TRUE(result.ok()) << r.ShortDebugString();
      rank[code] = static_cast<uint8_t>(Rank(result.decision.action()));
      ranks_seen.insert(rank[code]);
    }
    int failures = 0;
    for (int code = 0; code < kVectors && failures < 10; ++code) {
      int place = 1;
      for (int i = 0; i < kItems; ++i, place *= kValues) {
        if ((code / place) % kValues == kValues - 1) continue;
        if (rank[code + place] < rank[code]) {
          ++failures;
          ADD_FAILURE() << "raising item" << i + 1 << " of item vector code "
                        << code << " lowers the action rank from "
                        << int{rank[code]} << " to " << int{rank[code + place]};
        }
      }
    }
    // Not vacuous: the sweep crosses at least four actions.
    EXPECT_GE(ranks_seen.size(), 4u);
  }
}

// Invariants 1 and 2 over every C-SSRS answer pattern (with and without the
// skip), every PHQ-9 item 9 value and C-SSRS times on both sides of the
// one-day edge, at every step.
TEST(DefaultBundleInvariantsTest, SafetyOverEveryCssrsPatternAndTiming) {
  const Bundle& bundle = DefaultBundle();
  const absl::Time phq9_at = kAsOf - absl::Hours(3);
  const std::vector<std::optional<absl::Duration>> offsets = {
      std::nullopt,  // no C-SSRS
      -absl::Hours(72),
      -absl::Hours(24) - absl::Minutes(1),
      -absl::Hours(24) - absl::Seconds(1),
      -absl::Hours(24),
      -absl::Hours(24) + absl::Seconds(1),
      -absl::Hours(1),
      absl::ZeroDuration(),
      absl::Hours(2),
  };
  int urgent_by_invariant1 = 0;
  int urgent_by_invariant2 = 0;
  int checked = 0;
  for (int step = 1; step <= 4; ++step) {
    for (int item9 = 0; item9 <= 3; ++item9) {
      for (const auto& offset : offsets) {
        // C-SSRS patterns: q1, q2 in 0..1; q3..q5 in 0..1 or skipped (only
        // when q2 = 0); q6 in 0..2. One pattern stands for "no C-SSRS".
        const int patterns = offset.has_value() ? 2 * 2 * 9 * 3 : 1;
        for (int p = 0; p < patterns; ++p) {
          v1::EvaluateRequest r = Context(step, 5.0);
          v1::Assessment* phq9 = r.add_assessments();
          phq9->set_instrument("phq9");
          SetTime(phq9_at, phq9->mutable_administered_at());
          for (int i = 1; i <= 8; ++i) {
            (*phq9->mutable_items())[absl::StrCat("item", i)] = 1;
          }
          (*phq9->mutable_items())["item9"] = item9;
          bool high_risk = false;
          if (offset.has_value()) {
            const int q1 = p % 2;
            const int q2 = (p / 2) % 2;
            const int middle = (p / 4) % 9;  // 0..7: q3..q5 bits; 8: skipped
            const int q6 = (p / 36) % 3;
            // The skip needs q2 = 0, and with q2 = 0 the screener does not
            // ask q3-q5, so it has no "yes" there to record.
            if (middle == 8 && q2 == 1) continue;
            if (q2 == 0 && middle != 0 && middle != 8) continue;
            v1::Assessment* c = r.add_assessments();
            c->set_instrument("cssrs");
            SetTime(phq9_at + *offset, c->mutable_administered_at());
            auto& items = *c->mutable_items();
            items["q1"] = q1;
            items["q2"] = q2;
            items["q6"] = q6;
            if (middle < 8) {
              items["q3"] = middle & 1;
              items["q4"] = (middle >> 1) & 1;
              items["q5"] = (middle >> 2) & 1;
            }
            high_risk =
                (middle < 8 && ((middle >> 1) & 1 || (middle >> 2) & 1)) ||
                q6 == 2;
          }
          const EvaluationResult result = Evaluate(bundle, r, kAsOf);
          ASSERT_TRUE(result.ok()) << r.ShortDebugString();
          ++checked;
          const bool unanswered_item9 =
              item9 >= 1 && (!offset.has_value() || *offset < -absl::Hours(24));
          if (unanswered_item9) {
            ++urgent_by_invariant1;
            EXPECT_EQ(result.decision.action(), v1::URGENT_SAFETY)
                << "invariant 1\n"
                << Describe(r, result.decision);
          }
          if (high_risk) {
            ++urgent_by_invariant2;
            EXPECT_EQ(result.decision.action(), v1::URGENT_SAFETY)
                << "invariant 2\n"
                << Describe(r, result.decision);
          }
          if (!unanswered_item9 && !high_risk) {
            // Neither invariant applies and no flag is set: whatever the
            // rules say, it is not an emergency (the item-9 rule is answered
            // by a C-SSRS within the window).
            EXPECT_NE(result.decision.action(), v1::URGENT_SAFETY)
                << Describe(r, result.decision);
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 3000);
  EXPECT_GT(urgent_by_invariant1, 100);
  EXPECT_GT(urgent_by_invariant2, 100);
}

}  // namespace
}  // namespace stepwise::engine
