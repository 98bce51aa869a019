// A batch: many bool programs (a ruleset's conditions) evaluated together
// over one fact table, each to true, false or undecided (CEL's absent or
// error), without calls, allocation or a branch per operand on the common
// path.
//
// The programs are cut into chunks of consecutive programs (up to 63 bits:
// one per program, then the nested chains in layers: the j-th nested chain
// of every program that has one, at a fixed offset from its program's bit,
// so a layer folds into the programs with a shift and a few masks). A
// program's root is an && or || chain (or a single operand); each operand
// is a fact compared with a constant, a nested chain of such operands (a
// clause), or any other subtree evaluated by the general evaluator.
// Comparisons are grouped by the fact slot they read; at build time every
// value a slot can hold is mapped to one row saying, for each program of
// the chunk, whether one of its operands on that slot takes the chain's
// deciding value (false for &&, true for ||) or is undecided. Evaluating a
// slot is then one or two comparisons (a slot with one or two
// breakpoints), a clamped table index (an int slot with more) or up to four
// comparisons (a double slot with more), plus its tag, and two ORs; the
// programs' outcomes follow from the two words by CEL's commutative && /
// ||: a deciding operand wins wherever it is, otherwise any absent or error
// operand leaves the chain undecided. Each kind of slot test is a packed
// record in a loop of its own, and the whole evaluation of a chunk is
// inline (Evaluate) for the caller's hot loop.
//
// A slot that holds neither its declared type nor nothing (an int where a
// double was declared, an error) sends its chunk to Program::Evaluate, which
// handles every such case; so does a chunk-less program (not bool).
//
// Immutable after construction; evaluated from any number of threads. The
// programs must outlive the batch; the batch may be moved (its records
// point into its own vectors, whose storage a move keeps).
#ifndef STEPWISE_ENGINE_EXPR_BATCH_H_
#define STEPWISE_ENGINE_EXPR_BATCH_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "engine/expr/program.h"
#include "engine/expr/value.h"

namespace stepwise::expr {

class Batch {
 public:
  // Every program must be non-null. `labels`, if given, holds one small
  // number (0..7) per program; MaxLabel reports the highest among a chunk's
  // programs without a loop over them (Decide labels rules by severity).
  explicit Batch(const std::vector<const Program*>& programs,
                 const std::vector<uint8_t>& labels = {});
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;
  ~Batch();

  // Bit of a chunk's undecided word that marks a slot holding an unexpected
  // type.
  static constexpr uint64_t kMismatch = uint64_t{1} << 63;

  size_t program_count() const { return programs_.size(); }
  size_t chunk_count() const { return chunks_.size(); }
  // Chunk-level access for the hot loop of a caller (Decide): the chunk
  // records, EvaluateChunk on one of them.
  struct Chunk;
  const std::vector<Chunk>& chunks() const { return chunks_; }
  // Index of chunk `c`'s first program; its programs are consecutive.
  uint32_t chunk_first(size_t c) const { return chunks_[c].first; }
  uint32_t chunk_size(size_t c) const { return chunks_[c].count; }

  // Evaluates the programs of chunk `c`: bit i of *true_bits (of
  // *undecided_bits) is set when program chunk_first(c) + i is true
  // (undecided: absent or an error). A program that is neither is false or,
  // for a program whose type is not bool, some other value.
  void EvaluateChunk(size_t c, const Value* slots, uint64_t* true_bits,
                     uint64_t* undecided_bits) const {
    const Outcome outcome = Evaluate(chunks_[c], slots);
    *true_bits = outcome.true_bits;
    *undecided_bits = outcome.undecided_bits;
  }
  // The same, by value (no address taken: the words stay in registers).
  // Inline (below): Decide runs it once per chunk.
  struct Outcome {
    uint64_t true_bits;
    uint64_t undecided_bits;
  };
  Outcome Evaluate(const Chunk& chunk, const Value* slots) const;

  // The highest label of the programs of chunk `c` whose bit is set in
  // `bits` (0 when none is).
  uint32_t MaxLabel(size_t c, uint64_t bits) const {
    const Chunk& chunk = chunks_[c];
    uint32_t label = 0;
    const uint8_t* table = chunk.labels;
    for (uint32_t k = 0; k < chunk.count; k += 8, bits >>= 8, table += 256) {
      label = std::max<uint32_t>(label, table[bits & 0xff]);
    }
    return label;
  }

