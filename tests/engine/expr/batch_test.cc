// Differential test of Batch against Program::Evaluate: generated conditions
// (comparisons with constants at the edges of int64 and double, negations,
// nested chains, arithmetic, has(), strings, lists, ternaries) over
// generated fact tables in which every fact may be absent, an error, of
// another type than declared, or an extreme value. Both must agree on every
// program's outcome: true, undecided, or neither.
#include "engine/expr/batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/engine/expr/test_facts.h"

namespace stepwise::expr::testing {
namespace {

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  std::string Condition() { return Chain(0); }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % n); }
  template <typename T>
  const T& Of(const std::vector<T>& v) {
    return v[Pick(static_cast<int>(v.size()))];
  }

  std::string Rel() {
    return Of<std::string>({"<", "<=", ">", ">=", "==", "!="});
  }

  std::string IntConst() {
    switch (Pick(6)) {
      case 0:
        return "9223372036854775807";
      case 1:
        return "-9223372036854775807";
      case 2:
        return absl::StrCat(Pick(2000) - 1000);
      default:
        return absl::StrCat(Pick(30) - 3);
    }
  }
  std::string DoubleConst() {
    return Of<std::string>({"-0.5", "0.0", "-0.0", "8.0", "12.0", "6.5",
                            "-0.25", "1.7976931348623157e308",
                            "-1.7976931348623157e308", "4.9e-324", "-1.0",
                            "0.1", "3.0"});
  }

  std::string Leaf() {
    const std::vector<std::string> ints = {
        "n",        "m",           "phq9.total", "current_step",
        "cssrs.q6", "phq9.change", "phq9.item9"};
    const std::vector<std::string> doubles = {
        "d", "e", "weeks_at_step", "phq9.pct_change", "cssrs.days_since"};
    switch (Pick(16)) {
      case 0:
      case 1:
      case 2:
      case 3:
        return Pick(4) == 0
                   ? absl::StrCat(IntConst(), " ", Rel(), " ", Of(ints))
                   : absl::StrCat(Of(ints), " ", Rel(), " ", IntConst());
      case 4:
      case 5:
      case 6:
        return Pick(4) == 0
                   ? absl::StrCat(DoubleConst(), " ", Rel(), " ", Of(doubles))
                   : absl::StrCat(Of(doubles), " ", Rel(), " ", DoubleConst());
      case 7:
        return absl::StrCat(Of(ints), " ", Rel(), " ", DoubleConst());
      case 8:
        return absl::StrCat("!(", Of(ints), " ", Rel(), " ", IntConst(), ")");
      case 9:
        return absl::StrCat("!(", Of(doubles), " ", Rel(), " ", DoubleConst(),
                            ")");
      case 10:
        return Of<std::string>({"has(phq9)", "has(phq9.total)", "has(cssrs)",
                                "b", "phq9.caseness", "!c",
                                "has(previous.phq9)"});
      case 11:
        return Of<std::string>({"\"red_flag\" in flags", "s == \"x\"",
                                "phq9.severity == \"severe\"", "s < t",
                                "3 in ints", "size(flags) > 0"});
      case 12:
        return Of<std::string>({"n + m > 3", "n / m == 0", "n % m != 1",
                                "d / e < 1.0", "n * m >= 9223372036854775807",
                                "-n < m", "abs(n) > 2", "max(n, m) >= 5",
                                "cssrs.days_since <= phq9.days_since + 1.0"});
      case 13:
        return absl::StrCat("(b ? ", Of(ints), " > 3 : ", Of(doubles),
                            " < 1.0)");
      default:
        return absl::StrCat(Of(ints), " ", Rel(), " ", IntConst());
    }
  }

  std::string Chain(int depth) {
    const int count = 1 + Pick(depth == 0 ? 5 : 3);
    const std::string op = Pick(2) == 0 ? " && " : " || ";
    std::string out;
    for (int i = 0; i < count; ++i) {
      if (i > 0) out += op;
      if (depth < 2 && Pick(4) == 0) {
        out += absl::StrCat(Pick(3) == 0 ? "!(" : "(", Chain(depth + 1), ")");
      } else {
        out += Leaf();
      }
    }
    return out;
  }

  std::mt19937_64 rng_;
};

// Fills every fact of the test declarations at random.
class TableFiller {
 public:
  explicit TableFiller(uint64_t seed) : rng_(seed) {}

