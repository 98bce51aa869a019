// A byte-for-byte guard on Evaluate's output for the default bundle in
// rules/. Thousands of seeded, generated requests (valid and invalid: items
// and totals, missing and out-of-range items, unknown items and instruments,
// flags, timestamps before and after as_of, duplicates, every instrument the
// bundle declares) are evaluated with and without a trace, and a set of
// expressions covering every operator is explained over the same facts. The
// SHA-256 of everything produced (deterministically serialized Decisions,
// violations, explanations, missing facts, errors) must equal kGolden.
//
// It exists so that work on the engine's speed (facts, explanations,
// Decision building) can prove it changed no answer and no word of any
// explanation. When a change to the output is deliberate (a new rule in
// rules/, a reworded message, a generator change), check the change by other
// means first, then run this test, read the digest it printed, and replace
// kGolden with it in the same commit as the deliberate change.
#include <openssl/evp.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/compiled_bundle.h"
#include "engine/engine.h"
#include "engine/expr/program.h"
#include "engine/facts.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gtest/gtest.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::engine {
namespace {

constexpr char kGolden[] =
    "430ae8ff762007d00918ca8733eb126d66bdd510595c28f830e31d07793c96da";

constexpr size_t kRequests = 6000;

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Each piece is length-prefixed so that concatenations cannot collide.
  void Add(std::string_view data) {
    const uint64_t size = data.size();
    EVP_DigestUpdate(ctx_, &size, sizeof size);
    EVP_DigestUpdate(ctx_, data.data(), data.size());
  }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(md), len));
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string Deterministic(const google::protobuf::MessageLite& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

const int64_t kBase = 1795176000;  // 2026-11-20T12:00:00Z

class Generator {
 public:
  explicit Generator(const CompiledBundle& bundle) : b_(bundle) {}

  uint32_t R(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }
  bool P(uint32_t percent) { return R(100) < percent; }

  v1::EvaluateRequest Next(absl::Time* received_at) {
    v1::EvaluateRequest r;
    if (!P(3)) r.set_subject_id(absl::StrCat("patient-", R(1000)));
    r.set_current_step(P(3) ? static_cast<int>(R(7)) - 1
                            : 1 + static_cast<int>(R(b_.max_step)));
    if (P(2)) {
      const double odd[] = {-1.0, std::nan(""),
                            std::numeric_limits<double>::infinity()};
      r.set_weeks_at_step(odd[R(3)]);
    } else {
      r.set_weeks_at_step(R(4) == 0 ? static_cast<double>(R(20))
                                    : R(2000) / 100.0);
    }
    const int64_t as_of = kBase + static_cast<int64_t>(R(400 * 86400));
    *received_at = absl::FromUnixSeconds(as_of + R(3600));
    if (!P(10)) {
      r.mutable_as_of()->set_seconds(P(1) ? -70000000000 : as_of);
      r.mutable_as_of()->set_nanos(P(5) ? static_cast<int>(R(1000000000)) : 0);
    }
    const uint32_t flags = R(10) < 6 ? 0 : R(4);
    for (uint32_t i = 0; i < flags; ++i) {
      r.add_flags(P(5) ? "bogus_flag" : b_.flags[R(b_.flags.size())]);
    }
    const uint32_t assessments = R(9);
    int64_t last_at = 0;
    for (uint32_t k = 0; k < assessments; ++k) {
      v1::Assessment* a = r.add_assessments();
      const InstrumentDef* def = nullptr;
      if (P(2)) {
        a->set_instrument(P(50) ? "" : "nope");
      } else {
        // Depression, anxiety and physical symptoms most often.
        def = R(3) == 0 ? b_.instruments[R(b_.instruments.size())].get()
                        : b_.FindInstrument(R(3) == 0   ? "phq9"
                                            : R(2) == 0 ? "gad7"
                                                        : "phq15");
        if (def == nullptr) def = b_.instruments[0].get();
        a->set_instrument(def->id);
      }
      if (!P(2)) {
        int64_t at = as_of - static_cast<int64_t>(R(200 * 86400));
        if (P(2)) at = as_of + 1 + R(86400);     // after as_of
        if (P(2) && last_at != 0) at = last_at;  // a possible duplicate
        last_at = at;
        a->mutable_administered_at()->set_seconds(at);
        if (P(3)) a->mutable_administered_at()->set_nanos(R(1000000000));
      }
      if (def == nullptr) continue;
      const bool items = def->has_total ? P(60) : !P(3);
      const bool total = def->has_total ? (!items || P(10)) : P(3);
      int sum = 0;
      if (items) {
        const bool sparse = P(15);
        for (int i = 0; i < def->item_count(); ++i) {
          if (sparse && P(30)) continue;
          const int lo = def->item_min[i];
          const int hi = def->item_max[i];
          int v = lo + static_cast<int>(R(static_cast<uint32_t>(hi - lo + 1)));
          // Low answers more often, so some rules stay quiet.
          if (P(40)) v = lo;
          if (P(1)) v = P(50) ? hi + 1 : lo - 1;
          sum += v;
          (*a->mutable_items())[def->item_names[i]] = v;
        }
        if (P(2)) (*a->mutable_items())[P(50) ? "item0" : "itemX"] = 1;
        if (P(1)) (*a->mutable_items())["item10"] = 0;
      }
      if (total) {
        int t = items && P(70) ? sum
                               : def->total_min +
                                     static_cast<int>(R(static_cast<uint32_t>(
                                         def->total_max - def->total_min + 1)));
        if (P(2)) t = def->total_max + 1;
        a->set_total(t);
      }
    }
    return r;
  }

 private:
  const CompiledBundle& b_;
  std::mt19937 rng_{20261122};
};

// Every operator the explainer renders, over the default bundle's facts.
const char* const kExpressions[] = {
    "phq9.total / (gad7.total - gad7.total) > 1",
    "9223372036854775807 + phq9.total > 0",
    "-(-phq9.total) < 3 && -phq9.change > 2",
    "(abs(phq9.change) > 2 ? phq9.total : gad7.total) >= 10",
    "min(phq9.total, gad7.total, 3) >= 1",
    "max(phq9.pct_change, gad7.pct_change) > 0.5",
    "min(phq9.days_since, 2.5) < max(weeks_at_step, -1.0)",
    "size(flags) > 1 || size([phq9.total, gad7.total]) == 2",
    "phq9.severity in ['mild', 'moderate'] && 'mild' != phq9.severity",
    "phq9.total in [1, 2, phq15.total] || gad7.days_since in [1.0, 2.0]",
    "phq9.pct_change * 100.0 < -50.0 || phq9.pct_change / 0.0 > 1.0",
    "phq9.severity == 'mild' || phq9.severity != 'severe'",
    "!has(phq9.total) || phq9.total % (gad7.total - gad7.total) == 0",
    "current_step - 1 >= 0 && phq9.days_since < 30.0",
    "'red_flag' in flags && previous.phq9.total > 3",
    "(has(baseline.phq9) ? baseline.phq9.total - phq9.total : 0) > 2",
    "phq9.caseness == gad7.caseness || phq9.reliable_improvement != true",
    "size(phq9.severity) * 2 > gad7.total + 0",
    "10 <= phq9.total && 2.5 > weeks_at_step",
    "phq9.total * 9223372036854775807 > 1",
    "-9223372036854775807 - 1 - phq9.total < 0",
    "phq9.total > gad7.total || phq15.total >= ssd12.total",
    "phq9.days_since + 1.0 >= cssrs.days_since && !(cssrs.q2 == 0)",
    "weeks_at_step >= 8.0 && phq9.total >= 10 && phq9.pct_change > -0.5",
};

TEST(EvaluateDigestTest, OutputsMatchTheGoldenDigest) {
  absl::StatusOr<LoadResult> loaded =
      LoadBundle(std::filesystem::path(STEPWISE_SOURCE_DIR) / "rules");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->ok());
  const Bundle& bundle = *loaded->bundle;
  const CompiledBundle& b = bundle.compiled();

  std::vector<std::unique_ptr<expr::Program>> programs;
  expr::CompileOptions compile;
  compile.defines = &b.defines;
  for (const char* text : kExpressions) {
    absl::StatusOr<expr::CompileResult> r =
        expr::Compile(text, b.decls, compile);
    ASSERT_TRUE(r.ok()) << text;
    ASSERT_TRUE(r->issues.empty()) << text << ": " << r->issues[0].message;
    programs.push_back(std::move(r->program));
  }

  Sha256 sha;
  Generator gen(b);
  size_t valid = 0, matched = 0, undecided = 0, warned = 0;
  for (size_t k = 0; k < kRequests; ++k) {
    absl::Time received_at;
    const v1::EvaluateRequest request = gen.Next(&received_at);
    for (const bool explain : {false, true}) {
      EvaluationResult r = Evaluate(bundle, request, received_at, {explain});
      for (const FieldViolation& v : r.violations) {
        sha.Add(v.field);
        sha.Add(v.description);
      }
      if (r.ok()) sha.Add(Deterministic(r.decision));
      if (k % 10 == 0) {
        // EvaluateInto an arena-owned Decision: the same violations, the
        // same bytes.
        google::protobuf::Arena arena;
        auto* on_arena =
            google::protobuf::Arena::CreateMessage<v1::Decision>(&arena);
        const std::vector<FieldViolation> violations =
            EvaluateInto(bundle, request, received_at, {explain}, on_arena);
        ASSERT_EQ(violations.size(), r.violations.size());
        for (size_t v = 0; v < violations.size(); ++v) {
          EXPECT_EQ(violations[v].field, r.violations[v].field);
          EXPECT_EQ(violations[v].description, r.violations[v].description);
        }
        EXPECT_EQ(Deterministic(*on_arena), Deterministic(r.decision));
      }
      if (explain || !r.ok()) continue;
      ++valid;
      matched += r.decision.matched_rules_size();
      undecided += r.decision.unevaluated_rules_size();
      warned += r.decision.warnings_size() > 0;
    }
    const Outcome outcome = EvaluateOutcome(bundle, request, received_at);
    sha.Add(absl::StrCat(outcome.action, " ", outcome.recommended_step, " ",
                         outcome.violations.size(), " ",
                         outcome.matched.size()));
    if (k % 3 != 0) continue;
    FactTable facts(b);
    std::vector<FieldViolation> violations;
    std::vector<std::string> warnings;
    if (!DeriveFacts(b, request, ResolveAsOf(request, received_at), &facts,
                     &violations, &warnings)) {
      continue;
    }
    for (const auto& program : programs) {
      expr::Explanation e;
      const expr::Value v = program->Explain(facts.slots(), &e);
      sha.Add(absl::StrCat(static_cast<int>(v.tag), " ", e.text));
      for (const std::string& m : e.missing_facts) sha.Add(m);
      for (const std::string& m : e.errors) sha.Add(m);
      std::string text;
      program->ExplainText(facts.slots(), &text);
      EXPECT_EQ(text, e.text);
    }
  }
  // The generator must reach the interesting paths, or the digest proves
  // little.
  EXPECT_GT(valid, kRequests / 4);
  EXPECT_GT(matched, kRequests / 4);
  EXPECT_GT(undecided, kRequests);
  EXPECT_GT(warned, kRequests / 50);
  const std::string digest = sha.Hex();
  std::printf("evaluate digest: %s (%zu valid, %zu matched, %zu undecided)\n",
              digest.c_str(), valid, matched, undecided);
  EXPECT_EQ(digest, kGolden);
}

}  // namespace
}  // namespace stepwise::engine
