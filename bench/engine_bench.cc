// Engine micro-benchmarks (docs/BENCHMARKS.md). Each compares against a
// baseline measured in the same run, because the machines are shared and
// noisy: ratios travel, absolute numbers less so.
//
//  1. Peer set: 8 rules over pre-derived facts, compiled by the engine, vs. a
//     hand-written C++ function deciding the same (the faster of one with
//     ifs and a branch-free one), on requests in an order no branch
//     predictor learns. Goal: >= 10 M decisions/s, within 2.5x of the
//     hand-written function.
//  2. The default bundle from an EvaluateRequest (3 administrations each of
//     PHQ-9, GAD-7, PHQ-15), fact derivation and explanation included, vs. a
//     copy of the request. Goal: >= 1 M decisions/s on one core.
//  3. Loading and linting a generated 1,000-rule bundle from disk, vs. parsing
//     its YAML alone. Goal: under 200 ms.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/compiled_bundle.h"
#include "engine/decide.h"
#include "engine/engine.h"
#include "engine/expr/batch.h"
#include "engine/facts.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/util/json_util.h"
#include "yaml-cpp/yaml.h"

namespace stepwise::bench {
namespace {

using engine::Bundle;
using engine::BundleFiles;
using expr::Value;

const std::string kRules = STEPWISE_SOURCE_DIR "/rules";

BundleFiles DefaultInstruments() {
  absl::StatusOr<BundleFiles> files = engine::ReadBundleFiles(kRules);
  if (!files.ok()) {
    std::fprintf(stderr, "cannot read %s\n", kRules.c_str());
    std::abort();
  }
  BundleFiles instruments;
  for (auto& [path, text] : *files) {
    if (path.rfind("instruments/", 0) == 0) instruments[path] = text;
  }
  return instruments;
}

std::shared_ptr<const Bundle> MustCompile(const BundleFiles& files) {
  engine::LoadResult r = engine::CompileBundle(files);
  if (!r.ok()) {
    std::fprintf(stderr, "%s",
                 engine::FormatDiagnostics(r.diagnostics).c_str());
    std::abort();
  }
  return r.bundle;
}

// ---------------------------------------------------------------------------
// 1. The peer set.

constexpr char kPeerRuleset[] = R"(
ruleset: peer-set
version: "1"
steps: {1: one, 2: two, 3: three, 4: four}
rules:
  - {id: P1, title: t, when: phq9.item9 >= 1, action: URGENT_SAFETY, rationale: r, follow_up: f, source: s}
  - {id: P2, title: t, when: phq9.total >= 20, action: REFER, to_step: 4, refer_to: specialist,
     rationale: r, follow_up: f, source: s}
  - {id: P3, title: t, when: gad7.total >= 15, action: REFER, to_step: 4, refer_to: specialist,
     rationale: r, follow_up: f, source: s}
  - {id: P4, title: t, when: phq15.total >= 15 && weeks_at_step >= 8.0 && phq15.pct_change > -0.5,
     action: STEP_UP, rationale: r, follow_up: f, source: s}
  - {id: P5, title: t, when: phq9.total >= 10 && weeks_at_step >= 6.0 && phq9.pct_change > -0.25,
     action: STEP_UP, rationale: r, follow_up: f, source: s}
  - {id: P6, title: t, when: gad7.total >= 10 && weeks_at_step >= 8.0 && (gad7.pct_change > -0.5 || current_step == 1),
     action: STEP_UP, rationale: r, follow_up: f, source: s}
  - {id: P7, title: t, when: phq9.pct_change <= -0.5, action: STAY, rationale: r, follow_up: f, source: s}
  - {id: P8, title: t, when: phq9.total < 5 && gad7.total < 5 && weeks_at_step >= 12.0 && current_step > 1,
     action: STEP_DOWN, rationale: r, follow_up: f, source: s}
default: {action: STAY, rationale: r}
)";

// The same facts as a hand-written service would hold them.
struct HandFacts {
  std::optional<int64_t> phq9_item9, phq9_total, gad7_total, phq15_total;
  std::optional<double> phq9_pct, gad7_pct, phq15_pct;
  int64_t step = 1;
  double weeks = 0;
};

struct HandDecision {
  v1::Action action;
  int step;
};

// The peer rules written by hand: a rule fires only when every fact it
// needs is present (or a present fact decides an ||), as in the engine.
HandDecision HandDecide(const HandFacts& f) {
  const bool p1 = f.phq9_item9 && *f.phq9_item9 >= 1;
  const bool p2 = f.phq9_total && *f.phq9_total >= 20;
  const bool p3 = f.gad7_total && *f.gad7_total >= 15;
  const bool p4 = f.phq15_total && *f.phq15_total >= 15 && f.weeks >= 8.0 &&
                  f.phq15_pct && *f.phq15_pct > -0.5;
  const bool p5 = f.phq9_total && *f.phq9_total >= 10 && f.weeks >= 6.0 &&
                  f.phq9_pct && *f.phq9_pct > -0.25;
  const bool p6 = f.gad7_total && *f.gad7_total >= 10 && f.weeks >= 8.0 &&
                  ((f.gad7_pct && *f.gad7_pct > -0.5) || f.step == 1);
  const bool p7 = f.phq9_pct && *f.phq9_pct <= -0.5;
  const bool p8 = f.phq9_total && *f.phq9_total < 5 && f.gad7_total &&
                  *f.gad7_total < 5 && f.weeks >= 12.0 && f.step > 1;
  const int step = static_cast<int>(f.step);
  if (p1) return {v1::URGENT_SAFETY, step};
  if (p2 || p3) return {v1::REFER, 4};
  if (p4 || p5 || p6)
    return step < 4 ? HandDecision{v1::STEP_UP, step + 1}
                    : HandDecision{v1::STAY, step};
  if (p7) return {v1::STAY, step};
  if (p8)
    return step > 1 ? HandDecision{v1::STEP_DOWN, step - 1}
                    : HandDecision{v1::STAY, step};
  return {v1::STAY, step};
}

// The same facts laid out for branch-free code: each value beside a
// presence flag (0 where absent), as a service written for speed would
// hold them.
struct FlatFacts {
  int64_t phq9_item9, phq9_total, gad7_total, phq15_total;
  double phq9_pct, gad7_pct, phq15_pct;
  uint32_t has_item9, has_phq9, has_gad7, has_phq15, has_phq9_pct, has_gad7_pct,
      has_phq15_pct;
  int64_t step;
  double weeks;
};

FlatFacts Flatten(const HandFacts& f) {
  return FlatFacts{f.phq9_item9.value_or(0),
                   f.phq9_total.value_or(0),
                   f.gad7_total.value_or(0),
                   f.phq15_total.value_or(0),
                   f.phq9_pct.value_or(0),
                   f.gad7_pct.value_or(0),
                   f.phq15_pct.value_or(0),
                   f.phq9_item9.has_value(),
                   f.phq9_total.has_value(),
                   f.gad7_total.has_value(),
                   f.phq15_total.has_value(),
                   f.phq9_pct.has_value(),
                   f.gad7_pct.has_value(),
                   f.phq15_pct.has_value(),
                   f.step,
                   f.weeks};
}

// The peer rules written by hand without a branch on the facts: every
// condition a 0/1 word, the most severe matched action picked by its bit,
// the step by table and selects. On requests a branch predictor cannot
// learn, much faster than HandDecide's ifs.
HandDecision HandDecideBranchFree(const FlatFacts& f) {
  const uint32_t w6 = f.weeks >= 6.0, w8 = f.weeks >= 8.0,
                 w12 = f.weeks >= 12.0;
  const uint32_t p1 = f.has_item9 & (f.phq9_item9 >= 1);
  const uint32_t p2 = f.has_phq9 & (f.phq9_total >= 20);
  const uint32_t p3 = f.has_gad7 & (f.gad7_total >= 15);
  const uint32_t p4 = f.has_phq15 & (f.phq15_total >= 15) & w8 &
                      f.has_phq15_pct & (f.phq15_pct > -0.5);
  const uint32_t p5 = f.has_phq9 & (f.phq9_total >= 10) & w6 & f.has_phq9_pct &
                      (f.phq9_pct > -0.25);
  const uint32_t p6 = f.has_gad7 & (f.gad7_total >= 10) & w8 &
                      ((f.has_gad7_pct & (f.gad7_pct > -0.5)) | (f.step == 1));
  const uint32_t p7 = f.has_phq9_pct & (f.phq9_pct <= -0.5);
  const uint32_t p8 = f.has_phq9 & (f.phq9_total < 5) & f.has_gad7 &
                      (f.gad7_total < 5) & w12 & (f.step > 1);
  // Bit 0 always set: "nothing matched" is the lowest.
  const uint32_t bits =
      p1 << 5 | (p2 | p3) << 4 | (p4 | p5 | p6) << 3 | p7 << 2 | p8 << 1 | 1u;
  const int top = 31 - __builtin_clz(bits);
  static constexpr v1::Action kAction[6] = {v1::STAY,  v1::STEP_DOWN,
                                            v1::STAY,  v1::STEP_UP,
                                            v1::REFER, v1::URGENT_SAFETY};
  static constexpr int kDelta[6] = {0, -1, 0, 1, 0, 0};
  const int step = static_cast<int>(f.step);
  const int moves = ((top == 3) & (step < 4)) | ((top == 1) & (step > 1));
  const int capped = ((top == 3) | (top == 1)) & !moves;
  const int next = top == 4 ? 4 : step + kDelta[top] * moves;
  return {capped ? v1::STAY : kAction[top], next};
}

std::string Phq9Items(std::mt19937& rng, int* total) {
  std::string items;
  *total = 0;
  for (int i = 1; i <= 9; ++i) {
    const int v = static_cast<int>(rng() % 4 == 0 ? rng() % 4 : rng() % 2);
    *total += v;
    absl::StrAppend(&items, i > 1 ? ", " : "", "\"item", i,
                    "\": ", i == 9 && rng() % 4 ? 0 : v);
  }
  return items;
}

// A varied, seeded set of requests over PHQ-9, GAD-7 and PHQ-15, so that
// neither side benefits from a branch predictor that has learnt one answer.
std::vector<v1::EvaluateRequest> PeerRequests(size_t n) {
  std::mt19937 rng(20261121);
  std::vector<v1::EvaluateRequest> requests;
  for (size_t k = 0; k < n; ++k) {
    std::string json = absl::StrFormat(
        R"({"subjectId": "s", "currentStep": %d, "weeksAtStep": %.1f,
            "asOf": "2026-11-20T12:00:00Z", "assessments": [)",
        1 + static_cast<int>(rng() % 4),
        static_cast<double>(rng() % 160) / 10.0);
    const char* sep = "";
    for (const char* id : {"phq9", "gad7", "phq15"}) {
      if (rng() % 8 == 0) continue;  // sometimes absent
      const int max = std::string(id) == "phq9"   ? 27
                      : std::string(id) == "gad7" ? 21
                                                  : 30;
      const int administrations = 1 + static_cast<int>(rng() % 2);
      for (int a = 0; a < administrations; ++a) {
        absl::StrAppend(
            &json, sep,
            absl::StrFormat(R"({"instrument": "%s", "total": %d,
                            "administeredAt": "2026-%02d-01T09:00:00Z"})",
                            id, static_cast<int>(rng() % (max + 1)), 9 + a));
        sep = ", ";
      }
    }
    if (rng() % 3 == 0) {
      int total = 0;
      const std::string items = Phq9Items(rng, &total);
      absl::StrAppend(&json, sep, R"({"instrument": "phq9", "items": {)", items,
                      R"(}, "administeredAt": "2026-11-20T09:00:00Z"})");
    }
    absl::StrAppend(&json, "]}");
    v1::EvaluateRequest request;
    if (!google::protobuf::util::JsonStringToMessage(json, &request).ok())
      std::abort();
    requests.push_back(std::move(request));
  }
  return requests;
}

