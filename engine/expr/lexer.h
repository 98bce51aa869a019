// Internal: turns expression text into tokens. The whole text is tokenized up
// front (it is at most Limits::max_length bytes); the first malformed token
// ends lexing with one Issue. Safe on any input.
#ifndef STEPWISE_ENGINE_EXPR_LEXER_H_
#define STEPWISE_ENGINE_EXPR_LEXER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/expr/program.h"

namespace stepwise::expr {

enum class Tok : uint8_t {
  kEnd,
  kInt,     // `magnitude` (the sign is a separate '-')
  kDouble,  // `double_value`
  kString,  // `str`, escapes decoded
  kIdent,   // `str`
  kTrue,
  kFalse,
  kIn,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kLBrace,
  kRBrace,
  kComma,
  kDot,
  kQuestion,
  kColon,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
  kNot,
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  kAnd,
  kOr,
};

struct Token {
  Tok kind = Tok::kEnd;
  uint32_t begin = 0;  // byte offsets into the text
  uint32_t end = 0;
  // kInt: the literal's magnitude; `magnitude_overflow` when it exceeds
  // 2^64 - 1 (it is out of range either way).
  uint64_t magnitude = 0;
  bool magnitude_overflow = false;
  double double_value = 0;
  std::string str;
};

// "')'", "'&&'", "end of expression", "identifier 'x'", ... for messages.
std::string DescribeToken(const Token& token);

// Appends the tokens of `text` (ending with a kEnd token) to `tokens`.
// Returns false, with one issue appended, at the first malformed token.
bool Lex(std::string_view text, std::vector<Token>* tokens,
         std::vector<Issue>* issues);

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_LEXER_H_