  void Fill(FactTable* table) {
    const std::vector<std::string> ints = {
        "n",        "m",           "phq9.total", "current_step",
        "cssrs.q6", "phq9.change", "phq9.item9", "previous.phq9.total"};
    const std::vector<std::string> doubles = {"d",
                                              "e",
                                              "weeks_at_step",
                                              "phq9.pct_change",
                                              "cssrs.days_since",
                                              "phq9.days_since"};
    const std::vector<std::string> bools = {"b",    "c",     "phq9.caseness",
                                            "phq9", "cssrs", "previous.phq9"};
    for (const std::string& path : ints) table->SetValue(path, Int());
    for (const std::string& path : doubles) table->SetValue(path, Double());
    for (const std::string& path : bools) {
      table->SetValue(path, Odd(Value::Bool(Pick(2) == 0)));
    }
    table->SetValue("s", Odd(Value::String(&strings_[Pick(3)])));
    table->SetValue("t", Odd(Value::String(&strings_[Pick(3)])));
    table->SetValue("phq9.severity", Odd(Value::String(&strings_[Pick(3)])));
    if (Pick(3) == 0) {
      table->SetValue("flags", Value::Absent());
    } else {
      table->Set("flags", Pick(2) == 0 ? "[\"red_flag\"]" : "[\"x\"]");
    }
    table->Set("ints", Pick(2) == 0 ? "[1, 3]" : "[2]");
  }

 private:
  int Pick(int n) { return static_cast<int>(rng_() % n); }

  // Sometimes absent, an error or another type than declared.
  Value Odd(Value v) {
    switch (Pick(12)) {
      case 0:
      case 1:
      case 2:
        return Value::Absent();
      case 3:
        return Value::Error(ErrorCode::kIntegerOverflow);
      case 4:
        return v.tag == Tag::kInt ? Value::Double(1.5) : Value::Int(2);
      case 5:
        return Value::Bool(true);
      default:
        return v;
    }
  }

  Value Int() {
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    switch (Pick(8)) {
      case 0:
        return Odd(Value::Int(Pick(2) == 0 ? kMax : kMin));
      case 1:
        return Odd(Value::Int(Pick(2000) - 1000));
      default:
        return Odd(Value::Int(Pick(32) - 3));
    }
  }

  Value Double() {
    switch (Pick(10)) {
      case 0:
        return Odd(Value::Double(NAN));
      case 1:
        return Odd(Value::Double(Pick(2) == 0 ? INFINITY : -INFINITY));
      case 2:
        return Odd(Value::Double(-0.0));
      case 3:
        return Odd(Value::Double(Pick(2) == 0 ? 4.9e-324 : -4.9e-324));
      case 4:
        return Odd(Value::Double(Pick(2) == 0 ? -0.5 : 8.0));
      case 5:
        return Odd(Value::Double(std::nextafter(-0.5, 1.0)));
      default:
        return Odd(Value::Double((Pick(400) - 200) / 16.0));
    }
  }

  std::mt19937_64 rng_;
  const std::string strings_[3] = {"x", "severe", "y"};
};

TEST(BatchTest, AgreesWithProgramEvaluate) {
  Generator generator(20261122);
  TableFiller filler(7);
  int compared = 0;
  for (int round = 0; round < 40; ++round) {
    std::vector<std::unique_ptr<Program>> owned;
    std::vector<const Program*> programs;
    std::vector<std::string> texts;
    while (programs.size() < 150) {
      const std::string text = generator.Condition();
      CompileOptions options;
      options.expected = Type::Bool();
      absl::StatusOr<CompileResult> r =
          Compile(text, TestDeclarations(), options);
      ASSERT_TRUE(r.ok());
      if (r->program == nullptr) continue;  // e.g. a type error
      texts.push_back(text);
      programs.push_back(r->program.get());
      owned.push_back(std::move(r->program));
    }
    const Batch batch(programs);
    ASSERT_GT(batch.chunk_count(), 1u);
    for (int t = 0; t < 50; ++t) {
      FactTable table;
      filler.Fill(&table);
      for (size_t c = 0; c < batch.chunk_count(); ++c) {
        uint64_t true_bits = 0;
        uint64_t undecided_bits = 0;
        batch.EvaluateChunk(c, table.slots(), &true_bits, &undecided_bits);
        for (uint32_t i = 0; i < batch.chunk_size(c); ++i) {
          const uint32_t p = batch.chunk_first(c) + i;
          const Value v = programs[p]->Evaluate(table.slots());
          ASSERT_EQ(v.is_true(), ((true_bits >> i) & 1) != 0) << texts[p];
          ASSERT_EQ(v.undecided(), ((undecided_bits >> i) & 1) != 0)
              << texts[p];
          ++compared;
        }
        ASSERT_EQ(true_bits >> batch.chunk_size(c), 0u);
        ASSERT_EQ(undecided_bits >> batch.chunk_size(c), 0u);
      }
    }
  }
  EXPECT_EQ(compared, 40 * 150 * 50);
}

