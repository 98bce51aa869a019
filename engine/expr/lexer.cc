#include "engine/expr/lexer.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/expr/text.h"

namespace stepwise::expr {
namespace {

// CEL's reserved words: not usable as names even where CEL would not use
// them, so that texts written for this subset stay valid CEL.
constexpr std::array<std::string_view, 17> kReserved = {
    "as",        "break",  "const",  "continue", "else", "for",
    "function",  "if",     "import", "let",      "loop", "package",
    "namespace", "return", "var",    "void",     "while"};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }

class Lexer {
 public:
  Lexer(std::string_view text, std::vector<Token>* tokens,
        std::vector<Issue>* issues)
      : text_(text), tokens_(tokens), issues_(issues) {}

  bool Run() {
    while (true) {
      SkipSpaceAndComments();
      if (pos_ >= text_.size()) break;
      if (!Next()) return false;
    }
    Token end;
    end.kind = Tok::kEnd;
    end.begin = end.end = static_cast<uint32_t>(text_.size());
    tokens_->push_back(std::move(end));
    return true;
  }

 private:
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  bool AtEnd(size_t ahead = 0) const { return pos_ + ahead >= text_.size(); }

  bool Fail(size_t offset, std::string message) {
    issues_->push_back(IssueAt(text_, offset, std::move(message)));
    return false;
  }

  void Emit(Tok kind, size_t begin) {
    Token t;
    t.kind = kind;
    t.begin = static_cast<uint32_t>(begin);
    t.end = static_cast<uint32_t>(pos_);
    tokens_->push_back(std::move(t));
  }

  void SkipSpaceAndComments() {
    while (!AtEnd()) {
      const char c = Peek();
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
        ++pos_;
      } else if (c == '/' && Peek(1) == '/') {
        while (!AtEnd() && Peek() != '\n') ++pos_;
      } else {
        return;
      }
    }
  }

  bool Next() {
    const size_t begin = pos_;
    const char c = Peek();
    if (IsDigit(c) || (c == '.' && IsDigit(Peek(1)))) return Number();
    if (IsIdentStart(c)) return Identifier();
    if (c == '"' || c == '\'') return String();
    const auto two = [&](char second) { return Peek(1) == second; };
    Tok kind;
    size_t length = 1;
    switch (c) {
      case '(':
        kind = Tok::kLParen;
        break;
      case ')':
        kind = Tok::kRParen;
        break;
      case '[':
        kind = Tok::kLBracket;
        break;
      case ']':
        kind = Tok::kRBracket;
        break;
      case '{':
        kind = Tok::kLBrace;
        break;
      case '}':
        kind = Tok::kRBrace;
        break;
      case ',':
        kind = Tok::kComma;
        break;
      case '.':
        kind = Tok::kDot;
        break;
      case '?':
        kind = Tok::kQuestion;
        break;
      case ':':
        kind = Tok::kColon;
        break;
      case '+':
        kind = Tok::kPlus;
        break;
      case '-':
        kind = Tok::kMinus;
        break;
      case '*':
        kind = Tok::kStar;
        break;
      case '/':
        kind = Tok::kSlash;
        break;
      case '%':
        kind = Tok::kPercent;
        break;
      case '!':
        kind = two('=') ? Tok::kNe : Tok::kNot;
        length = two('=') ? 2 : 1;
        break;
      case '<':
        kind = two('=') ? Tok::kLe : Tok::kLt;
        length = two('=') ? 2 : 1;
        break;
      case '>':
        kind = two('=') ? Tok::kGe : Tok::kGt;
        length = two('=') ? 2 : 1;
        break;
      case '=':
        if (!two('=')) {
          return Fail(begin, "'=' is not an operator: compare with '=='");
        }
        kind = Tok::kEq;
        length = 2;
        break;
      case '&':
        if (!two('&')) return Fail(begin, "'&' is not an operator: use '&&'");
        kind = Tok::kAnd;
        length = 2;
        break;
      case '|':
        if (!two('|')) return Fail(begin, "'|' is not an operator: use '||'");
        kind = Tok::kOr;
        length = 2;
        break;
      default:
        return UnexpectedCharacter(begin);
    }
    pos_ += length;
    Emit(kind, begin);
    return true;
  }