// Distinct fact tables. In the service a request's fact table is derived
// just before it is evaluated, so it is hot in cache; 128 tables (about 200
// KiB for the engine, less for the hand-written structs) stay in L2.
constexpr size_t kPeerTables = 128;
// Requests on which the three deciders are checked to agree.
constexpr size_t kPeerChecked = 4096;

// The order the tables are decided in. Taken in a fixed cycle, the branch
// predictor learns the answers: a cycle of up to ~2,000 decisions of the
// hand-written function runs as fast as the 128-table cycle, and only a
// much longer sequence shows what unpredictable requests cost
// (docs/BENCHMARKS.md). Each patient is a new request, so the measured
// order is 65,536 seeded random picks of the 128 tables, the same for both
// sides; the fixed cycle is also reported.
constexpr size_t kPeerOrder = size_t{1} << 16;

const std::vector<uint16_t>& RandomPeerOrder() {
  static const auto* order = [] {
    auto* v = new std::vector<uint16_t>(kPeerOrder);
    std::mt19937 rng(20261207);
    for (uint16_t& k : *v) k = static_cast<uint16_t>(rng() % kPeerTables);
    return v;
  }();
  return *order;
}

const std::vector<uint16_t>& CyclicPeerOrder() {
  static const auto* order = [] {
    auto* v = new std::vector<uint16_t>(kPeerOrder);
    for (size_t i = 0; i < v->size(); ++i) {
      (*v)[i] = static_cast<uint16_t>(i % kPeerTables);
    }
    return v;
  }();
  return *order;
}