// MaxLabel gives the highest label among any set of a chunk's programs, in
// chunks of every size.
TEST(BatchTest, MaxLabelIsTheHighestLabelOfTheProgramsSet) {
  Generator generator(99);
  std::mt19937_64 rng(5);
  std::vector<std::unique_ptr<Program>> owned;
  std::vector<const Program*> programs;
  std::vector<uint8_t> labels;
  while (programs.size() < 200) {
    CompileOptions options;
    options.expected = Type::Bool();
    absl::StatusOr<CompileResult> r =
        Compile(generator.Condition(), TestDeclarations(), options);
    ASSERT_TRUE(r.ok());
    if (r->program == nullptr) continue;
    programs.push_back(r->program.get());
    owned.push_back(std::move(r->program));
    labels.push_back(static_cast<uint8_t>(rng() % 8));
  }
  const Batch batch(programs, labels);
  ASSERT_GT(batch.chunk_count(), 1u);
  for (size_t c = 0; c < batch.chunk_count(); ++c) {
    const uint32_t n = batch.chunk_size(c);
    const uint64_t mask = n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
    for (int t = 0; t < 500; ++t) {
      // Sparse and dense sets, and the empty one.
      uint64_t bits = rng() & mask;
      if (t % 3 == 1) bits &= rng() & rng();
      if (t % 50 == 0) bits = 0;
      uint32_t want = 0;
      for (uint32_t i = 0; i < n; ++i) {
        if ((bits >> i) & 1) {
          want = std::max<uint32_t>(want, labels[batch.chunk_first(c) + i]);
        }
      }
      ASSERT_EQ(batch.MaxLabel(c, bits), want) << c << " " << bits;
    }
  }
}

// Wide constants leave the table layout for the general evaluator; one
// program with more nested chains than a chunk has bits keeps the rest as
// general operands. Both still agree.
TEST(BatchTest, WideRangesAndManyClauses) {
  std::string many;
  for (int i = 0; i < 70; ++i) {
    if (i > 0) many += " && ";
    many += absl::StrCat("(n > ", i, " || m < ", i, ")");
  }
  const std::vector<std::string> texts = {
      "n > -1000000 && n < 1000000",
      "n == 5 || n == 100000",
      "phq9.total >= 10",
      many,
      "!(d > 1.0 && d < 2.0)",
      "d >= 1.0 && d < 2.0 && d != 1.5 && d > -7.0 && d <= 9.0 && e > 0.0"};
  std::vector<std::unique_ptr<Program>> owned;
  std::vector<const Program*> programs;
  for (const std::string& text : texts) {
    owned.push_back(MustCompile(text));
    programs.push_back(owned.back().get());
  }
  const Batch batch(programs);
  TableFiller filler(11);
  for (int t = 0; t < 2000; ++t) {
    FactTable table;
    filler.Fill(&table);
    for (size_t c = 0; c < batch.chunk_count(); ++c) {
      uint64_t true_bits = 0;
      uint64_t undecided_bits = 0;
      batch.EvaluateChunk(c, table.slots(), &true_bits, &undecided_bits);
      for (uint32_t i = 0; i < batch.chunk_size(c); ++i) {
        const uint32_t p = batch.chunk_first(c) + i;
        const Value v = programs[p]->Evaluate(table.slots());
        ASSERT_EQ(v.is_true(), ((true_bits >> i) & 1) != 0) << texts[p];
        ASSERT_EQ(v.undecided(), ((undecided_bits >> i) & 1) != 0) << texts[p];
      }
    }
  }
}

}  // namespace
}  // namespace stepwise::expr::testing
