// Internal: small helpers over expression text shared by the lexer, parser,
// checker and explanations: byte offsets to line and column, UTF-8
// validation, quoting, and the edit distance behind "did you mean" hints.
// Stateless and thread-safe.
#ifndef STEPWISE_ENGINE_EXPR_TEXT_H_
#define STEPWISE_ENGINE_EXPR_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/expr/program.h"

namespace stepwise::expr {

// Debian 12's Abseil keeps its own string_view type; absl::StrCat takes a
// std::string_view through this.
inline absl::string_view Sv(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// An Issue at byte `offset` of `text` (1-based line and byte column).
Issue IssueAt(std::string_view text, size_t offset, std::string message);

// The offset of the first byte that is not part of well-formed UTF-8
// (overlong forms, surrogates and code points above U+10FFFF included), or
// std::string_view::npos when the whole text is well formed.
size_t FindInvalidUtf8(std::string_view text);

// Decodes the well-formed UTF-8 sequence at text[offset]; sets *length to its
// byte count. Returns U+FFFD (length 1) for a malformed byte.
uint32_t DecodeUtf8(std::string_view text, size_t offset, size_t* length);

// Code points in `text`, counting each malformed byte as one.
int64_t CountCodePoints(std::string_view text);

// A double-quoted literal: \\ \" \n \t \r escaped, other control characters
// and malformed UTF-8 bytes as \xHH.
std::string QuoteString(std::string_view text);

// Levenshtein distance, or `limit + 1` once it is known to exceed `limit`.
size_t EditDistance(std::string_view a, std::string_view b, size_t limit);

// The candidate nearest to `word` when it is close enough to be a likely
// typo; empty otherwise. Ties go to the first candidate.
std::string NearestName(std::string_view word,
                        const std::vector<std::string>& candidates);

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_TEXT_H_
