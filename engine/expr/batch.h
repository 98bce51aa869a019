// A batch: many bool programs (a ruleset's conditions) evaluated together
// over one fact table, each to true, false or undecided (CEL's absent or
// error), without calls, allocation or a branch per operand on the common
// path.
//
// The programs are cut into chunks of consecutive programs (up to 63 bits:
// one per program and one per nested chain). A program's root is an && or
// || chain (or a single operand); each operand is a fact compared with a
// constant, a nested chain of such operands (a clause), or any other subtree
// evaluated by the general evaluator. Comparisons are grouped by the
// fact slot they read; at build time every value a slot can hold is mapped
// to one row saying, for each program of the chunk, whether one of its
// operands on that slot takes the chain's deciding value (false for &&,
// true for ||) or is undecided. Evaluating a slot is then one table index
// (int facts with a small range of constants) or a few comparisons (double
// facts), and two ORs; the programs' outcomes follow from the two words by
// CEL's commutative && / ||: a deciding operand wins wherever it is,
// otherwise any absent or error operand leaves the chain undecided.
//
// A slot that holds neither its declared type nor nothing (an int where a
// double was declared, an error) sends its chunk to Program::Evaluate, which
// handles every such case; so does a chunk-less program (not bool).
//
// Immutable after construction; evaluated from any number of threads. The
// programs must outlive the batch.
#ifndef STEPWISE_ENGINE_EXPR_BATCH_H_
#define STEPWISE_ENGINE_EXPR_BATCH_H_

#include <cstdint>
#include <vector>

#include "engine/expr/program.h"
#include "engine/expr/value.h"

namespace stepwise::expr {

class Batch {
 public:
  // Every program must be non-null.
  explicit Batch(const std::vector<const Program*>& programs);
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;
  ~Batch();

  size_t chunk_count() const { return chunks_.size(); }
  // Index of chunk `c`'s first program; its programs are consecutive.
  uint32_t chunk_first(size_t c) const { return chunks_[c].first; }
  uint32_t chunk_size(size_t c) const { return chunks_[c].count; }

  // Evaluates the programs of chunk `c`: bit i of *true_bits (of
  // *undecided_bits) is set when program chunk_first(c) + i is true
  // (undecided: absent or an error). A program that is neither is false or,
  // for a program whose type is not bool, some other value.
  void EvaluateChunk(size_t c, const Value* slots, uint64_t* true_bits,
                     uint64_t* undecided_bits) const;

  // Internal layout, public for the implementation's helpers. Bits 0..n-1
  // of a chunk's words are its programs, the next ones its clauses (a
  // nested chain: `a && (b || c)`, `!(a && b)`), bit 63 a mismatch.
  struct Row {
    uint64_t decisive = 0;   // an operand took its chain's deciding value
    uint64_t undecided = 0;  // an operand was absent or an error
  };
  struct IntGroup {
    uint32_t slot = 0;
    uint32_t rows = 0;  // rows_[rows]: absent, mismatch, then the table
    int64_t base = 0;   // the table's rows are base, base + 1, .., top
    int64_t top = 0;
  };
  struct DoubleGroup {
    uint32_t slot = 0;
    uint32_t rows = 0;  // rows_[rows]: absent, mismatch, then j = 0..4
    double bounds[4];   // x >= bound, ascending; NaN pads
  };
  struct BoolGroup {
    uint32_t slot = 0;
    uint32_t rows = 0;  // rows_[rows + 2 * tag + (bool payload != 0)]
  };
  struct Operand {
    const Program::Impl* plan = nullptr;
    uint32_t node = 0;
    uint32_t bit = 0;
    bool decider = false;  // the value that decides its chain
  };
  struct Clause {
    uint32_t bit = 0;   // the clause's own bit
    uint32_t rule = 0;  // its program's bit
    // Whether the clause decides its program when the clause is decided by
    // an operand (on_decisive), or when every operand took the other value
    // (on_rest).
    bool on_decisive = false;
    bool on_rest = false;
  };
  struct Chunk {
    uint32_t first = 0;
    uint32_t count = 0;
    uint32_t int_begin = 0, int_end = 0;
    uint32_t double_begin = 0, double_end = 0;
    uint32_t bool_begin = 0, bool_end = 0;
    uint32_t operand_begin = 0, operand_end = 0;
    uint32_t clause_begin = 0, clause_end = 0;
    uint64_t and_mask = 0;  // flat && programs (and single operands)
    uint64_t or_mask = 0;   // flat || programs
    uint64_t program_mask = 0;
    bool slow = false;  // a program that is not bool: Program::Evaluate
  };

 private:
  void EvaluateSlowly(const Chunk& chunk, const Value* slots,
                      uint64_t* true_bits, uint64_t* undecided_bits) const;

  std::vector<const Program*> programs_;
  std::vector<Chunk> chunks_;
  std::vector<IntGroup> int_groups_;
  std::vector<DoubleGroup> double_groups_;
  std::vector<BoolGroup> bool_groups_;
  std::vector<Operand> operands_;
  std::vector<Clause> clauses_;
  std::vector<Row> rows_;
};

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_BATCH_H_