  // Internal layout, public for the implementation's helpers. Bits 0..n-1
  // of a chunk's words are its programs, the next ones its clauses (a
  // nested chain: `a && (b || c)`, `!(a && b)`), bit 63 a mismatch.
  //
  // A row is an index into decisive_ and undecided_ (kept apart so that a
  // row is one scaled index into each): which bits an operand decided
  // (took its chain's deciding value: false for &&, true for ||) and which
  // it left undecided. Rows come in blocks of eight, one per tag (& 7), so
  // a slot's tag picks its row by addition: absent, the declared type, or
  // any other type (the mismatch bit).
  struct IntTest {
    int64_t base = 0;  // the slot's value is clamped to [base, top]
    int64_t top = 0;
    const uint32_t* blocks = nullptr;  // by value - base: a block's first row
    uint32_t slot = 0;                 // byte offset of the slot
  };
  struct DoubleTest {
    double bounds[4];   // x >= bound, ascending; NaN pads
    uint32_t slot = 0;  // byte offset of the slot
    uint32_t rows = 0;  // blocks for 0..4 bounds held, eight rows apart
  };
  // A slot with one or two breakpoints: `x > cut` for each (an unused cut
  // is kInt64Max, which nothing passes); how many pass picks the block.
  struct IntPair {
    int64_t cuts[2];
    uint32_t slot = 0;  // byte offset of the slot
    uint32_t rows = 0;  // blocks for 0..2 cuts passed, eight rows apart
  };
  // A slot with one or two bounds: `x >= bound` (NaN pads).
  struct DoublePair {
    double bounds[2];
    uint32_t slot = 0;  // byte offset of the slot
    uint32_t rows = 0;  // blocks for 0..2 bounds held, eight rows apart
  };
  struct BoolTest {
    uint32_t slot = 0;  // byte offset of the slot
    uint32_t rows = 0;  // rows + 2 * (tag & 7) + (bool payload != 0)
  };
  struct Operand {
    const Program::Impl* plan = nullptr;
    uint32_t node = 0;
    uint32_t bit = 0;
    bool decider = false;  // the value that decides its chain
  };
  // The j-th nested chain of every program that has one, folded into the
  // programs at once: program p's clause sits at bit shift + p.
  struct Layer {
    uint32_t shift = 0;
    uint64_t mask = 0;  // programs with a clause in this layer
    // Programs that the clause decides when an operand decided the clause
    // (on_decisive), or when every operand took the other value (on_rest).
    uint64_t on_decisive = 0;
    uint64_t on_rest = 0;
  };
  struct Chunk {
    uint32_t first = 0;
    uint32_t count = 0;
    // The chunk's tests, as [begin, end) into the batch's vectors (set
    // once they stop growing).
    const IntTest* ints = nullptr;
    const IntTest* ints_end = nullptr;
    const DoubleTest* doubles = nullptr;
    const DoubleTest* doubles_end = nullptr;
    const IntPair* int_pairs = nullptr;
    const IntPair* int_pairs_end = nullptr;
    const DoublePair* double_pairs = nullptr;
    const DoublePair* double_pairs_end = nullptr;
    const BoolTest* bools = nullptr;
    const BoolTest* bools_end = nullptr;
    const Layer* layers = nullptr;
    const Layer* layers_end = nullptr;
    uint32_t int_begin = 0, int_end = 0;
    uint32_t double_begin = 0, double_end = 0;
    uint32_t int_pair_begin = 0, int_pair_end = 0;
    uint32_t double_pair_begin = 0, double_pair_end = 0;
    uint32_t bool_begin = 0, bool_end = 0;
    uint32_t operand_begin = 0, operand_end = 0;
    uint32_t layer_begin = 0, layer_end = 0;
    uint64_t and_mask = 0;  // flat && programs (and single operands)
    uint64_t or_mask = 0;   // flat || programs
    uint64_t program_mask = 0;
    // For byte k of a chunk's bits (programs 8k..8k+7), 256 entries: the
    // highest label among the programs set in that byte.
    const uint8_t* labels = nullptr;
    uint32_t labels_begin = 0;
    bool slow = false;  // a program that is not bool: Program::Evaluate
  };
  static_assert(sizeof(IntTest) == 32 && sizeof(DoubleTest) == 40);

 private:
  Outcome EvaluateSlowly(const Chunk& chunk, const Value* slots) const;
  // The operands that are neither a comparison with a constant, a has() nor
  // a bool fact: each through the general evaluator.
  // Returns the decisive word; the undecided one in *undecided. (Neither
  // the caller's words have their address taken, so they stay in
  // registers.)
  uint64_t EvaluateOperands(const Chunk& chunk, const Value* slots,
                            uint64_t* undecided) const;