struct PeerFixture {
  std::shared_ptr<const Bundle> bundle;
  std::vector<std::vector<Value>> facts;  // engine fact tables
  std::vector<int> steps;
  std::vector<HandFacts> hand;
  std::vector<FlatFacts> flat;

  PeerFixture() {
    BundleFiles files = DefaultInstruments();
    files["ruleset.yaml"] = kPeerRuleset;
    bundle = MustCompile(files);
    const engine::CompiledBundle& b = bundle->compiled();
    auto slot = [&](const char* path) { return b.decls.FindFact(path)->slot; };
    // Every request is checked below; the first kPeerTables are timed.
    for (const v1::EvaluateRequest& request : PeerRequests(kPeerChecked)) {
      engine::FactTable table(b);
      std::vector<engine::FieldViolation> violations;
      std::vector<std::string> warnings;
      const absl::Time as_of = engine::ResolveAsOf(request, absl::UnixEpoch());
      if (!engine::DeriveFacts(b, request, as_of, &table, &violations,
                               &warnings))
        std::abort();
      facts.emplace_back(table.slots(), table.slots() + table.size());
      steps.push_back(request.current_step());
      const std::vector<Value>& v = facts.back();
      auto i = [&](const char* p) -> std::optional<int64_t> {
        const Value& x = v[slot(p)];
        return x.tag == expr::Tag::kInt ? std::optional<int64_t>(x.i)
                                        : std::nullopt;
      };
      auto d = [&](const char* p) -> std::optional<double> {
        const Value& x = v[slot(p)];
        return x.tag == expr::Tag::kDouble ? std::optional<double>(x.d)
                                           : std::nullopt;
      };
      hand.push_back(HandFacts{
          i("phq9.item9"), i("phq9.total"), i("gad7.total"), i("phq15.total"),
          d("phq9.pct_change"), d("gad7.pct_change"), d("phq15.pct_change"),
          request.current_step(), request.weeks_at_step()});
      flat.push_back(Flatten(hand.back()));
    }
    // Both sides must decide the same: a benchmark of a wrong answer is no
    // benchmark.
    engine::CoreDecision core;
    for (size_t k = 0; k < facts.size(); ++k) {
      engine::Decide(b, facts[k].data(), steps[k], &core);
      const HandDecision h = HandDecide(hand[k]);
      const HandDecision g = HandDecideBranchFree(flat[k]);
      if (core.action != h.action || core.step != h.step ||
          g.action != h.action || g.step != h.step) {
        std::fprintf(stderr,
                     "peer set disagrees on request %zu: engine %s/%d, hand "
                     "%s/%d, branch-free %s/%d\n",
                     k, v1::Action_Name(core.action).c_str(), core.step,
                     v1::Action_Name(h.action).c_str(), h.step,
                     v1::Action_Name(g.action).c_str(), g.step);
        std::abort();
      }
    }
    facts.resize(kPeerTables);
    steps.resize(kPeerTables);
    hand.resize(kPeerTables);
    flat.resize(kPeerTables);
  }
};