  bool UnexpectedCharacter(size_t at) {
    const auto u = static_cast<uint8_t>(text_[at]);
    if (u >= 0x21 && u < 0x7F) {
      return Fail(at, absl::StrCat("unexpected character '",
                                   Sv(text_.substr(at, 1)), "'"));
    }
    size_t length = 1;
    const uint32_t code_point = DecodeUtf8(text_, at, &length);
    if (u < 0x80) {
      return Fail(at, absl::StrFormat("unexpected character U+%04X", u));
    }
    return Fail(at, absl::StrFormat("unexpected character '%s' (U+%04X)",
                                    text_.substr(at, length), code_point));
  }

  bool Number() {
    const size_t begin = pos_;
    bool is_double = false;
    if (Peek() == '0' && (Peek(1) == 'x' || Peek(1) == 'X')) {
      if (Peek(1) == 'X') {
        return Fail(begin, "hexadecimal numbers start with a lowercase '0x'");
      }
      pos_ += 2;
      if (!IsHexDigit(Peek())) {
        return Fail(begin, "'0x' must be followed by hexadecimal digits");
      }
      Token t;
      t.kind = Tok::kInt;
      while (IsHexDigit(Peek())) {
        const char h = Peek();
        const uint64_t digit = IsDigit(h)               ? h - '0'
                               : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                                                        : h - 'A' + 10;
        if (t.magnitude > (UINT64_MAX >> 4)) t.magnitude_overflow = true;
        t.magnitude = (t.magnitude << 4) | digit;
        ++pos_;
      }
      return FinishNumber(begin, std::move(t));
    }
    while (IsDigit(Peek())) ++pos_;
    if (Peek() == '.') {
      if (!IsDigit(Peek(1))) {
        return Fail(pos_,
                    absl::StrCat("a number cannot end with '.': write ",
                                 Sv(text_.substr(begin, pos_ - begin)), ".0"));
      }
      is_double = true;
      ++pos_;
      while (IsDigit(Peek())) ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      const size_t e = pos_;
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (!IsDigit(Peek()))
        return Fail(e, "the exponent of a number has no digits");
      while (IsDigit(Peek())) ++pos_;
      is_double = true;
    }
    Token t;
    const std::string_view digits = text_.substr(begin, pos_ - begin);
    if (is_double) {
      t.kind = Tok::kDouble;
      double value = 0;
      const auto r =
          std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (r.ec == std::errc::result_out_of_range) {
        // Underflow reads as zero (or a subnormal), as in CEL; overflow is
        // a mistake.
        const std::string copy(digits);
        value = std::strtod(copy.c_str(), nullptr);
        if (std::isinf(value)) {
          return Fail(begin,
                      absl::StrCat("number ", Sv(digits), " is out of range"));
        }
      } else if (r.ec != std::errc() ||
                 r.ptr != digits.data() + digits.size()) {
        return Fail(begin, absl::StrCat("malformed number ", Sv(digits)));
      }
      t.double_value = value;
    } else {
      t.kind = Tok::kInt;
      for (char d : digits) {
        const uint64_t digit = static_cast<uint64_t>(d - '0');
        if (t.magnitude > (UINT64_MAX - digit) / 10)
          t.magnitude_overflow = true;
        t.magnitude = t.magnitude * 10 + digit;
      }
    }
    return FinishNumber(begin, std::move(t));
  }

  bool FinishNumber(size_t begin, Token t) {
    if (t.kind == Tok::kInt && (Peek() == 'u' || Peek() == 'U') &&
        !IsIdentChar(Peek(1))) {
      return Fail(begin, "uint literals are not supported: write an int");
    }
    if (IsIdentChar(Peek()) || Peek() == '.') {
      return Fail(begin,
                  absl::StrCat("malformed number starting ",
                               Sv(text_.substr(begin, pos_ - begin + 1))));
    }
    t.begin = static_cast<uint32_t>(begin);
    t.end = static_cast<uint32_t>(pos_);
    tokens_->push_back(std::move(t));
    return true;
  }

