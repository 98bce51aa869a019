#include "engine/expr/value.h"

#include <charconv>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/expr/program.h"
#include "engine/expr/text.h"

namespace stepwise::expr {
namespace {

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kDouble:
      return "double";
    case Kind::kString:
      return "string";
    case Kind::kList:
      return "list";
  }
  return "?";
}

std::string FormatDouble(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // The shortest text that reads back as the same double.
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), d);
  std::string text(buffer, result.ptr);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

}  // namespace

std::string Type::ToString() const {
  if (kind == Kind::kList)
    return absl::StrCat("list(", Sv(KindName(elem)), ")");
  return std::string(KindName(kind));
}

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNone:
      return "no error";
    case ErrorCode::kIntegerOverflow:
      return "integer overflow";
    case ErrorCode::kDivisionByZero:
      return "division by zero";
    case ErrorCode::kModulusByZero:
      return "modulus by zero";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kTypeMismatch:
      return "fact value of the wrong type";
  }
  return "unknown error";
}

std::string FormatValue(const Value& value) {
  switch (value.tag) {
    case Tag::kAbsent:
      return "<absent>";
    case Tag::kError:
      return absl::StrCat(
          "<error: ", Sv(ErrorCodeName(static_cast<ErrorCode>(value.aux))),
          ">");
    case Tag::kBool:
      return value.b ? "true" : "false";
    case Tag::kInt:
      return absl::StrCat(value.i);
    case Tag::kDouble:
      return FormatDouble(value.d);
    case Tag::kString:
      return value.s == nullptr ? "\"\"" : QuoteString(*value.s);
    case Tag::kList: {
      std::string out = "[";
      for (uint32_t i = 0; i < value.aux; ++i) {
        if (i > 0) out += ", ";
        out += FormatValue(value.elems[i]);
      }
      out += "]";
      return out;
    }
  }
  return "<?>";
}

}  // namespace stepwise::expr
