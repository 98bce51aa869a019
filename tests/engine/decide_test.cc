// Decide (every condition as one expr::Batch) against DecideOneByOne (each
// condition through Program::Evaluate) on real bundles, over fact tables in
// which every declared fact is at random absent, an error, of another type
// than declared, or a value in or beyond its declared range. Both must give
// the same action, step, cap and the same matched and undecided rules.
#include "engine/decide.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/bundle.h"
#include "engine/compiled_bundle.h"
#include "engine/engine.h"
#include "engine/facts.h"

namespace stepwise::engine {
namespace {

using expr::Kind;
using expr::Value;

std::shared_ptr<const Bundle> Load(const std::string& dir) {
  absl::StatusOr<LoadResult> loaded = LoadBundle(dir);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok() || !loaded->ok()) return nullptr;
  return loaded->bundle;
}

class Filler {
 public:
  explicit Filler(uint64_t seed) : rng_(seed) {}

  void Fill(const CompiledBundle& b, FactTable* facts) {
    facts->Reset(b);
    Value* slots = facts->mutable_slots();
    for (const std::string& path : b.decls.AllPaths()) {
      const expr::FactDecl* decl = b.decls.FindFact(path);
      if (decl == nullptr) {  // a group: present or not
        slots[*b.decls.FindGroup(path)] = Value::Bool(Pick(2) == 0);
        continue;
      }
      if (decl->type.kind == Kind::kList) continue;  // flags stay empty
      Value v;
      switch (decl->type.kind) {
        case Kind::kInt:
          v = Value::Int(Int(*decl));
          break;
        case Kind::kDouble:
          v = Value::Double(Double(*decl));
          break;
        case Kind::kBool:
          v = Value::Bool(Pick(2) == 0);
          break;
        case Kind::kString:
          v = decl->allowed_values.empty()
                  ? Value::Absent()
                  : Value::String(&decl->allowed_values[Pick(
                        static_cast<int>(decl->allowed_values.size()))]);
          break;
        default:
          break;
      }
      slots[decl->slot] = Odd(v);
    }
  }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % n); }

  int64_t Int(const expr::FactDecl& d) {
    const int64_t lo = d.min ? static_cast<int64_t>(*d.min) : -50;
    const int64_t hi = d.max ? static_cast<int64_t>(*d.max) : 50;
    switch (Pick(10)) {
      case 0:
        return std::numeric_limits<int64_t>::max();
      case 1:
        return std::numeric_limits<int64_t>::min();
      case 2:
        return lo - 1;
      case 3:
        return hi + 1;
      default:
        return lo + Pick(static_cast<int>(hi - lo + 1));
    }
  }

  double Double(const expr::FactDecl& d) {
    switch (Pick(12)) {
      case 0:
        return NAN;
      case 1:
        return INFINITY;
      case 2:
        return -INFINITY;
      case 3:
        return -0.0;
      case 4:
        return -0.5;
      case 5:
        return -0.25;
      case 6:
        return std::nextafter(-0.5, 0.0);
      default:
        return (Pick(800) - 300) / 16.0;
    }
  }

  Value Odd(Value v) {
    switch (Pick(16)) {
      case 0:
      case 1:
      case 2:
      case 3:
        return Value::Absent();
      case 4:
        return Value::Error(expr::ErrorCode::kDivisionByZero);
      case 5:
        return v.tag == expr::Tag::kInt ? Value::Double(2.5) : Value::Int(3);
      default:
        return v;
    }
  }

  std::mt19937_64 rng_;
};

void ExpectSame(const CompiledBundle& b, uint64_t seed, int tables) {
  Filler filler(seed);
  FactTable facts(b);
  CoreDecision batch;
  CoreDecision reference;
  for (int t = 0; t < tables; ++t) {
    filler.Fill(b, &facts);
    for (int current = 1; current <= b.max_step; ++current) {
      Decide(b, facts.slots(), current, &batch);
      DecideOneByOne(b, facts.slots(), current, &reference);
      ASSERT_EQ(batch.action, reference.action);
      ASSERT_EQ(batch.step, reference.step);
      ASSERT_EQ(batch.cap, reference.cap);
      ASSERT_EQ(
          std::vector<uint32_t>(batch.matched.begin(), batch.matched.end()),
          std::vector<uint32_t>(reference.matched.begin(),
                                reference.matched.end()));
      ASSERT_EQ(
          std::vector<uint32_t>(batch.undecided.begin(), batch.undecided.end()),
          std::vector<uint32_t>(reference.undecided.begin(),
                                reference.undecided.end()));
    }
  }
}

TEST(DecideTest, BatchAgreesWithOneByOneOnTheDefaultBundle) {
  const auto bundle =
      Load((std::filesystem::path(STEPWISE_SOURCE_DIR) / "rules").string());
  ASSERT_NE(bundle, nullptr);
  ExpectSame(bundle->compiled(), 1, 20000);
}

TEST(DecideTest, BatchAgreesWithOneByOneOnTheTestBundle) {
  const auto bundle = Load((std::filesystem::path(STEPWISE_SOURCE_DIR) /
                            "tests/engine/testdata/base")
                               .string());
  ASSERT_NE(bundle, nullptr);
  ExpectSame(bundle->compiled(), 2, 20000);
}

