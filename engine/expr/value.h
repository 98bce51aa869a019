// Runtime values of the expression language and the static types the checker
// assigns. A Value is 16 bytes, trivially copyable and never owns memory:
// strings and list elements point into storage owned by the compiled bundle
// (labels, literals) or by the request's FactTable (flags). Evaluating a
// compiled expression therefore never allocates.
#ifndef STEPWISE_ENGINE_EXPR_VALUE_H_
#define STEPWISE_ENGINE_EXPR_VALUE_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace stepwise::expr {

// Static types. Lists are homogeneous: list(int), list(double),
// list(string), list(bool).
enum class Kind : uint8_t { kBool, kInt, kDouble, kString, kList };

struct Type {
  Kind kind = Kind::kBool;
  Kind elem = Kind::kBool;  // element kind, meaningful only for kList

  static constexpr Type Bool() { return {Kind::kBool, Kind::kBool}; }
  static constexpr Type Int() { return {Kind::kInt, Kind::kBool}; }
  static constexpr Type Double() { return {Kind::kDouble, Kind::kBool}; }
  static constexpr Type String() { return {Kind::kString, Kind::kBool}; }
  static constexpr Type List(Kind elem) { return {Kind::kList, elem}; }

  bool is_numeric() const {
    return kind == Kind::kInt || kind == Kind::kDouble;
  }
  friend bool operator==(const Type& a, const Type& b) {
    return a.kind == b.kind && (a.kind != Kind::kList || a.elem == b.elem);
  }
  // "int", "double", "bool", "string", "list(int)", ...
  std::string ToString() const;
};

// Why an evaluation produced no value (CEL's error value).
enum class ErrorCode : uint32_t {
  kNone = 0,
  kIntegerOverflow,
  kDivisionByZero,
  kModulusByZero,
  kInvalidArgument,  // e.g. a list element that is itself absent
  // A fact slot holds a value of another type than its declaration: a bug in
  // whoever filled the fact table, reported rather than misread.
  kTypeMismatch,
};
std::string_view ErrorCodeName(ErrorCode code);

enum class Tag : uint8_t {
  kAbsent = 0,
  kError,
  kBool,
  kInt,
  kDouble,
  kString,
  kList
};

inline constexpr uint32_t kNoSlot = 0xFFFFFFFFu;

struct Value {
  Tag tag = Tag::kAbsent;
  // kAbsent: the fact slot that was absent (kNoSlot if unknown);
  // kError: an ErrorCode; kList: the element count.
  uint32_t aux = kNoSlot;
  union {
    bool b;
    int64_t i;
    double d;
    const std::string* s;
    const Value* elems;
  };

  Value() : i(0) {}
  static Value Absent(uint32_t slot = kNoSlot) {
    Value v;
    v.tag = Tag::kAbsent;
    v.aux = slot;
    return v;
  }
  static Value Error(ErrorCode code) {
    Value v;
    v.tag = Tag::kError;
    v.aux = static_cast<uint32_t>(code);
    return v;
  }
  static Value Bool(bool x) {
    Value v;
    v.tag = Tag::kBool;
    v.b = x;
    return v;
  }
  static Value Int(int64_t x) {
    Value v;
    v.tag = Tag::kInt;
    v.i = x;
    return v;
  }
  static Value Double(double x) {
    Value v;
    v.tag = Tag::kDouble;
    v.d = x;
    return v;
  }
  // `str` must outlive every use of the value.
  static Value String(const std::string* str) {
    Value v;
    v.tag = Tag::kString;
    v.s = str;
    return v;
  }
  // `elems` must outlive every use of the value.
  static Value List(const Value* elems, uint32_t count) {
    Value v;
    v.tag = Tag::kList;
    v.aux = count;
    v.elems = elems;
    return v;
  }

  // Absent or error: the value could not be decided.
  bool undecided() const { return tag == Tag::kAbsent || tag == Tag::kError; }
  bool is_true() const { return tag == Tag::kBool && b; }
  bool is_false() const { return tag == Tag::kBool && !b; }
};

static_assert(sizeof(Value) == 16, "Value must stay two words");

}  // namespace stepwise::expr

#endif  // STEPWISE_ENGINE_EXPR_VALUE_H_