  bool Identifier() {
    const size_t begin = pos_;
    while (IsIdentChar(Peek())) ++pos_;
    const std::string_view word = text_.substr(begin, pos_ - begin);
    if (Peek() == '"' || Peek() == '\'') {
      std::string lower;
      for (char c : word) lower += static_cast<char>(c | 0x20);
      if (lower == "b" || lower == "rb" || lower == "br") {
        return Fail(begin, "bytes literals are not supported");
      }
      if (lower == "r") return Fail(begin, "raw strings are not supported");
    }
    if (word == "true") return Emit(Tok::kTrue, begin), true;
    if (word == "false") return Emit(Tok::kFalse, begin), true;
    if (word == "in") return Emit(Tok::kIn, begin), true;
    if (word == "null") return Fail(begin, "null is not supported");
    for (std::string_view reserved : kReserved) {
      if (word == reserved) {
        return Fail(begin, absl::StrCat("'", Sv(word),
                                        "' is a reserved word, not a name"));
      }
    }
    Token t;
    t.kind = Tok::kIdent;
    t.begin = static_cast<uint32_t>(begin);
    t.end = static_cast<uint32_t>(pos_);
    t.str = std::string(word);
    tokens_->push_back(std::move(t));
    return true;
  }

  bool String() {
    const size_t begin = pos_;
    const char quote = Peek();
    if (Peek(1) == quote && Peek(2) == quote) {
      return Fail(begin, "triple-quoted strings are not supported");
    }
    ++pos_;
    Token t;
    t.kind = Tok::kString;
    while (true) {
      if (AtEnd() || Peek() == '\n' || Peek() == '\r') {
        return Fail(begin, "unterminated string (a string ends on its line)");
      }
      const char c = Peek();
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\') {
        t.str += c;
        ++pos_;
        continue;
      }
      const char e = Peek(1);
      switch (e) {
        case '\\':
          t.str += '\\';
          break;
        case '"':
          t.str += '"';
          break;
        case '\'':
          t.str += '\'';
          break;
        case 'n':
          t.str += '\n';
          break;
        case 't':
          t.str += '\t';
          break;
        case 'r':
          t.str += '\r';
          break;
        default: {
          if (AtEnd(1) || e == '\n' || e == '\r') {
            return Fail(begin,
                        "unterminated string (a string ends on its line)");
          }
          size_t length = 1;
          DecodeUtf8(text_, pos_ + 1, &length);
          return Fail(pos_, absl::StrCat(
                                "escape sequence '\\",
                                Sv(text_.substr(pos_ + 1, length)),
                                "' is not supported (use \\\\, \\\", \\', \\n, "
                                "\\t or \\r)"));
        }
      }
      pos_ += 2;
    }
    t.begin = static_cast<uint32_t>(begin);
    t.end = static_cast<uint32_t>(pos_);
    tokens_->push_back(std::move(t));
    return true;
  }

  std::string_view text_;
  std::vector<Token>* tokens_;
  std::vector<Issue>* issues_;
  size_t pos_ = 0;
};

}  // namespace

std::string DescribeToken(const Token& token) {
  switch (token.kind) {
    case Tok::kEnd:
      return "end of expression";
    case Tok::kInt:
      return "a number";
    case Tok::kDouble:
      return "a number";
    case Tok::kString:
      return "a string";
    case Tok::kIdent:
      return absl::StrCat("'", token.str, "'");
    case Tok::kTrue:
      return "'true'";
    case Tok::kFalse:
      return "'false'";
    case Tok::kIn:
      return "'in'";
    case Tok::kLParen:
      return "'('";
    case Tok::kRParen:
      return "')'";
    case Tok::kLBracket:
      return "'['";
    case Tok::kRBracket:
      return "']'";
    case Tok::kLBrace:
      return "'{'";
    case Tok::kRBrace:
      return "'}'";
    case Tok::kComma:
      return "','";
    case Tok::kDot:
      return "'.'";
    case Tok::kQuestion:
      return "'?'";
    case Tok::kColon:
      return "':'";
    case Tok::kPlus:
      return "'+'";
    case Tok::kMinus:
      return "'-'";
    case Tok::kStar:
      return "'*'";
    case Tok::kSlash:
      return "'/'";
    case Tok::kPercent:
      return "'%'";
    case Tok::kNot:
      return "'!'";
    case Tok::kLt:
      return "'<'";
    case Tok::kLe:
      return "'<='";
    case Tok::kGt:
      return "'>'";
    case Tok::kGe:
      return "'>='";
    case Tok::kEq:
      return "'=='";
    case Tok::kNe:
      return "'!='";
    case Tok::kAnd:
      return "'&&'";
    case Tok::kOr:
      return "'||'";
  }
  return "a token";
}

bool Lex(std::string_view text, std::vector<Token>* tokens,
         std::vector<Issue>* issues) {
  return Lexer(text, tokens, issues).Run();
}

}  // namespace stepwise::expr