  std::vector<const Program*> programs_;
  std::vector<Chunk> chunks_;
  std::vector<IntTest> int_tests_;
  std::vector<DoubleTest> double_tests_;
  std::vector<IntPair> int_pairs_;
  std::vector<DoublePair> double_pairs_;
  std::vector<BoolTest> bool_tests_;
  std::vector<Operand> operands_;
  std::vector<Layer> layers_;
  std::vector<uint64_t> decisive_;
  std::vector<uint64_t> undecided_;
  std::vector<uint32_t> blocks_;  // IntTest::blocks point into it
  std::vector<uint8_t> labels_;   // Chunk::labels point into it
};

ABSL_ATTRIBUTE_ALWAYS_INLINE inline Batch::Outcome Batch::Evaluate(
    const Chunk& chunk, const Value* slots) const {
  if (ABSL_PREDICT_FALSE(chunk.slow)) return EvaluateSlowly(chunk, slots);
  // Slots by byte offset, so that a test's slot is one addition away.
  const char* const base = reinterpret_cast<const char*>(slots);
  const uint64_t* const decisive_rows = decisive_.data();
  const uint64_t* const undecided_rows = undecided_.data();
  uint64_t decisive = 0;
  uint64_t undecided = 0;
  // A slot's tag picks its row within the block without a branch: the tag
  // of a fact is as unpredictable as the fact.
  for (const IntTest* t = chunk.ints; t != chunk.ints_end; ++t) {
    const Value& v = *reinterpret_cast<const Value*>(base + t->slot);
    int64_t x;
    std::memcpy(&x, &v.i, sizeof x);
    const int64_t clamped = std::min(std::max(x, t->base), t->top);
    const uint64_t row = t->blocks[static_cast<uint64_t>(clamped - t->base)] +
                         (static_cast<uint64_t>(v.tag) & 7);
    decisive |= decisive_rows[row];
    undecided |= undecided_rows[row];
  }
  for (const DoubleTest* t = chunk.doubles; t != chunk.doubles_end; ++t) {
    const Value& v = *reinterpret_cast<const Value*>(base + t->slot);
    double x;
    std::memcpy(&x, &v.i, sizeof x);
    const uint64_t held = static_cast<uint64_t>(x >= t->bounds[0]) +
                          static_cast<uint64_t>(x >= t->bounds[1]) +
                          static_cast<uint64_t>(x >= t->bounds[2]) +
                          static_cast<uint64_t>(x >= t->bounds[3]);
    const uint64_t row =
        t->rows + held * 8 + (static_cast<uint64_t>(v.tag) & 7);
    decisive |= decisive_rows[row];
    undecided |= undecided_rows[row];
  }
  for (const IntPair* t = chunk.int_pairs; t != chunk.int_pairs_end; ++t) {
    const Value& v = *reinterpret_cast<const Value*>(base + t->slot);
    int64_t x;
    std::memcpy(&x, &v.i, sizeof x);
    const uint64_t passed = static_cast<uint64_t>(x > t->cuts[0]) +
                            static_cast<uint64_t>(x > t->cuts[1]);
    const uint64_t row =
        t->rows + passed * 8 + (static_cast<uint64_t>(v.tag) & 7);
    decisive |= decisive_rows[row];
    undecided |= undecided_rows[row];
  }
  for (const DoublePair* t = chunk.double_pairs; t != chunk.double_pairs_end;
       ++t) {
    const Value& v = *reinterpret_cast<const Value*>(base + t->slot);
    double x;
    std::memcpy(&x, &v.i, sizeof x);
    const uint64_t held = static_cast<uint64_t>(x >= t->bounds[0]) +
                          static_cast<uint64_t>(x >= t->bounds[1]);
    const uint64_t row =
        t->rows + held * 8 + (static_cast<uint64_t>(v.tag) & 7);
    decisive |= decisive_rows[row];
    undecided |= undecided_rows[row];
  }
  for (const BoolTest* t = chunk.bools; t != chunk.bools_end; ++t) {
    const Value& v = *reinterpret_cast<const Value*>(base + t->slot);
    uint8_t payload;
    std::memcpy(&payload, &v.i, sizeof payload);
    const uint64_t row = t->rows + (static_cast<uint64_t>(v.tag) & 7) * 2 +
                         static_cast<uint64_t>(payload != 0);
    decisive |= decisive_rows[row];
    undecided |= undecided_rows[row];
  }
  if (chunk.operand_begin != chunk.operand_end) {
    uint64_t u;
    decisive |= EvaluateOperands(chunk, slots, &u);
    undecided |= u;
  }
  if (ABSL_PREDICT_FALSE(undecided & kMismatch)) {
    return EvaluateSlowly(chunk, slots);
  }
  // Nested chains, a layer at a time: a clause decided by an operand, or
  // one whose every operand took the other value, may decide its program;
  // an undecided clause that decides nothing leaves it undecided.
  for (const Layer* l = chunk.layers; l != chunk.layers_end; ++l) {
    const uint64_t d = (decisive >> l->shift) & l->mask;
    const uint64_t u = (undecided >> l->shift) & l->mask;
    decisive |= (d & l->on_decisive) | (~d & ~u & l->on_rest);
    undecided |= ~d & u;
  }
  // && : a false operand decides, else an undecided one leaves it
  // undecided, else true. || : the same with true and false exchanged.
  return Outcome{
      (decisive & chunk.or_mask) | (~decisive & ~undecided & chunk.and_mask),
      ~decisive & undecided & chunk.program_mask};
}

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_BATCH_H_