PeerFixture& Peer() {
  static auto* fixture = new PeerFixture();
  return *fixture;
}

// Every peer-set benchmark: `decide(k)` for the tables `order` names, the
// first `period` of them over and over. The hand-written functions and the
// engine decide the same tables in the same order.
template <typename Decide>
void TimePeer(benchmark::State& state, const std::vector<uint16_t>& order,
              size_t period, Decide decide) {
  size_t i = 0;
  for (auto _ : state) {
    decide(order[i]);
    i = i + 1 == period ? 0 : i + 1;
  }
  state.SetItemsProcessed(state.iterations());
}

void PeerHandWritten(benchmark::State& state,
                     const std::vector<uint16_t>& order, size_t period) {
  const PeerFixture& f = Peer();
  TimePeer(state, order, period, [&f](size_t k) {
    HandDecision d = HandDecide(f.hand[k]);
    benchmark::DoNotOptimize(d);
  });
}

void PeerEngine(benchmark::State& state, const std::vector<uint16_t>& order) {
  const PeerFixture& f = Peer();
  const engine::CompiledBundle& b = f.bundle->compiled();
  engine::CoreDecision core;
  TimePeer(state, order, kPeerOrder, [&](size_t k) {
    engine::Decide(b, f.facts[k].data(), f.steps[k], &core);
    benchmark::DoNotOptimize(core.action);
    benchmark::DoNotOptimize(core.step);
  });
}

