// Just enough JSON for the audit log: a strict RFC 8259 validator that splits
// an object into its top-level members without building a tree (record lines
// are hashed as bytes, so they are never re-serialized), string quoting and
// unquoting, and an indenting printer for `stepwise audit show`.
//
// Messages inside records are (de)serialized with protobuf's JSON util; this
// file only deals with the record's outer object.
//
// Thread-safety: free functions without state.
#ifndef STEPWISE_SERVICE_AUDIT_JSON_H_
#define STEPWISE_SERVICE_AUDIT_JSON_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stepwise::service::audit {

// The first byte at or after `p` that ends a run of plain string content —
// '"', '\\', a control character or any non-ASCII byte (which a scanner
// checks as UTF-8 one by one) — or `end`. Record lines are mostly string
// content, so this looks at 16 bytes at a time where SSE2 is there (every
// x86-64). Inline: the validator and replay's reader call it per string.
inline const char* SkipPlainString(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // As signed bytes, control characters and every byte >= 0x80 are < 0x20.
    const __m128i stop = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
        _mm_cmplt_epi8(v, space));
    const int mask = _mm_movemask_epi8(stop);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
    ++p;
  }
  return p;
}

// Deepest nesting the validator accepts; deeper input is rejected rather than
// risking the stack.
inline constexpr int kMaxJsonDepth = 64;

struct JsonMember {
  std::string name;         // unescaped
  absl::string_view value;  // the raw value text, a view into the input
};

// Validates that `text` is exactly one JSON value (surrounding whitespace
// allowed). INVALID_ARGUMENT naming the byte offset otherwise.
absl::Status ValidateJson(absl::string_view text);

// Validates `text` as one JSON object and returns its top-level members in
// order (duplicates kept).
absl::StatusOr<std::vector<JsonMember>> SplitJsonObject(absl::string_view text);

// `s` as a JSON string literal, quotes included. Bytes that are not valid
// UTF-8 become U+FFFD so that the output is always valid JSON.
std::string JsonQuote(absl::string_view s);
// The same, appended to `out`.
void AppendJsonQuoted(absl::string_view s, std::string* out);

// The value of a raw JSON string literal (as in JsonMember::value).
absl::StatusOr<std::string> JsonUnquote(absl::string_view raw);

// `json` (which must be valid) indented by two spaces per level, tokens
// unchanged, with a final line feed.
std::string JsonPretty(absl::string_view json);

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
// overlongs, no surrogates, nothing past U+10FFFF), or 0 if there is none.
size_t Utf8SequenceLength(absl::string_view s, size_t i);

// Appends code point `cp` (at most U+10FFFF, not a surrogate) as UTF-8.
void AppendUtf8(uint32_t cp, std::string* out);

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_JSON_H_
