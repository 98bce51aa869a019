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

void AppendDouble(double d, std::string* out) {
  if (std::isnan(d)) {
    out->append("nan");
    return;
  }
  if (std::isinf(d)) {
    out->append(d > 0 ? "inf" : "-inf");
    return;
  }
  // The shortest text that reads back as the same double.
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), d);
  const std::string_view text(buffer, result.ptr - buffer);
  out->append(text);
  if (text.find_first_of(".e") == std::string_view::npos) out->append(".0");
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

void AppendValue(const Value& value, std::string* out) {
  switch (value.tag) {
    case Tag::kAbsent:
      out->append("<absent>");
      return;
    case Tag::kError:
      absl::StrAppend(
          out, "<error: ", Sv(ErrorCodeName(static_cast<ErrorCode>(value.aux))),
          ">");
      return;
    case Tag::kBool:
      out->append(value.b ? "true" : "false");
      return;
    case Tag::kInt: {
      char buffer[24];
      const auto result =
          std::to_chars(buffer, buffer + sizeof(buffer), value.i);
      out->append(buffer, result.ptr);
      return;
    }
    case Tag::kDouble:
      AppendDouble(value.d, out);
      return;
    case Tag::kString:
      if (value.s == nullptr) {
        out->append("\"\"");
      } else {
        out->append(QuoteString(*value.s));
      }
      return;
    case Tag::kList:
      *out += '[';
      for (uint32_t i = 0; i < value.aux; ++i) {
        if (i > 0) out->append(", ");
        AppendValue(value.elems[i], out);
      }
      *out += ']';
      return;
  }
  out->append("<?>");
}

std::string FormatValue(const Value& value) {
  std::string out;
  AppendValue(value, &out);
  return out;
}

}  // namespace stepwise::expr