void BM_PeerSet_HandWritten(benchmark::State& state) {
  PeerHandWritten(state, RandomPeerOrder(), kPeerOrder);
}
BENCHMARK(BM_PeerSet_HandWritten);

void BM_PeerSet_HandWrittenBranchFree(benchmark::State& state) {
  const PeerFixture& f = Peer();
  TimePeer(state, RandomPeerOrder(), kPeerOrder, [&f](size_t k) {
    HandDecision d = HandDecideBranchFree(f.flat[k]);
    benchmark::DoNotOptimize(d);
  });
}
BENCHMARK(BM_PeerSet_HandWrittenBranchFree);

void BM_PeerSet_Engine(benchmark::State& state) {
  PeerEngine(state, RandomPeerOrder());
}
BENCHMARK(BM_PeerSet_Engine);

void BM_PeerSet_HandWritten_FixedCycle(benchmark::State& state) {
  PeerHandWritten(state, CyclicPeerOrder(), kPeerOrder);
}
BENCHMARK(BM_PeerSet_HandWritten_FixedCycle);

void BM_PeerSet_Engine_FixedCycle(benchmark::State& state) {
  PeerEngine(state, CyclicPeerOrder());
}
BENCHMARK(BM_PeerSet_Engine_FixedCycle);

// The hand-written function over the first `range(0)` decisions of the
// random order, repeated: how long a cycle the branch predictor learns.
void BM_PeerSet_HandWritten_Cycle(benchmark::State& state) {
  PeerHandWritten(state, RandomPeerOrder(),
                  static_cast<size_t>(state.range(0)));
}
BENCHMARK(BM_PeerSet_HandWritten_Cycle)->Arg(128)->Arg(2048)->Arg(8192);

// Only the conditions, in the random order: the batch's true and undecided
// words and the most severe matched action, without the matched and
// undecided lists or the hit policy's step. Not a decision the contract
// allows (it lists nothing); it shows how much of the engine's time is the
// three-valued evaluation of all eight rules itself (docs/BENCHMARKS.md).
void BM_PeerSet_ConditionsOnly(benchmark::State& state) {
  const PeerFixture& f = Peer();
  const expr::Batch& batch = *f.bundle->compiled().decide_plan.batch;
  if (batch.chunk_count() != 1) std::abort();
  const expr::Batch::Chunk& chunk = batch.chunks()[0];
  TimePeer(state, RandomPeerOrder(), kPeerOrder, [&](size_t k) {
    const expr::Batch::Outcome o = batch.Evaluate(chunk, f.facts[k].data());
    uint32_t most_severe = batch.MaxLabel(0, o.true_bits);
    benchmark::DoNotOptimize(most_severe);
    benchmark::DoNotOptimize(o.undecided_bits);
  });
}
BENCHMARK(BM_PeerSet_ConditionsOnly);