// A generated ruleset of more rules than one chunk holds (and than a
// RuleList holds inline): comparisons with one to several breakpoints per
// fact, nested chains and their negations, has() and bool facts, every
// action, with and without a target step. Constants stay inside the facts'
// declared ranges, where the linter accepts every comparison.
std::string GeneratedRuleset(uint64_t seed, int rules) {
  std::mt19937_64 rng(seed);
  const auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const auto leaf = [&]() -> std::string {
    const char* const rel[] = {"<", "<=", ">", ">=", "==", "!="};
    switch (pick(9)) {
      case 0:
        return absl::StrCat("phq9.total ", rel[pick(6)], " ", 1 + pick(26));
      case 1:
        return absl::StrCat("gad7.total ", rel[pick(6)], " ", 1 + pick(20));
      case 2:
        return absl::StrCat("phq9.item9 ", rel[pick(6)], " ", 1 + pick(2));
      case 3:
        return absl::StrCat("current_step ", rel[pick(6)], " ", 2 + pick(2));
      case 4:
        return absl::StrCat("weeks_at_step ", rel[pick(6)], " ", 1 + pick(15),
                            ".", pick(2) * 5);
      case 5:
        return absl::StrCat("phq9.pct_change ", rel[pick(6)], " -0.", pick(9));
      case 6:
        return absl::StrCat("gad7.pct_change ", rel[pick(6)], " -0.", pick(9),
                            "5");
      case 7:
        return pick(2) == 0 ? "has(cssrs)" : "has(phq15.total)";
      default:
        return "phq9.reliable_deterioration";
    }
  };
  const auto chain = [&](const char* op, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      absl::StrAppend(&out, i > 0 ? op : "", pick(5) == 0 ? "!" : "", "(",
                      leaf(), ")");
    }
    return out;
  };
  const char* const actions[] = {"URGENT_SAFETY", "REFER", "STEP_UP", "STAY",
                                 "STEP_DOWN"};
  std::string text = R"(ruleset: generated
version: "1"
steps: {1: one, 2: two, 3: three, 4: four}
rules:
)";
  for (int k = 0; k < rules; ++k) {
    const char* root = pick(3) == 0 ? " || " : " && ";
    std::string when = chain(root, 1 + pick(3));
    for (int c = pick(3); c > 0; --c) {
      absl::StrAppend(
          &when, root, pick(3) == 0 ? "!" : "", "(",
          chain(std::string(root) == " && " ? " || " : " && ", 2 + pick(2)),
          ")");
    }
    const std::string action = actions[pick(5)];
    absl::StrAppend(&text, "  - id: G", k, "\n    title: t\n    when: '", when,
                    "'\n    action: ", action, "\n");
    if (action == "REFER") {
      absl::StrAppend(&text, "    refer_to: specialist\n");
    }
    if ((action == "REFER" || action == "STEP_UP" || action == "STEP_DOWN") &&
        pick(3) == 0) {
      absl::StrAppend(&text, "    to_step: ", 1 + pick(4), "\n");
    }
    absl::StrAppend(&text,
                    "    rationale: r\n    follow_up: f\n    source: s\n");
  }
  absl::StrAppend(&text, "default: {action: STAY, rationale: r}\n");
  return text;
}

TEST(DecideTest, BatchAgreesWithOneByOneOnGeneratedBundlesOfManyChunks) {
  absl::StatusOr<BundleFiles> instruments = ReadBundleFiles(
      (std::filesystem::path(STEPWISE_SOURCE_DIR) / "rules").string());
  ASSERT_TRUE(instruments.ok()) << instruments.status();
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    BundleFiles files;
    for (const auto& [path, text] : *instruments) {
      if (path.rfind("instruments/", 0) == 0) files[path] = text;
    }
    files["ruleset.yaml"] = GeneratedRuleset(seed, 60 + 40 * seed);
    const LoadResult loaded = CompileBundle(files);
    ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
    const CompiledBundle& b = loaded.bundle->compiled();
    ASSERT_GT(b.decide_plan.batch->chunk_count(), 1u);
    ExpectSame(b, 100 + seed, 3000);
  }
}

// Bundles of one chunk take the hit policy's step from tables (decide.cc,
// CombineByTable) instead of Combine's loop: every action, with and without
// a target step, against the reference at every current step.
TEST(DecideTest, BatchAgreesWithOneByOneOnGeneratedBundlesOfOneChunk) {
  absl::StatusOr<BundleFiles> instruments = ReadBundleFiles(
      (std::filesystem::path(STEPWISE_SOURCE_DIR) / "rules").string());
  ASSERT_TRUE(instruments.ok()) << instruments.status();
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    BundleFiles files;
    for (const auto& [path, text] : *instruments) {
      if (path.rfind("instruments/", 0) == 0) files[path] = text;
    }
    // At most three bits a rule (itself and two nested chains): one chunk.
    files["ruleset.yaml"] =
        GeneratedRuleset(1000 + seed, 3 + static_cast<int>(seed));
    const LoadResult loaded = CompileBundle(files);
    ASSERT_TRUE(loaded.ok()) << FormatDiagnostics(loaded.diagnostics);
    const CompiledBundle& b = loaded.bundle->compiled();
    ASSERT_EQ(b.decide_plan.batch->chunk_count(), 1u);
    ASSERT_TRUE(b.decide_plan.step_tables);
    ExpectSame(b, 200 + seed, 3000);
  }
}

TEST(DecideTest, RuleListGrowsPastItsInlineCapacity) {
  RuleList list;
  for (uint32_t i = 0; i < 200; ++i) list.push_back(i);
  ASSERT_EQ(list.size(), 200u);
  for (uint32_t i = 0; i < 200; ++i) EXPECT_EQ(list[i], i);
  list.clear();
  EXPECT_TRUE(list.empty());
}

}  // namespace
}  // namespace stepwise::engine
