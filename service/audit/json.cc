#include "service/audit/json.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace stepwise::service::audit {

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
// overlongs, no surrogates, nothing past U+10FFFF), or 0 if there is none.
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto byte = [&](size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100;
  };
  const auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    const unsigned b = byte(k);
    return b >= lo && b <= hi;
  };
  const unsigned b0 = byte(0);
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if (b0 == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (b0 >= 0xE1 && b0 <= 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (b0 == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xF1 && b0 <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The first position at or after `pos` that ends a run of plain string
// content (SkipPlainString), or text.size().
size_t SkipPlain(absl::string_view text, size_t pos) {
  const char* const end = text.data() + text.size();
  return static_cast<size_t>(SkipPlainString(text.data() + pos, end) -
                             text.data());
}

// A recursive-descent validator over one input. Values are skipped, not
// built; String() can also decode.
class Scanner {
 public:
  explicit Scanner(absl::string_view text) : text_(text) {}

  size_t pos() const { return pos_; }
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }

  void SkipWhitespace() {
    while (!AtEnd()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at byte ", pos_, ": ", what));
  }

  absl::Status Expect(char c) {
    if (Peek() != c)
      return Error(absl::StrCat("expected '", std::string(1, c), "'"));
    ++pos_;
    return absl::OkStatus();
  }

  absl::Status Value(int depth) {
    if (depth > kMaxJsonDepth) return Error("nested too deeply");
    switch (Peek()) {
      case '{':
        return Object(depth, nullptr);
      case '[':
        return Array(depth);
      case '"':
        return String(nullptr);
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  // Parses an object; when `members` is given, records its members.
  absl::Status Object(int depth, std::vector<JsonMember>* members) {
    if (absl::Status s = Expect('{'); !s.ok()) return s;
    SkipWhitespace();
    if (Peek() == '}') {
      ++pos_;
      return absl::OkStatus();
    }
    for (;;) {
      SkipWhitespace();
      std::string name;
      if (Peek() != '"') return Error("expected a member name");
      if (absl::Status s = String(members ? &name : nullptr); !s.ok()) return s;
      SkipWhitespace();
      if (absl::Status s = Expect(':'); !s.ok()) return s;
      SkipWhitespace();
      const size_t start = pos_;
      if (absl::Status s = Value(depth + 1); !s.ok()) return s;
      if (members != nullptr) {
        members->push_back(
            {std::move(name), text_.substr(start, pos_ - start)});
      }
      SkipWhitespace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      return Expect('}');
    }
  }

  absl::Status Array(int depth) {
    if (absl::Status s = Expect('['); !s.ok()) return s;
    SkipWhitespace();
    if (Peek() == ']') {
      ++pos_;
      return absl::OkStatus();
    }
    for (;;) {
      SkipWhitespace();
      if (absl::Status s = Value(depth + 1); !s.ok()) return s;
      SkipWhitespace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      return Expect(']');
    }
  }

  // Parses a string literal; decodes it into `out` when given.
  absl::Status String(std::string* out) {
    if (absl::Status s = Expect('"'); !s.ok()) return s;
    for (;;) {
      // Record bodies are mostly plain ASCII string content: skip runs of it
      // at once, and look at the byte that ends a run below.
      const size_t run = SkipPlain(text_, pos_);
      if (out != nullptr) out->append(text_.data() + pos_, run - pos_);
      pos_ = run;
      if (AtEnd()) return Error("unterminated string");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return Error("control character in a string");
      }
      if (c == '\\') {
        if (absl::Status s = Escape(out); !s.ok()) return s;
        continue;
      }
      const size_t n = Utf8SequenceLength(text_, pos_);
      if (n == 0) return Error("invalid UTF-8");
      if (out != nullptr) out->append(text_.data() + pos_, n);
      pos_ += n;
    }
  }

 private:
  absl::Status Escape(std::string* out) {
    ++pos_;  // the backslash
    if (AtEnd()) return Error("unterminated escape");
    const char c = text_[pos_++];
    char decoded;
    switch (c) {
      case '"':
      case '\\':
      case '/':
        decoded = c;
        break;
      case 'b':
        decoded = '\b';
        break;
      case 'f':
        decoded = '\f';
        break;
      case 'n':
        decoded = '\n';
        break;
      case 'r':
        decoded = '\r';
        break;
      case 't':
        decoded = '\t';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (absl::Status s = Hex4(&cp); !s.ok()) return s;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return Error("lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low = 0;
          if (text_.substr(pos_, 2) != "\\u")
            return Error("lone high surrogate");
          pos_ += 2;
          if (absl::Status s = Hex4(&low); !s.ok()) return s;
          if (low < 0xDC00 || low > 0xDFFF) return Error("lone high surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        if (out != nullptr) AppendUtf8(cp, out);
        return absl::OkStatus();
      }
      default:
        return Error("invalid escape");
    }
    if (out != nullptr) out->push_back(decoded);
    return absl::OkStatus();
  }

  absl::Status Hex4(uint32_t* cp) {
    if (text_.size() - pos_ < 4) return Error("short \\u escape");
    *cp = 0;
    for (int i = 0; i < 4; ++i) {
      const int d = HexDigit(text_[pos_++]);
      if (d < 0) return Error("bad hex digit in \\u escape");
      *cp = (*cp << 4) | static_cast<uint32_t>(d);
    }
    return absl::OkStatus();
  }

  absl::Status Literal(absl::string_view word) {
    if (text_.substr(pos_, word.size()) != word)
      return Error("unexpected token");
    pos_ += word.size();
    return absl::OkStatus();
  }

  absl::Status Number() {
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
    } else if (IsDigit(Peek())) {
      while (IsDigit(Peek())) ++pos_;
    } else {
      return Error("expected a value");
    }
    if (Peek() == '.') {
      ++pos_;
      if (!IsDigit(Peek())) return Error("expected a digit after '.'");
      while (IsDigit(Peek())) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!IsDigit(Peek())) return Error("expected a digit in the exponent");
      while (IsDigit(Peek())) ++pos_;
    }
    return absl::OkStatus();
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

void Indent(int level, std::string* out) {
  out->push_back('\n');
  out->append(static_cast<size_t>(level) * 2, ' ');
}

}  // namespace

absl::Status ValidateJson(absl::string_view text) {
  Scanner scanner(text);
  scanner.SkipWhitespace();
  if (absl::Status s = scanner.Value(0); !s.ok()) return s;
  scanner.SkipWhitespace();
  if (!scanner.AtEnd()) return scanner.Error("trailing characters");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<JsonMember>> SplitJsonObject(
    absl::string_view text) {
  Scanner scanner(text);
  scanner.SkipWhitespace();
  if (scanner.Peek() != '{') return scanner.Error("expected an object");
  std::vector<JsonMember> members;
  if (absl::Status s = scanner.Object(0, &members); !s.ok()) return s;
  scanner.SkipWhitespace();
  if (!scanner.AtEnd()) return scanner.Error("trailing characters");
  return members;
}

std::string JsonQuote(absl::string_view s) {
  std::string out;
  AppendJsonQuoted(s, &out);
  return out;
}

void AppendJsonQuoted(absl::string_view s, std::string* out_ptr) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string& out = *out_ptr;
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else if (c < 0x80) {
          out.push_back(static_cast<char>(c));
        } else {
          const size_t n = Utf8SequenceLength(s, i);
          if (n == 0) {
            out += "\xEF\xBF\xBD";  // U+FFFD
            ++i;
          } else {
            out.append(s.data() + i, n);
            i += n;
          }
          continue;
        }
    }
    ++i;
  }
  out.push_back('"');
}

absl::StatusOr<std::string> JsonUnquote(absl::string_view raw) {
  Scanner scanner(raw);
  std::string out;
  if (absl::Status s = scanner.String(&out); !s.ok()) return s;
  if (!scanner.AtEnd()) return scanner.Error("trailing characters");
  return out;
}

std::string JsonPretty(absl::string_view json) {
  std::string out;
  int level = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < json.size()) {
        out.push_back(json[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        out.push_back(c);
        break;
      case '{':
      case '[': {
        size_t next = i + 1;
        while (next < json.size() &&
               (json[next] == ' ' || json[next] == '\t' || json[next] == '\n' ||
                json[next] == '\r')) {
          ++next;
        }
        const char close = c == '{' ? '}' : ']';
        out.push_back(c);
        if (next < json.size() && json[next] == close) {
          out.push_back(close);
          i = next;
        } else {
          Indent(++level, &out);
        }
        break;
      }
      case '}':
      case ']':
        level = level > 0 ? level - 1 : 0;  // tolerate unbalanced input
        Indent(level, &out);
        out.push_back(c);
        break;
      case ',':
        out.push_back(',');
        Indent(level, &out);
        break;
      case ':':
        out += ": ";
        break;
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        break;
      default:
        out.push_back(c);
    }
  }
  out.push_back('\n');
  return out;
}

}  // namespace stepwise::service::audit