// ---------------------------------------------------------------------------
// 2. The default bundle from a request.

// `with_items`: every administration carries its items (scored, validated
// and totalled by the engine); otherwise the totals computed from the same
// items (an EHR that stores only totals).
v1::EvaluateRequest DefaultBundleRequest(bool with_items = true) {
  std::string json =
      R"({"subjectId": "patient-1", "currentStep": 2, "weeksAtStep": 9,
      "asOf": "2026-11-20T12:00:00Z", "assessments": [)";
  const struct {
    const char* id;
    int items;
    int value;
  } kInstruments[] = {{"phq9", 9, 1}, {"gad7", 7, 1}, {"phq15", 15, 1}};
  const char* sep = "";
  for (const auto& inst : kInstruments) {
    for (int a = 0; a < 3; ++a) {
      std::string items;
      int total = 0;
      for (int i = 1; i <= inst.items; ++i) {
        // item9 stays 0 so the safety rules do not short-cut the decision.
        const int v = (std::string(inst.id) == "phq9" && i == 9)
                          ? 0
                          : (inst.value + a + i) % 3;
        total += v;
        absl::StrAppend(&items, i > 1 ? ", " : "", "\"item", i, "\": ", v);
      }
      const std::string scores = with_items
                                     ? absl::StrCat(R"("items": {)", items, "}")
                                     : absl::StrCat(R"("total": )", total);
      absl::StrAppend(&json, sep, R"({"instrument": ")", inst.id, R"(", )",
                      scores, R"(, "administeredAt": "2026-)",
                      absl::StrFormat("%02d", 9 + a), R"(-15T09:00:00Z"})");
      sep = ", ";
    }
  }
  absl::StrAppend(&json, "]}");
  v1::EvaluateRequest request;
  if (!google::protobuf::util::JsonStringToMessage(json, &request).ok())
    std::abort();
  return request;
}

std::shared_ptr<const Bundle>& DefaultBundle() {
  static auto* bundle = new std::shared_ptr<const Bundle>([] {
    absl::StatusOr<engine::LoadResult> r = engine::LoadBundle(kRules);
    if (!r.ok() || !r->ok()) std::abort();
    return r->bundle;
  }());
  return *bundle;
}

