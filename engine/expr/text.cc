#include "engine/expr/text.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace stepwise::expr {

Issue IssueAt(std::string_view text, size_t offset, std::string message) {
  Issue issue;
  offset = std::min(offset, text.size());
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  issue.line = line;
  issue.column = static_cast<int>(offset - line_start) + 1;
  issue.message = std::move(message);
  return issue;
}

namespace {

// Length of the well-formed sequence at text[i], or 0 when malformed.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) -> uint8_t {
    return k < text.size() ? static_cast<uint8_t>(text[k]) : 0;
  };
  const uint8_t b0 = byte(i);
  const auto cont = [&](size_t k) { return (byte(k) & 0xC0) == 0x80; };
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const uint8_t b1 = byte(i + 1);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b0 == 0xED && b1 > 0x9F) return 0;  // surrogate
    return cont(i + 1) && cont(i + 2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const uint8_t b1 = byte(i + 1);
    if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b0 == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
    return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  }
  return 0;
}

}  // namespace

size_t FindInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

uint32_t DecodeUtf8(std::string_view text, size_t offset, size_t* length) {
  const size_t n = Utf8SequenceLength(text, offset);
  if (n == 0) {
    *length = 1;
    return 0xFFFD;
  }
  *length = n;
  const auto b = [&](size_t k) {
    return static_cast<uint32_t>(static_cast<uint8_t>(text[offset + k]));
  };
  switch (n) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) |
             ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

int64_t CountCodePoints(std::string_view text) {
  int64_t count = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = Utf8SequenceLength(text, i);
    i += n == 0 ? 1 : n;
    ++count;
  }
  return count;
}

std::string QuoteString(std::string_view text) {
  std::string out = "\"";
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    const size_t n = Utf8SequenceLength(text, i);
    if (n > 1) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default: {
        const auto u = static_cast<uint8_t>(c);
        if (n == 0 || u < 0x20 || u == 0x7F) {
          absl::StrAppendFormat(&out, "\\x%02X", u);
        } else {
          out += c;
        }
      }
    }
    ++i;
  }
  out += '"';
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b, size_t limit) {
  const size_t gap =
      a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
  if (gap > limit) return limit + 1;
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    size_t row_min = row[0];
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = up;
      row_min = std::min(row_min, row[j]);
    }
    if (row_min > limit) return limit + 1;
  }
  return std::min(row[b.size()], limit + 1);
}

std::string NearestName(std::string_view word,
                        const std::vector<std::string>& candidates) {
  // Short names tolerate one typo, longer ones up to three.
  const size_t limit = word.size() <= 4 ? 1 : word.size() <= 8 ? 2 : 3;
  std::string best;
  size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    if (candidate == word) continue;
    const size_t d = EditDistance(word, candidate, limit);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

}  // namespace stepwise::expr