void BM_DefaultBundle_CopyRequest(benchmark::State& state) {
  const v1::EvaluateRequest request = DefaultBundleRequest();
  for (auto _ : state) {
    v1::EvaluateRequest copy(request);
    benchmark::DoNotOptimize(copy);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DefaultBundle_CopyRequest);

void BM_DefaultBundle_Evaluate(benchmark::State& state) {
  const Bundle& bundle = *DefaultBundle();
  const v1::EvaluateRequest request =
      DefaultBundleRequest(/*with_items=*/state.range(0) == 1);
  {
    engine::EvaluationResult r =
        engine::Evaluate(bundle, request, absl::UnixEpoch());
    if (!r.ok()) std::abort();
    state.SetLabel(absl::StrCat(v1::Action_Name(r.decision.action()), ", ",
                                r.decision.matched_rules_size(), " matched, ",
                                r.decision.unevaluated_rules_size(),
                                " undecided"));
  }
  for (auto _ : state) {
    engine::EvaluationResult r =
        engine::Evaluate(bundle, request, absl::UnixEpoch());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DefaultBundle_Evaluate)->ArgName("items")->Arg(1)->Arg(0);

// The same, evaluated with EvaluateInto into a Decision on an arena that is
// rewound after each call (as a server that answers from an arena would):
// the Decision's strings and sub-messages cost no heap allocation each.
void BM_DefaultBundle_EvaluateOnArena(benchmark::State& state) {
  const Bundle& bundle = *DefaultBundle();
  const v1::EvaluateRequest request =
      DefaultBundleRequest(/*with_items=*/state.range(0) == 1);
  std::vector<char> block(64 << 10);
  google::protobuf::ArenaOptions options;
  options.initial_block = block.data();
  options.initial_block_size = block.size();
  google::protobuf::Arena arena(options);
  for (auto _ : state) {
    auto* decision =
        google::protobuf::Arena::CreateMessage<v1::Decision>(&arena);
    std::vector<engine::FieldViolation> violations =
        engine::EvaluateInto(bundle, request, absl::UnixEpoch(), {}, decision);
    if (!violations.empty()) std::abort();
    benchmark::DoNotOptimize(decision);
    arena.Reset();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DefaultBundle_EvaluateOnArena)->ArgName("items")->Arg(1)->Arg(0);

// ---------------------------------------------------------------------------
// 3. Loading a generated 1,000-rule bundle.

std::string GeneratedRuleset(int rules) {
  std::string text = R"(ruleset: generated
version: "1"
steps: {1: one, 2: two, 3: three, 4: four}
flags: [red_flag]
define:
  slow: weeks_at_step >= 8.0 && phq9.pct_change > -0.5
rules:
)";
  const char* const kActions[] = {"STEP_UP", "STAY", "STEP_DOWN", "REFER",
                                  "URGENT_SAFETY"};
  for (int k = 0; k < rules; ++k) {
    const char* action = kActions[k % 5];
    std::string when;
    switch (k % 4) {
      case 0:
        when = absl::StrCat("phq9.total >= ", k % 27,
                            " && weeks_at_step >= ", k % 12, ".0");
        break;
      case 1:
        when =
            absl::StrCat("gad7.total >= ", k % 21, " && (gad7.pct_change > -0.",
                         k % 9, " || current_step == ", 1 + k % 4, ")");
        break;
      case 2:
        when = absl::StrCat("slow && phq15.total >= ", k % 30,
                            " && !(\"red_flag\" in flags)");
        break;
      default:
        when = absl::StrCat(
            "has(previous.phq9) && previous.phq9.total - phq9.total >= ",
            k % 10, " && max(gad7.total, phq9.total) < ", 5 + k % 20);
        break;
    }
    absl::StrAppend(&text, "  - id: GEN-", k, "\n    title: generated rule ", k,
                    "\n    when: '", when, "'\n    action: ", action, "\n");
    if (std::string(action) == "REFER")
      absl::StrAppend(&text, "    refer_to: specialist\n");
    absl::StrAppend(&text,
                    "    rationale: generated\n    follow_up: generated\n    "
                    "source: bench\n");
  }
  absl::StrAppend(&text,
                  "default: {action: STAY, rationale: nothing matched}\n");
  return text;
}

std::filesystem::path& GeneratedBundleDir() {
  static auto* dir = new std::filesystem::path([] {
    const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                      absl::StrCat("stepwise-bench-", getpid());
    std::filesystem::create_directories(dir / "instruments");
    for (const auto& [path, text] : DefaultInstruments())
      std::ofstream(dir / path) << text;
    std::ofstream(dir / "ruleset.yaml") << GeneratedRuleset(1000);
    return dir;
  }());
  return *dir;
}

void BM_Load1000Rules_YamlParseOnly(benchmark::State& state) {
  const std::filesystem::path dir = GeneratedBundleDir();
  for (auto _ : state) {
    std::ifstream in(dir / "ruleset.yaml");
    std::stringstream buf;
    buf << in.rdbuf();
    YAML::Node node = YAML::Load(buf.str());
    benchmark::DoNotOptimize(node);
  }
}
BENCHMARK(BM_Load1000Rules_YamlParseOnly)->Unit(benchmark::kMillisecond);

void BM_Load1000Rules_LoadAndLint(benchmark::State& state) {
  const std::filesystem::path dir = GeneratedBundleDir();
  for (auto _ : state) {
    absl::StatusOr<engine::LoadResult> r = engine::LoadBundle(dir);
    if (!r.ok() || !r->ok()) {
      state.SkipWithError("generated bundle does not load");
      if (r.ok())
        std::fprintf(stderr, "%s",
                     engine::FormatDiagnostics(r->diagnostics).c_str());
      return;
    }
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Load1000Rules_LoadAndLint)->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------------------
// Ratios against the baselines of the same run.

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration && !run.error_occurred) {
        ns_per_op_[run.benchmark_name()] =
            run.GetAdjustedCPUTime() *
            (run.time_unit == benchmark::kMillisecond ? 1e6 : 1.0);
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void PrintSummary() const {
    auto ns = [&](const std::string& name) {
      const auto it = ns_per_op_.find(name);
      return it == ns_per_op_.end() ? 0.0 : it->second;
    };
    std::printf("\nSummary (ratios against baselines measured in this run):\n");
    // The goal's baseline is the faster of the two hand-written functions.
    const double ifs = ns("BM_PeerSet_HandWritten");
    const double branch_free = ns("BM_PeerSet_HandWrittenBranchFree");
    const double hand = ifs > 0 && branch_free > 0 ? std::min(ifs, branch_free)
                                                   : std::max(ifs, branch_free);
    const double engine = ns("BM_PeerSet_Engine");
    if (hand > 0 && engine > 0) {
      std::printf(
          "  peer set, requests in random order: engine %.1f M decisions/s "
          "(goal >= 10), %.2fx the faster hand-written function (goal <= "
          "2.5x); hand-written with ifs %.1f ns, branch-free %.1f ns, engine "
          "%.1f ns\n",
          1e3 / engine, engine / hand, ifs, branch_free, engine);
    }
    const double conditions = ns("BM_PeerSet_ConditionsOnly");
    if (hand > 0 && conditions > 0) {
      std::printf(
          "  peer set, the eight conditions alone (no lists, no hit policy): "
          "%.2fx the hand-written function\n",
          conditions / hand);
    }
    const double hand_cycle = ns("BM_PeerSet_HandWritten_FixedCycle");
    const double engine_cycle = ns("BM_PeerSet_Engine_FixedCycle");
    if (hand_cycle > 0 && engine_cycle > 0) {
      std::printf(
          "  peer set in a fixed 128-request cycle (answers the branch "
          "predictor learns): engine %.1f ns, hand-written %.1f ns, %.2fx\n",
          engine_cycle, hand_cycle, engine_cycle / hand_cycle);
    }
    const double copy = ns("BM_DefaultBundle_CopyRequest");
    const double eval = ns("BM_DefaultBundle_Evaluate/items:1");
    const double eval_totals = ns("BM_DefaultBundle_Evaluate/items:0");
    if (copy > 0 && eval > 0) {
      std::printf(
          "  default bundle, items sent: %.2f M decisions/s on one core (goal "
          ">= 1), "
          "%.1fx a copy of the request\n",
          1e3 / eval, eval / copy);
    }
    if (eval_totals > 0) {
      std::printf(
          "  default bundle, totals sent: %.2f M decisions/s on one core (goal "
          ">= 1)\n",
          1e3 / eval_totals);
    }
    const double arena = ns("BM_DefaultBundle_EvaluateOnArena/items:1");
    const double arena_totals = ns("BM_DefaultBundle_EvaluateOnArena/items:0");
    if (arena > 0 && arena_totals > 0) {
      std::printf(
          "  default bundle, Decision on an arena: %.2f M decisions/s with "
          "items, %.2f M/s with totals (goal >= 1)\n",
          1e3 / arena, 1e3 / arena_totals);
    }
    const double parse = ns("BM_Load1000Rules_YamlParseOnly");
    const double load = ns("BM_Load1000Rules_LoadAndLint");
    if (parse > 0 && load > 0) {
      std::printf(
          "  1,000-rule bundle: load + lint %.1f ms (goal < 200), %.1fx "
          "parsing its "
          "YAML alone\n",
          load / 1e6, load / parse);
    }
  }

 private:
  std::map<std::string, double> ns_per_op_;
};

}  // namespace
}  // namespace stepwise::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  stepwise::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  std::error_code ec;
  std::filesystem::remove_all(stepwise::bench::GeneratedBundleDir(), ec);
  benchmark::Shutdown();
  return 0;
}
