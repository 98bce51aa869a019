#include "tools/replay_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

// The scans below read 16 bytes at a time with SSE2 where the compiler has
// it (every x86-64), and a byte at a time elsewhere (arm64, say).
// STEPWISE_PORTABLE_SCAN builds the byte-at-a-time paths on x86-64 too, so
// that the tests run what other CPUs run (tests/tools/CMakeLists.txt).
#if defined(__SSE2__) && !defined(STEPWISE_PORTABLE_SCAN)
#define STEPWISE_SCAN_SSE2 1
#include <emmintrin.h>
#endif

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "engine/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/timestamp.pb.h"
#include "service/audit/format.h"
#include "service/audit/json.h"
#include "service/audit/record.h"

namespace stepwise::tools {
namespace {

namespace audit = ::stepwise::service::audit;

using Kind = ReplayLine::Kind;

// Nesting deeper than this goes to the exact parser (which allows
// audit::kMaxJsonDepth); records are five levels deep.
constexpr int kMaxDepth = 32;

#if !defined(STEPWISE_SCAN_SSE2)
constexpr std::array<bool, 256> kLowerHex = [] {
  std::array<bool, 256> hex{};
  for (int c = 0; c < 256; ++c)
    hex[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  return hex;
}();
#endif

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z", the form protobuf's JSON printer and the
// audit writer use; anything else (offsets, lowercase, leap seconds) is left
// to the exact parser.
bool ParseUtcTime(absl::string_view s, int64_t* seconds, int32_t* nanos) {
  if (s.size() < 20) return false;
  // The fixed part's fourteen digits, with no bounds check or early exit
  // per digit: any byte that is no digit sets `bad`.
  unsigned bad = 0;
  const auto digit = [&s, &bad](size_t i) {
    const unsigned v = static_cast<unsigned char>(s[i]) - unsigned{'0'};
    bad |= v > 9 ? 1u : 0u;
    return static_cast<int>(v);
  };
  const int y = digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3);
  const int mo = digit(5) * 10 + digit(6);
  const int d = digit(8) * 10 + digit(9);
  const int h = digit(11) * 10 + digit(12);
  const int mi = digit(14) * 10 + digit(15);
  const int sec = digit(17) * 10 + digit(18);
  if (bad != 0 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':') {
    return false;
  }
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h > 23 ||
      mi > 59 || sec > 59) {
    return false;
  }
  size_t pos = 19;
  int32_t n = 0;
  if (s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && IsDigit(s[pos])) {
      if (++digits > 9) return false;
      n = n * 10 + (s[pos] - '0');
      ++pos;
    }
    if (digits == 0) return false;
    for (int k = digits; k < 9; ++k) n *= 10;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return false;
  *seconds = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  *nanos = n;
  return true;
}

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::FieldDescriptor;

// A name's first eight bytes, zero-padded: the head NameHash and the lookups
// compare before anything else.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t NameHead(absl::string_view name) {
  uint64_t head = 0;
  std::memcpy(&head, name.data(), std::min<size_t>(name.size(), 8));
  return head;
}

// A name's hash, eight bytes at a time, mixed so that a sum of hashes (an
// item set's signature, FastReaderScratch) tells sets apart; `*head` gets
// the name's first eight bytes, zero-padded. Inline: it runs for every
// member name and item of a record.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t NameMix(uint64_t h,
                                                     uint64_t chunk) {
  h = (h ^ chunk) * 0xff51afd7ed558ccdu;
  return h ^ (h >> 32);
}
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t NameFinish(uint64_t h) {
  h *= 0xc4ceb9fe1a85ec53u;
  return h ^ (h >> 29);
}
// NameHash of a name of `size` <= 8 bytes whose head is `head`.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t ShortNameHash(size_t size,
                                                           uint64_t head) {
  return NameFinish(NameMix(0x9e3779b97f4a7c15u ^ size, head));
}
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t NameHash(absl::string_view name,
                                                      uint64_t* head) {
  *head = NameHead(name);
  uint64_t h = NameMix(0x9e3779b97f4a7c15u ^ name.size(), *head);
  while (name.size() > 8) {
    name.remove_prefix(8);
    h = NameMix(h, NameHead(name));
  }
  return NameFinish(h);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t NameHash(absl::string_view name) {
  uint64_t head;
  return NameHash(name, &head);
}

// For two names of the same size whose first eight bytes are equal: true
// when the rest is equal too. Names of up to 16 bytes (nearly all) are
// compared by their last eight bytes, without a call to memcmp.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool SameTail(absl::string_view a,
                                                  absl::string_view b) {
  const size_t n = a.size();
  if (n <= 8) return true;
  if (n <= 16) {
    uint64_t x;
    uint64_t y;
    std::memcpy(&x, a.data() + n - 8, 8);
    std::memcpy(&y, b.data() + n - 8, 8);
    return x == y;
  }
  return std::memcmp(a.data() + 8, b.data() + 8, n - 8) == 0;
}

// Names -> small numbers, found by their NameHash with open addressing: the
// reader's one lookup table, for a message's member names and for a pooled
// assessment's item names.
class NameIndex {
 public:
  // Empties the index and makes room for `expected` names.
  void Reset(size_t expected) {
    entries_.clear();
    entries_.reserve(expected);
    size_t capacity = 8;
    while (capacity < 2 * expected) capacity *= 2;
    slots_.assign(capacity, 0);
  }

  // Adds `name`, which is not in the index yet, with `value`. At most as
  // many names as Reset made room for.
  void Add(absl::string_view name, uint32_t value) {
    uint64_t head;
    const uint64_t hash = NameHash(name, &head);
    entries_.push_back({std::string(name), hash, head, value});
    const size_t mask = slots_.size() - 1;
    size_t slot = hash & mask;
    while (slots_[slot] != 0) slot = (slot + 1) & mask;
    slots_[slot] = static_cast<uint32_t>(entries_.size());
  }

  // The value of `name`, whose NameHash gave `hash` and `head`; -1 when
  // the name is not in the index.
  int64_t Find(absl::string_view name, uint64_t hash, uint64_t head) const {
    const size_t mask = slots_.size() - 1;
    for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
      const uint32_t entry = slots_[slot];
      if (entry == 0) return -1;
      const Entry& e = entries_[entry - 1];
      // Names of up to eight bytes are told apart by head and size alone.
      if (e.hash == hash && e.head == head && e.name.size() == name.size() &&
          SameTail(e.name, name)) {
        return e.value;
      }
    }
  }
  int64_t Find(absl::string_view name) const {
    uint64_t head;
    const uint64_t hash = NameHash(name, &head);
    return Find(name, hash, head);
  }

 private:
  struct Entry {
    std::string name;
    uint64_t hash;
    uint64_t head;
    uint32_t value;
  };
  std::vector<Entry> entries_;
  // A power of two at least twice the names: an entry's index + 1, or 0.
  std::vector<uint32_t> slots_;
};

// An enum's value names -> numbers.
using EnumValues = absl::flat_hash_map<std::string, int>;

class MessageShape;

// A field of a message as the reader checks it, worked out once from its
// descriptor so that reading a value asks the descriptor nothing.
struct FieldShape {
  enum class Check : uint8_t {
    kInt32,
    kUint32,
    kInt64,
    kUint64,
    kDouble,
    kBool,
    kEnum,
    kString,
    kTimestamp,
    kMessage,
    kUnsupported,  // maps, oneofs, floats, bytes, other well-known types
  };
  const FieldDescriptor* field = nullptr;
  int index = 0;   // the field's index in its message (< 64)
  int number = 0;  // the field's number
  Check check = Check::kUnsupported;
  bool repeated = false;
  const MessageShape* message = nullptr;    // for kMessage
  const EnumValues* enum_values = nullptr;  // for kEnum
  // The proto name (the one the audit log writes) and its NameHash head,
  // for MessageShape::FindNext.
  absl::string_view name;
  uint64_t name_head = 0;
};

// A message's fields, found by the member names protobuf's JSON parser
// accepts (the proto name and the lowerCamelCase JSON name).
class MessageShape {
 public:
  explicit MessageShape(const Descriptor* type) {
    fields_.resize(static_cast<size_t>(type->field_count()));
    for (int i = 0; i < type->field_count(); ++i) {
      fields_[static_cast<size_t>(i)].field = type->field(i);
      fields_[static_cast<size_t>(i)].index = i;
      fields_[static_cast<size_t>(i)].number = type->field(i)->number();
      fields_[static_cast<size_t>(i)].name = type->field(i)->name();
      fields_[static_cast<size_t>(i)].name_head =
          NameHead(type->field(i)->name());
    }
    names_.Reset(2 * fields_.size());
    for (const FieldShape& f : fields_) {
      const uint32_t index = static_cast<uint32_t>(f.index);
      names_.Add(f.field->name(), index);
      if (f.field->json_name() != f.field->name())
        names_.Add(f.field->json_name(), index);
    }
  }

  std::vector<FieldShape>& fields() { return fields_; }

  // Null for a name that is no field of the message.
  const FieldShape* Find(absl::string_view name) const {
    const int64_t index = names_.Find(name);
    return index < 0 ? nullptr : &fields_[static_cast<size_t>(index)];
  }

  // Find, for the members of one object read in turn: `*cursor` (0 before
  // the first member) is one past the field found last. Printers write
  // fields in declaration order and leave empty ones out, so the name is
  // first compared with the few fields after the last one found; only a
  // name out of that order is hashed.
  ABSL_ATTRIBUTE_ALWAYS_INLINE const FieldShape* FindNext(
      absl::string_view name, size_t* cursor) const {
    const uint64_t head = NameHead(name);
    const size_t stop = std::min(*cursor + kLookAhead, fields_.size());
    for (size_t k = *cursor; k < stop; ++k) {
      const FieldShape& f = fields_[k];
      if (f.name_head == head && f.name.size() == name.size() &&
          SameTail(f.name, name)) {
        *cursor = k + 1;
        return &f;
      }
    }
    const FieldShape* f = Find(name);
    if (f != nullptr) *cursor = static_cast<size_t>(f->index) + 1;
    return f;
  }

 private:
  static constexpr size_t kLookAhead = 4;
  std::vector<FieldShape> fields_;  // never resized after construction
  NameIndex names_;                 // proto and JSON names -> field index
};

// The shapes of every message a decision record's outcome can hold, built
// once and then only read (so shared by all workers without a lock).
class ShapeRegistry {
 public:
  ShapeRegistry() {
    Add(v1::Decision::descriptor());
    Add(v1::RulesetRef::descriptor());
    for (auto& entry : shapes_) Resolve(entry.second.get());
    action_ = &enums_.at(v1::Action_descriptor());
  }
  // Null for a message this registry does not know.
  const MessageShape* Of(const Descriptor* type) const {
    const auto it = shapes_.find(type);
    return it == shapes_.end() ? nullptr : it->second.get();
  }
  const EnumValues& Actions() const { return *action_; }

 private:
  void Add(const Descriptor* type) {
    if (shapes_.contains(type) || type->field_count() > 64) return;
    shapes_.emplace(type, std::make_unique<MessageShape>(type));
    for (int i = 0; i < type->field_count(); ++i) {
      if (const Descriptor* nested = type->field(i)->message_type())
        Add(nested);
      if (const EnumDescriptor* e = type->field(i)->enum_type();
          e && !enums_.contains(e)) {
        for (int k = 0; k < e->value_count(); ++k)
          enums_[e][e->value(k)->name()] = e->value(k)->number();
      }
    }
  }

  // How each field of `shape` is checked (the form protobuf's printer
  // writes: the strict subset of what its parser accepts).
  void Resolve(MessageShape* shape) {
    using Check = FieldShape::Check;
    using CppType = FieldDescriptor::CppType;
    for (FieldShape& f : shape->fields()) {
      const FieldDescriptor* field = f.field;
      f.repeated = field->is_repeated();
      if (field->is_map() || field->containing_oneof() != nullptr) {
        f.check = Check::kUnsupported;
        continue;
      }
      switch (field->cpp_type()) {
        case CppType::CPPTYPE_INT32:
          f.check = Check::kInt32;
          break;
        case CppType::CPPTYPE_UINT32:
          f.check = Check::kUint32;
          break;
        case CppType::CPPTYPE_INT64:
          f.check = Check::kInt64;
          break;
        case CppType::CPPTYPE_UINT64:
          f.check = Check::kUint64;
          break;
        case CppType::CPPTYPE_DOUBLE:
          f.check = Check::kDouble;
          break;
        case CppType::CPPTYPE_BOOL:
          f.check = Check::kBool;
          break;
        case CppType::CPPTYPE_ENUM:
          f.check = Check::kEnum;
          f.enum_values = &enums_.at(field->enum_type());
          break;
        case CppType::CPPTYPE_STRING:
          f.check = field->type() == FieldDescriptor::TYPE_STRING
                        ? Check::kString
                        : Check::kUnsupported;
          break;
        case CppType::CPPTYPE_MESSAGE: {
          const Descriptor* type = field->message_type();
          if (type == google::protobuf::Timestamp::descriptor()) {
            f.check = Check::kTimestamp;
          } else if (type->file()->package() == "google.protobuf") {
            f.check = Check::kUnsupported;  // other well-known types
          } else if (const MessageShape* nested = Of(type)) {
            f.check = Check::kMessage;
            f.message = nested;
          }
          break;
        }
        default:
          f.check =
              Check::kUnsupported;  // float: range checks left to protobuf
          break;
      }
    }
  }

  absl::flat_hash_map<const Descriptor*, std::unique_ptr<MessageShape>> shapes_;
  absl::flat_hash_map<const EnumDescriptor*, EnumValues> enums_;
  const EnumValues* action_ = nullptr;
};

const ShapeRegistry& Shapes() {
  static const auto* registry = new ShapeRegistry();
  return *registry;
}

}  // namespace

// The fast reader's state kept from line to line: the request it fills in
// place, a pool of assessments each keeping the item map of its last use,
// and the buffers it decodes into. Once the pool has seen each set of item
// names a log uses (a handful: one per instrument), a line costs no
// allocation and no map insert, only a hash and a store per item answer.
class FastReaderScratch {
 public:
  // An item answer of the assessment being read: its name (a view into the
  // line, or into key_bytes when the name held escapes), its value and the
  // name's hash.
  struct Item {
    absl::string_view name;
    int32_t value = 0;
    uint64_t hash = 0;
    uint64_t head = 0;  // the name's first eight bytes, zero-padded
    // For a name decoded into key_bytes: where it starts there (the view is
    // made once the object is read, as key_bytes may grow meanwhile).
    size_t decoded_at = absl::string_view::npos;
  };

  // One pooled assessment. While in use the request owns `message`; while
  // free, `owned` does.
  struct Pooled {
    v1::Assessment* message = nullptr;
    std::unique_ptr<v1::Assessment> owned;
    // True while message's item map holds exactly the names in `names`,
    // the name numbered i with its value at values[i] (a protobuf Map never
    // moves its elements).
    bool valid = false;
    uint64_t signature = 0;  // ItemSignature of the names
    NameIndex names;
    std::vector<int32_t*> values;
    // marks[i] == mark while name i has been matched in the current Match.
    std::vector<uint32_t> marks;
    uint32_t mark = 0;
  };

  // Assessments kept beyond those of the current record: a log uses a few
  // sets of item names, each a few times per record.
  static constexpr size_t kMaxPooled = 64;

  FastReaderScratch() = default;
  FastReaderScratch(const FastReaderScratch&) = delete;
  FastReaderScratch& operator=(const FastReaderScratch&) = delete;

  // Before a decision record: every assessment back to the pool and the
  // request's other fields empty. as_of is kept (to be reused) and cleared
  // by the reader when the record has none.
  void Reset() {
    auto* assessments = request.mutable_assessments();
    while (!in_use.empty()) {
      Pooled* p = in_use.back();
      in_use.pop_back();
      p->owned.reset(assessments->ReleaseLast());
      free_list.push_back(p);
    }
    request.clear_request_id();
    request.clear_subject_id();
    request.clear_current_step();
    request.clear_weeks_at_step();
    request.mutable_flags()->Clear();
    subject.clear();
  }

  // The order-independent signature of `items`' names: the sum of their
  // hashes. Equal sets have equal signatures; Match checks every name.
  uint64_t ItemSignature() const {
    uint64_t sum = 0;
    for (const Item& item : items()) sum += item.hash;
    return sum;
  }

  // Appends a pooled assessment to the request: one whose map holds the
  // names of `items` when the pool has one (its values are then stored and
  // *ready is true), else any other, whose map the caller must fill.
  Pooled* Take(bool* ready) {
    const uint64_t signature = ItemSignature();
    Pooled* p = nullptr;
    for (size_t i = free_list.size(); i-- > 0;) {
      Pooled* f = free_list[i];
      if (f->valid && f->signature == signature &&
          f->values.size() == item_count && Match(f)) {
        p = f;
        free_list[i] = free_list.back();
        free_list.pop_back();
        break;
      }
    }
    *ready = p != nullptr;
    // A miss takes a fresh assessment while the pool is small, so that the
    // maps it holds (those a later assessment of this record may want) are
    // not rebuilt for another set of names.
    if (p == nullptr && !free_list.empty() && pool.size() >= kMaxPooled) {
      p = free_list.back();
      free_list.pop_back();
    }
    if (p == nullptr) {
      pool.push_back(std::make_unique<Pooled>());
      p = pool.back().get();
      p->owned = std::make_unique<v1::Assessment>();
      p->message = p->owned.get();
    }
    request.mutable_assessments()->AddAllocated(p->owned.release());
    in_use.push_back(p);
    return p;
  }

  // Fills `p`'s item map anew from `items`. False when a name is given
  // twice (the object would be unreadable as a map).
  static bool Fill(Pooled* p, absl::Span<const Item> items) {
    p->valid = false;
    p->values.clear();
    p->names.Reset(items.size());
    p->signature = 0;
    auto* map = p->message->mutable_items();
    map->clear();
    for (const Item& item : items) {
      const auto [it, inserted] =
          map->insert({std::string(item.name), item.value});
      if (!inserted) return false;
      p->names.Add(item.name, static_cast<uint32_t>(p->values.size()));
      p->values.push_back(&it->second);
      p->signature += item.hash;
    }
    p->marks.assign(items.size(), 0);
    p->mark = 0;
    p->valid = true;
    return true;
  }

  // True when `items` are exactly p's names (none twice); their values are
  // then stored in p's map. On false some of p's values may have been
  // overwritten, which is harmless: a later match stores every value.
  bool Match(Pooled* p) {
    if (++p->mark == 0) {
      std::fill(p->marks.begin(), p->marks.end(), 0);
      p->mark = 1;
    }
    // Raw pointers: the stores below could otherwise alias the vectors'
    // own pointers, which would be reloaded for every item.
    uint32_t* const marks = p->marks.data();
    int32_t* const* const values = p->values.data();
    const uint32_t mark = p->mark;
    for (const Item& item : items()) {
      const int64_t i = p->names.Find(item.name, item.hash, item.head);
      if (i < 0 || marks[i] == mark) {
        return false;  // not among p's names, or given twice
      }
      marks[i] = mark;
      *values[i] = item.value;
    }
    return true;
  }

  v1::EvaluateRequest request;
  std::vector<std::unique_ptr<Pooled>> pool;
  std::vector<Pooled*> free_list;
  std::vector<Pooled*> in_use;  // in the order of request.assessments()

  // The assessment being read: its instrument and its items as read (names
  // with escapes decoded into key_bytes).
  std::string instrument;
  std::string key_bytes;
  size_t item_count = 0;
  std::vector<Item> item_store;  // items() and room for more, never shrunk
  size_t item_room = 0;          // item_store.size()

  absl::Span<Item> items() { return {item_store.data(), item_count}; }
  absl::Span<const Item> items() const {
    return {item_store.data(), item_count};
  }
  // A new, empty item after the others. Not emplace_back: that is a call per
  // item answer (its growing path keeps it out of line), this an index.
  Item& NewItem() {
    if (item_count == item_room) {
      item_store.resize(item_count + 16);
      item_room = item_store.size();
    }
    Item& item = item_store[item_count++];
    item = Item();
    return item;
  }

  std::string name;     // a member name with escapes, decoded
  std::string subject;  // the record's keyed subject hash

  // The last time text the reader parsed (30 bytes: nanoseconds and all)
  // and its value.
  struct LastTime {
    char text[30];
    size_t size = 0;  // 0: none
    int64_t seconds = 0;
    int32_t nanos = 0;
  };
  LastTime last_time;
};

namespace {

// name == constant, inlined: with the constant's size known where it is
// compiled the comparison is a load or two (absl's operator== is a call).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool Is(absl::string_view name,
                                            absl::string_view constant) {
  return name.size() == constant.size() &&
         std::memcmp(name.data(), constant.data(), constant.size()) == 0;
}

Kind KindOf(absl::string_view kind) {
  if (Is(kind, audit::kKindDecision)) return Kind::kDecision;
  if (Is(kind, audit::kKindActivation)) return Kind::kActivation;
  if (Is(kind, audit::kKindShadow)) return Kind::kShadow;
  return Kind::kOther;
}

// One pass over one record line. Every method returns false on anything it
// does not recognise; the caller then hands the line to the exact parser.
class FastLineReader {
 public:
  FastLineReader(absl::string_view line, FastReaderScratch* scratch)
      : p_(line.data()), end_(line.data() + line.size()), s_(*scratch) {}

  bool Read(ReplayLine* out) {
    uint64_t seq;
    absl::string_view kind;
    absl::string_view time;
    int64_t seconds;
    int32_t nanos;
    if (!Literal("{\"seq\":") || !Seq(&seq) || !Literal(",\"kind\":") ||
        !RawString(&kind) || kind.empty() || !Literal(",\"time\":") ||
        !RawString(&time) || !UtcTime(time, &seconds, &nanos)) {
      return false;
    }
    out->kind = KindOf(kind);
    engine::RecordedDecision* d = &out->decision;
    const bool decision = out->kind == Kind::kDecision;
    if (decision) {
      d->ClearOutcome();
      s_.Reset();
      d->set_request_view(&s_.request);
    } else {
      d->Clear();
    }
    d->seq = seq;
    enum : unsigned {
      kDecisionId = 1,
      kRequest = 2,
      kRuleset = 4,
      kOutcome = 8,
      kSubject = 16
    };
    unsigned seen = 0;
    const auto once = [&seen](unsigned bit) {
      if (seen & bit) return false;
      seen |= bit;
      return true;
    };
    while (Consume(',')) {
      // Raw names only: the exact parser wants the line's last members
      // spelled exactly ,"prev_hash":"...","hash":"..."}.
      absl::string_view name;
      if (!RawString(&name) || !Consume(':')) return false;
      if (Is(name, "prev_hash")) {
        if (!HashLiteral() || !Literal(",\"hash\":") || !HashLiteral() ||
            !Consume('}') || p_ != end_) {
          return false;
        }
        if (decision) {
          if ((seen & kRequest) == 0) s_.request.clear_as_of();
          if (s_.request.subject_id().empty())
            s_.request.set_subject_id(s_.subject);
        }
        return true;
      }
      if (Is(name, "seq") || Is(name, "kind") || Is(name, "time") ||
          Is(name, "hash"))
        return false;
      bool ok;
      if (!decision) {
        ok = SkipValue(2);
      } else if (Is(name, "decision_id")) {
        ok = once(kDecisionId) && String(&d->decision_id);
      } else if (Is(name, "subject")) {
        ok = once(kSubject) && String(&s_.subject);
      } else if (Is(name, "principal") || Is(name, "previous_sha256")) {
        ok = String(nullptr);
      } else if (Is(name, "request")) {
        ok = once(kRequest) && Request(&s_.request, 2);
      } else if (Is(name, "ruleset")) {
        ok = once(kRuleset) && Ruleset(&d->ruleset_sha256, 2);
      } else if (Is(name, "decision")) {
        ok = once(kOutcome) && Outcome(d, 2);
      } else {
        ok = SkipValue(2);
      }
      if (!ok) return false;
    }
    return false;  // no prev_hash and hash at the end
  }

 private:
  bool Consume(char c) {
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }

  bool Literal(absl::string_view text) {
    if (static_cast<size_t>(end_ - p_) < text.size() ||
        std::memcmp(p_, text.data(), text.size()) != 0) {
      return false;
    }
    p_ += text.size();
    return true;
  }

  // A string literal; its value is appended to `*out` unless out is null.
  bool String(std::string* out) {
    if (!Consume('"')) return false;
    const char* run = p_;
    while (true) {
      p_ = audit::SkipPlainString(p_, end_);
      if (p_ >= end_) return false;
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        if (out != nullptr) out->append(run, p_);
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c >= 0x80) {
        const size_t n = audit::Utf8SequenceLength(
            absl::string_view(p_, static_cast<size_t>(end_ - p_)), 0);
        if (n == 0) return false;
        p_ += n;
        continue;
      }
      // A backslash.
      if (out != nullptr) out->append(run, p_);
      ++p_;
      if (!Escape(out)) return false;
      run = p_;
    }
  }

  bool Escape(std::string* out) {
    if (p_ >= end_) return false;
    char c = *p_++;
    switch (c) {
      case '"':
      case '\\':
      case '/':
        break;
      case 'b':
        c = '\b';
        break;
      case 'f':
        c = '\f';
        break;
      case 'n':
        c = '\n';
        break;
      case 'r':
        c = '\r';
        break;
      case 't':
        c = '\t';
        break;
      case 'u': {
        uint32_t cp;
        if (!Hex4(&cp) || (cp >= 0xDC00 && cp <= 0xDFFF)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low;
          if (!Literal("\\u") || !Hex4(&low) || low < 0xDC00 || low > 0xDFFF)
            return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        if (out != nullptr) audit::AppendUtf8(cp, out);
        return true;
      }
      default:
        return false;
    }
    if (out != nullptr) out->push_back(c);
    return true;
  }

  bool Hex4(uint32_t* out) {
    if (end_ - p_ < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = HexValue(p_[i]);
      if (h < 0) return false;
      v = v * 16 + static_cast<uint32_t>(h);
    }
    p_ += 4;
    *out = v;
    return true;
  }

  // A string literal without escapes, as a view into the line.
  bool RawString(absl::string_view* out) {
    if (!Consume('"')) return false;
    const char* start = p_;
    while (true) {
      p_ = audit::SkipPlainString(p_, end_);
      if (p_ >= end_) return false;
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c < 0x80) return false;  // an escape or a control character
      const size_t n = audit::Utf8SequenceLength(
          absl::string_view(p_, static_cast<size_t>(end_ - p_)), 0);
      if (n == 0) return false;
      p_ += n;
    }
    *out = absl::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }

  // A member name and its colon. A name with escapes is decoded into name_,
  // which the caller must be done with before it reads the next name.
  bool Name(absl::string_view* name) {
    const char* start = p_;
    if (!RawString(name)) {
      p_ = start;
      s_.name.clear();
      if (!String(&s_.name)) return false;
      *name = s_.name;
    }
    return Consume(':');
  }

  // `"` + 64 lowercase hex digits + `"`, as the audit log writes hashes.
  bool HashLiteral() {
    if (end_ - p_ < 66 || p_[0] != '"' || p_[65] != '"') return false;
    const char* digits = p_ + 1;
    p_ += 66;
#if defined(STEPWISE_SCAN_SSE2)
    // A byte is '0'-'9' or 'a'-'f' when, less the range's first byte, it is
    // at most the range's width as an unsigned byte.
    const auto in_range = [](__m128i v, char first, char last) {
      const __m128i t = _mm_sub_epi8(v, _mm_set1_epi8(first));
      const __m128i width = _mm_set1_epi8(static_cast<char>(last - first));
      return _mm_cmpeq_epi8(_mm_min_epu8(t, width), t);
    };
    __m128i all = _mm_set1_epi8(-1);
    for (int k = 0; k < 64; k += 16) {
      const __m128i v =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(digits + k));
      all = _mm_and_si128(
          all, _mm_or_si128(in_range(v, '0', '9'), in_range(v, 'a', 'f')));
    }
    return _mm_movemask_epi8(all) == 0xFFFF;
#else
    unsigned bad = 0;
    for (int i = 0; i < 64; ++i)
      bad |= !kLowerHex[static_cast<unsigned char>(digits[i])];
    return bad == 0;
#endif
  }

  // A JSON number's text.
  bool NumberToken(absl::string_view* token) {
    const char* start = p_;
    Consume('-');
    if (p_ >= end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    } else {
      return false;
    }
    if (Consume('.')) {
      if (p_ >= end_ || !IsDigit(*p_)) return false;
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (!Consume('+')) Consume('-');
      if (p_ >= end_ || !IsDigit(*p_)) return false;
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    }
    *token = absl::string_view(start, static_cast<size_t>(p_ - start));
    return true;
  }

  // An integer written plainly (no fraction, exponent or quotes), in range.
  bool Integer(int64_t min, int64_t max, int64_t* out) {
    absl::string_view token;
    if (!NumberToken(&token)) return false;
    const bool negative = token[0] == '-';
    const absl::string_view digits = token.substr(negative ? 1 : 0);
    if (digits.size() > 18) return false;  // fits int64 below
    int64_t v = 0;
    for (char c : digits) {
      if (!IsDigit(c)) return false;
      v = v * 10 + (c - '0');
    }
    v = negative ? -v : v;
    if (v < min || v > max) return false;
    *out = v;
    return true;
  }

  bool Int32(int32_t* out) {
    // Most of a log's integers are item answers: one digit, then ',' or '}'.
    if (end_ - p_ >= 2 && IsDigit(p_[0]) && (p_[1] == ',' || p_[1] == '}')) {
      *out = p_[0] - '0';
      ++p_;
      return true;
    }
    // Then: up to nine digits (always in range), no leading zero, not
    // followed by anything that would continue a number. Anything else
    // takes the general path below.
    const char* q = p_;
    const bool negative = q < end_ && *q == '-';
    q += negative;
    const char* const digits = q;
    int32_t n = 0;
    while (q < end_ && q - digits < 9 && IsDigit(*q)) {
      n = n * 10 + (*q - '0');
      ++q;
    }
    const bool plain =
        q > digits && (*digits != '0' || q - digits == 1) &&
        (q == end_ || (!IsDigit(*q) && *q != '.' && *q != 'e' && *q != 'E'));
    if (plain) {
      p_ = q;
      *out = negative ? -n : n;
      return true;
    }
    int64_t v;
    if (!Integer(std::numeric_limits<int32_t>::min(),
                 std::numeric_limits<int32_t>::max(), &v)) {
      return false;
    }
    *out = static_cast<int32_t>(v);
    return true;
  }

  // As the audit format writes seq: plain decimal digits, no leading zero.
  bool Seq(uint64_t* out) {
    const char* start = p_;
    uint64_t v = 0;
    while (p_ < end_ && IsDigit(*p_)) {
      const uint64_t digit = static_cast<uint64_t>(*p_ - '0');
      if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
      v = v * 10 + digit;
      ++p_;
    }
    if (p_ == start || *start == '0') return false;
    *out = v;
    return true;
  }

  bool Double(double* out) {
    absl::string_view token;
    if (!NumberToken(&token)) return false;
    if (token.find_first_of(".eE") == absl::string_view::npos) {
      // An integer: protobuf reads it as an integer and converts it to a
      // double only when that is exact; it reads "-0" its own way.
      const bool negative = token[0] == '-';
      const absl::string_view digits = token.substr(negative ? 1 : 0);
      if (digits.size() > 18 || token == "-0") return false;
      int64_t v = 0;
      for (char c : digits) v = v * 10 + (c - '0');
      const double d = static_cast<double>(v);
      if (static_cast<int64_t>(d) != v) return false;
      *out = negative ? -d : d;
      return true;
    }
    double v;
    const auto [end, ec] =
        std::from_chars(token.data(), token.data() + token.size(), v);
    if (ec != std::errc() || end != token.data() + token.size()) return false;
    *out = v;
    return true;
  }

  bool Timestamp(google::protobuf::Timestamp* out) {
    absl::string_view text;
    int64_t seconds;
    int32_t nanos;
    if (!RawString(&text) || !UtcTime(text, &seconds, &nanos)) return false;
    out->set_seconds(seconds);
    out->set_nanos(nanos);
    return true;
  }

  // ParseUtcTime, remembering the last text read: a record repeats its
  // times (its own, the decision's, one per contact's administrations).
  bool UtcTime(absl::string_view text, int64_t* seconds, int32_t* nanos) {
    FastReaderScratch::LastTime& last = s_.last_time;
    if (text.size() == last.size &&
        std::memcmp(text.data(), last.text, text.size()) == 0) {
      *seconds = last.seconds;
      *nanos = last.nanos;
      return true;
    }
    if (!ParseUtcTime(text, seconds, nanos)) return false;
    if (text.size() <= sizeof(last.text)) {
      std::memcpy(last.text, text.data(), text.size());
      last.size = text.size();
      last.seconds = *seconds;
      last.nanos = *nanos;
    }
    return true;
  }

  // `{ member (, member)* }` with member(name) reading the value.
  template <typename F>
  bool Object(int depth, F&& member) {
    if (depth > kMaxDepth || !Consume('{')) return false;
    if (Consume('}')) return true;
    do {
      absl::string_view name;
      if (!Name(&name) || !member(name)) return false;
    } while (Consume(','));
    return Consume('}');
  }

  template <typename F>
  bool Array(int depth, F&& element) {
    if (depth > kMaxDepth || !Consume('[')) return false;
    if (Consume(']')) return true;
    do {
      if (!element()) return false;
    } while (Consume(','));
    return Consume(']');
  }

  bool SkipValue(int depth) {
    if (p_ >= end_) return false;
    switch (*p_) {
      case '"':
        return String(nullptr);
      case '{':
        return Object(depth,
                      [&](absl::string_view) { return SkipValue(depth + 1); });
      case '[':
        return Array(depth, [&] { return SkipValue(depth + 1); });
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default: {
        absl::string_view token;
        return NumberToken(&token);
      }
    }
  }

  // An EvaluateRequest. Unknown members (perhaps a field added later, or a
  // spelling protobuf accepts) go to the exact parser.
  bool Request(v1::EvaluateRequest* request, int depth) {
    unsigned seen = 0;
    const bool ok = Object(depth, [&](absl::string_view name) {
      const auto once = [&seen](int field) {
        const unsigned bit = 1u << field;
        if (seen & bit) return false;
        seen |= bit;
        return true;
      };
      if (Is(name, "current_step") || Is(name, "currentStep")) {
        int32_t v;
        if (!once(3) || !Int32(&v)) return false;
        request->set_current_step(v);
        return true;
      }
      if (Is(name, "weeks_at_step") || Is(name, "weeksAtStep")) {
        double v;
        if (!once(4) || !Double(&v)) return false;
        request->set_weeks_at_step(v);
        return true;
      }
      if (Is(name, "assessments")) {
        return once(5) &&
               Array(depth + 1, [&] { return Assessment(depth + 2); });
      }
      if (Is(name, "flags")) {
        return once(6) &&
               Array(depth + 1, [&] { return String(request->add_flags()); });
      }
      if (Is(name, "as_of") || Is(name, "asOf")) {
        return once(7) && Timestamp(request->mutable_as_of());
      }
      if (Is(name, "request_id") || Is(name, "requestId")) {
        return once(1) && String(request->mutable_request_id());
      }
      if (Is(name, "subject_id") || Is(name, "subjectId")) {
        return once(2) && String(request->mutable_subject_id());
      }
      return false;
    });
    if (ok && (seen & (1u << 7)) == 0) request->clear_as_of();
    return ok;
  }

  // An Assessment, read into the scratch, then appended to the request as
  // a pooled assessment (whose item map is reused when it holds the same
  // names).
  bool Assessment(int depth) {
    s_.instrument.clear();
    s_.key_bytes.clear();
    s_.item_count = 0;
    bool has_total = false;
    int32_t total = 0;
    bool has_time = false;
    int64_t seconds = 0;
    int32_t nanos = 0;
    unsigned seen = 0;
    const bool ok = Object(depth, [&](absl::string_view name) {
      const auto once = [&seen](int field) {
        const unsigned bit = 1u << field;
        if (seen & bit) return false;
        seen |= bit;
        return true;
      };
      if (Is(name, "instrument")) {
        return once(1) && String(&s_.instrument);
      }
      if (Is(name, "items")) {
        // A map: keys may hold escapes, unlike member names.
        if (!once(2) || depth + 1 > kMaxDepth || !Consume('{')) return false;
        if (Consume('}')) return true;
        bool decoded = false;
        do {
          FastReaderScratch::Item& item = s_.NewItem();
          if (ShortItem(&item)) continue;
          const char* start = p_;
          if (RawString(&item.name)) {
            item.hash = NameHash(item.name, &item.head);
          } else {
            // Escapes: decoded into key_bytes, hashed once the map is read
            // (key_bytes may move as it grows).
            p_ = start;
            decoded = true;
            item.decoded_at = s_.key_bytes.size();
            if (!String(&s_.key_bytes)) return false;
            item.name = absl::string_view(
                nullptr, s_.key_bytes.size() - item.decoded_at);
          }
          if (!Consume(':') || !Int32(&item.value)) return false;
        } while (Consume(','));
        if (!Consume('}')) return false;
        if (decoded) {
          for (FastReaderScratch::Item& item : s_.items()) {
            if (item.decoded_at == absl::string_view::npos) continue;
            item.name = absl::string_view(s_.key_bytes)
                            .substr(item.decoded_at, item.name.size());
            item.hash = NameHash(item.name, &item.head);
          }
        }
        return true;
      }
      if (Is(name, "total")) {
        has_total = true;
        return once(3) && Int32(&total);
      }
      if (Is(name, "administered_at") || Is(name, "administeredAt")) {
        absl::string_view text;
        has_time = true;
        return once(4) && RawString(&text) && UtcTime(text, &seconds, &nanos);
      }
      return false;
    });
    if (!ok) return false;

    bool ready;
    FastReaderScratch::Pooled* pooled = s_.Take(&ready);
    v1::Assessment* assessment = pooled->message;
    if (!ready && !FastReaderScratch::Fill(pooled, s_.items())) return false;
    // A pooled assessment mostly held the same instrument last time (its
    // item names matched): comparing is cheaper than protobuf's Set.
    if (assessment->instrument() != s_.instrument)
      assessment->set_instrument(s_.instrument);
    if (has_total) {
      assessment->set_total(total);
    } else {
      assessment->clear_total();
    }
    if (has_time) {
      google::protobuf::Timestamp* at = assessment->mutable_administered_at();
      at->set_seconds(seconds);
      at->set_nanos(nanos);
    } else {
      assessment->clear_administered_at();
    }
    return true;
  }

  // The usual item answer, `"<up to eight plain bytes>":<one digit>` before
  // a ',' or '}', read and hashed from one 16-byte load. False, with
  // nothing consumed, for anything else: the general path reads that.
  bool ShortItem(FastReaderScratch::Item* item) {
#if defined(STEPWISE_SCAN_SSE2)
    if (end_ - p_ < 17 || *p_ != '"') return false;
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_ + 1));
    // As SkipPlainString: a quote, a backslash, a control character or a
    // byte >= 0x80 (negative as a signed byte) ends the plain run.
    const __m128i stop =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                     _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
    const unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(stop));
    if (mask == 0) return false;
    const size_t n = static_cast<size_t>(__builtin_ctz(mask));
    // q[0..3] lie within the 17 bytes checked above, as n <= 8.
    const char* const q = p_ + 1 + n;
    if (n > 8 || q[0] != '"' || q[1] != ':' || !IsDigit(q[2]) ||
        (q[3] != ',' && q[3] != '}')) {
      return false;
    }
    uint64_t head;
    std::memcpy(&head, p_ + 1, 8);
    if (n < 8) head &= (uint64_t{1} << (8 * n)) - 1;
    item->name = absl::string_view(p_ + 1, n);
    item->value = q[2] - '0';
    item->head = head;
    item->hash = ShortNameHash(n, head);
    p_ = q + 3;
    return true;
#else
    (void)item;
    return false;
#endif
  }

  // An enum value written by name; false for an unknown name (which
  // protobuf's parser would drop silently, so it is not recognised).
  bool EnumName(const EnumValues& values, int* number) {
    absl::string_view name;
    if (!RawString(&name)) return false;
    const auto it = values.find(name);
    if (it == values.end()) return false;
    *number = it->second;
    return true;
  }

  // The record's `ruleset`: a RulesetRef; only its sha256 is kept.
  bool Ruleset(std::string* sha256, int depth) {
    static const MessageShape* const shape =
        Shapes().Of(v1::RulesetRef::descriptor());
    return Message(*shape, depth, [&](const FieldShape& field) -> int {
      if (field.number != v1::RulesetRef::kSha256FieldNumber) return -1;
      return String(sha256);
    });
  }

  // The recorded Decision: action, step, referral targets and matched rule
  // ids are taken out; the other fields are checked, not kept.
  bool Outcome(engine::RecordedDecision* d, int depth) {
    static const MessageShape* const shape =
        Shapes().Of(v1::Decision::descriptor());
    return Message(*shape, depth, [&](const FieldShape& field) -> int {
      switch (field.number) {
        case v1::Decision::kActionFieldNumber: {
          int action;
          if (!EnumName(Shapes().Actions(), &action)) return false;
          d->action = static_cast<v1::Action>(action);
          return true;
        }
        case v1::Decision::kRecommendedStepFieldNumber:
          return Int32(&d->recommended_step);
        case v1::Decision::kReferToFieldNumber:
          return Array(depth + 1, [&] {
            d->refer_to.emplace_back();
            return String(&d->refer_to.back());
          });
        case v1::Decision::kMatchedRulesFieldNumber:
          return Array(depth + 1, [&] {
            d->matched_rule_ids.emplace_back();
            return MatchedRule(*field.message, &d->matched_rule_ids.back(),
                               depth + 2);
          });
        default:
          return -1;
      }
    });
  }

  bool MatchedRule(const MessageShape& shape, std::string* rule_id, int depth) {
    return Message(shape, depth, [&](const FieldShape& field) -> int {
      if (field.number != v1::MatchedRule::kRuleIdFieldNumber) return -1;
      return String(rule_id);
    });
  }

  // An object read as the message `shape`, the way protobuf's JSON parser
  // reads it with unknown fields ignored: take(field) reads a field's value
  // and returns 1 or 0, or -1 to have the value checked against the field's
  // type and dropped. Members that are no field of the message are skipped;
  // a field given twice is not recognised.
  template <typename Take>
  bool Message(const MessageShape& shape, int depth, Take&& take) {
    uint64_t seen = 0;
    size_t cursor = 0;
    return Object(depth, [&](absl::string_view name) {
      const FieldShape* field = shape.FindNext(name, &cursor);
      if (field == nullptr) return SkipValue(depth + 1);
      const uint64_t bit = uint64_t{1} << field->index;
      if (seen & bit) return false;
      seen |= bit;
      const int taken = take(*field);
      return taken < 0 ? CheckField(*field, depth + 1) : taken == 1;
    });
  }

  // A value of `field` in the form protobuf's printer writes (the strict
  // subset of what its parser accepts), not kept.
  bool CheckField(const FieldShape& field, int depth) {
    if (field.check == FieldShape::Check::kUnsupported) return false;
    if (field.repeated) {
      return Array(depth, [&] { return CheckSingular(field, depth + 1); });
    }
    return CheckSingular(field, depth);
  }

  bool CheckSingular(const FieldShape& field, int depth) {
    using Check = FieldShape::Check;
    int64_t i;
    switch (field.check) {
      case Check::kInt32:
        return Integer(std::numeric_limits<int32_t>::min(),
                       std::numeric_limits<int32_t>::max(), &i);
      case Check::kUint32:
        return Integer(0, std::numeric_limits<uint32_t>::max(), &i);
      case Check::kInt64:
      case Check::kUint64: {
        // Written as a string of digits; a plain number is accepted too.
        // Values beyond int64's 18 safe digits go to the exact parser.
        const int64_t min = field.check == Check::kInt64
                                ? std::numeric_limits<int64_t>::min() + 1
                                : 0;
        if (!Consume('"'))
          return Integer(min, std::numeric_limits<int64_t>::max(), &i);
        return Integer(min, std::numeric_limits<int64_t>::max(), &i) &&
               Consume('"');
      }
      case Check::kDouble: {
        double d;
        return Double(&d);
      }
      case Check::kBool:
        return Literal("true") || Literal("false");
      case Check::kEnum: {
        int number;
        return EnumName(*field.enum_values, &number);
      }
      case Check::kString:
        return String(nullptr);
      case Check::kTimestamp: {
        absl::string_view text;
        int64_t seconds;
        int32_t nanos;
        return RawString(&text) && UtcTime(text, &seconds, &nanos);
      }
      case Check::kMessage:
        return Message(*field.message, depth,
                       [](const FieldShape&) { return -1; });
      case Check::kUnsupported:
        return false;
    }
    return false;
  }

  const char* p_;
  const char* end_;
  FastReaderScratch& s_;
};

}  // namespace

ReplayLine::ReplayLine() = default;
ReplayLine::~ReplayLine() = default;
ReplayLine::ReplayLine(ReplayLine&&) noexcept = default;
ReplayLine& ReplayLine::operator=(ReplayLine&&) noexcept = default;
ReplayLine::ReplayLine(const ReplayLine& other)
    : kind(other.kind), decision(other.decision) {}
ReplayLine& ReplayLine::operator=(const ReplayLine& other) {
  kind = other.kind;
  decision = other.decision;
  return *this;
}

bool ReadReplayLineFast(absl::string_view line, ReplayLine* out) {
  if (out->scratch == nullptr)
    out->scratch = std::make_unique<FastReaderScratch>();
  return FastLineReader(line, out->scratch.get()).Read(out);
}

absl::Status ReadReplayLineExact(absl::string_view line, ReplayLine* out) {
  absl::StatusOr<audit::ParsedRecord> record = audit::ParseRecord(line);
  if (!record.ok()) return record.status();
  out->kind = KindOf(record->kind);
  engine::RecordedDecision& d = out->decision;
  d.Clear();
  d.seq = record->seq;
  if (out->kind != Kind::kDecision) return absl::OkStatus();
  d.decision_id = std::move(record->decision_id);
  d.ruleset_sha256 = record->ruleset.sha256();
  *d.mutable_request() = std::move(record->request);  // a copy: arena vs heap
  if (d.request().subject_id().empty()) {
    d.mutable_request()->set_subject_id(record->subject);
  }
  d.action = record->decision.action();
  d.recommended_step = record->decision.recommended_step();
  for (const v1::MatchedRule& rule : record->decision.matched_rules()) {
    d.matched_rule_ids.push_back(rule.rule_id());
  }
  d.refer_to.assign(record->decision.refer_to().begin(),
                    record->decision.refer_to().end());
  return absl::OkStatus();
}

absl::Status ReadReplayLine(absl::string_view line, ReplayLine* out,
                            bool* used_exact) {
  *used_exact = !ReadReplayLineFast(line, out);
  if (*used_exact) STEPWISE_RETURN_IF_ERROR(ReadReplayLineExact(line, out));
  if (out->kind == Kind::kDecision && !out->decision.request().has_as_of()) {
    return absl::DataLossError(
        "decision record without request.as_of: the facts it was decided on "
        "cannot be "
        "derived again");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The whole log.

namespace {

// The first failure of any worker, by position in the segment, so that the
// message does not depend on which worker got there first.
class FirstError {
 public:
  void Set(size_t offset, absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (status_.ok() || offset < offset_) {
      offset_ = offset;
      status_ = std::move(status);
    }
    failed_.store(true, std::memory_order_relaxed);
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  size_t offset() const { return offset_; }
  absl::Status status() const { return status_; }

 private:
  std::mutex mu_;
  size_t offset_ = 0;
  absl::Status status_;
  std::atomic<bool> failed_{false};
};

// A segment's bytes: mapped from the file when it is on the real file
// system (no copy, and no fresh pages to zero: at replay speeds reading a
// 64 MiB segment into a string costs as much as a sixth of the replay),
// else read through the injected FileSystem.
class SegmentBytes {
 public:
  static absl::StatusOr<std::unique_ptr<SegmentBytes>> Read(
      audit::FileSystem& fs, const std::string& path) {
    auto bytes = std::unique_ptr<SegmentBytes>(new SegmentBytes());
    if (&fs == audit::DefaultFileSystem() && bytes->Map(path)) return bytes;
    STEPWISE_ASSIGN_OR_RETURN(bytes->copy_, fs.ReadFile(path));
    bytes->view_ = bytes->copy_;
    return bytes;
  }

  ~SegmentBytes() {
    if (mapped_ != nullptr) munmap(mapped_, view_.size());
  }
  SegmentBytes(const SegmentBytes&) = delete;
  SegmentBytes& operator=(const SegmentBytes&) = delete;

  absl::string_view view() const { return view_; }

 private:
  SegmentBytes() = default;

  // False when the file cannot be mapped; the caller then reads it (and
  // reports the error that gives, if any).
  bool Map(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && st.st_size > 0;
    if (ok) {
      void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ,
                     MAP_PRIVATE | MAP_POPULATE, fd, 0);
      ok = p != MAP_FAILED;
      if (ok) {
        mapped_ = p;
        view_ = absl::string_view(static_cast<const char*>(p),
                                  static_cast<size_t>(st.st_size));
      }
    }
    close(fd);
    return ok;
  }

  void* mapped_ = nullptr;
  std::string copy_;
  absl::string_view view_;
};

// Cuts [0, end) of `contents` into pieces of about `chunk` bytes, each
// ending just after a line feed.
std::vector<size_t> ChunkCuts(absl::string_view contents, size_t end,
                              size_t chunk) {
  std::vector<size_t> cuts = {0};
  chunk = std::max<size_t>(chunk, 1);
  while (cuts.back() < end) {
    size_t next = cuts.back() + chunk;
    if (next >= end) {
      next = end;
    } else {
      next =
          contents.find('\n', next - 1) + 1;  // found: end - 1 is a line feed
    }
    cuts.push_back(next);
  }
  return cuts;
}

}  // namespace

absl::StatusOr<engine::ReplayReport> ReplayAuditLog(
    audit::FileSystem& fs, const std::string& dir,
    const engine::Bundle& candidate, const ReplayLogOptions& options) {
  const absl::Time start = absl::Now();
  STEPWISE_ASSIGN_OR_RETURN(const std::vector<audit::Segment> segments,
                            audit::ListSegments(fs, dir));
  uint64_t bytes_total = 0;
  for (const audit::Segment& segment : segments) {
    STEPWISE_ASSIGN_OR_RETURN(const uint64_t size,
                              fs.FileSize(audit::JoinPath(dir, segment.name)));
    bytes_total += size;
  }

  const int threads = std::max(1, options.threads);
  std::vector<engine::ReplayAccumulator> accumulators;
  accumulators.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i)
    accumulators.emplace_back(candidate, options.limits);
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> records_done{0};
  std::atomic<uint64_t> exact_records{0};
  absl::Time last_progress = start;

  for (const audit::Segment& segment : segments) {
    STEPWISE_ASSIGN_OR_RETURN(
        const std::unique_ptr<SegmentBytes> bytes,
        SegmentBytes::Read(fs, audit::JoinPath(dir, segment.name)));
    const absl::string_view contents = bytes->view();
    // A last line without its line feed is still being written.
    const size_t last_feed = contents.rfind('\n');
    const size_t complete =
        last_feed == absl::string_view::npos ? 0 : last_feed + 1;
    const std::vector<size_t> cuts =
        ChunkCuts(contents, complete, options.chunk_bytes);
    const size_t chunks = cuts.size() - 1;
    std::atomic<size_t> next_chunk{0};
    FirstError error;

    const auto work = [&](engine::ReplayAccumulator* accumulator, bool caller) {
      ReplayLine line;
      while (!error.failed()) {
        const size_t c = next_chunk.fetch_add(1, std::memory_order_relaxed);
        if (c >= chunks) break;
        const char* p = contents.data() + cuts[c];
        const char* const end = contents.data() + cuts[c + 1];
        uint64_t records = 0;
        uint64_t exact = 0;
        while (p < end) {
          const char* feed = static_cast<const char*>(
              std::memchr(p, '\n', static_cast<size_t>(end - p)));
          const absl::string_view text(p, static_cast<size_t>(feed - p));
          bool used_exact = false;
          absl::Status status = ReadReplayLine(text, &line, &used_exact);
          if (!status.ok()) {
            error.Set(static_cast<size_t>(p - contents.data()),
                      std::move(status));
            return;
          }
          exact += used_exact;
          ++records;
          switch (line.kind) {
            case Kind::kDecision:
              accumulator->AddDecision(line.decision);
              break;
            case Kind::kActivation:
              accumulator->AddSkipped(engine::SkippedKind::kActivation);
              break;
            case Kind::kShadow:
              accumulator->AddSkipped(engine::SkippedKind::kShadow);
              break;
            case Kind::kOther:
              accumulator->AddSkipped(engine::SkippedKind::kOther);
              break;
          }
          p = feed + 1;
        }
        exact_records.fetch_add(exact, std::memory_order_relaxed);
        records_done.fetch_add(records, std::memory_order_relaxed);
        bytes_done.fetch_add(cuts[c + 1] - cuts[c], std::memory_order_relaxed);
        if (caller && options.progress) {
          const absl::Time now = absl::Now();
          if (now - last_progress >= options.progress_interval) {
            last_progress = now;
            options.progress(bytes_done.load(),
                             std::max(bytes_total, bytes_done.load()),
                             records_done.load());
          }
        }
      }
    };

    const int workers = static_cast<int>(
        std::min<size_t>(static_cast<size_t>(threads), chunks));
    std::vector<std::thread> pool;
    for (int i = 1; i < workers; ++i)
      pool.emplace_back(work, &accumulators[i], false);
    work(&accumulators[0], true);
    for (std::thread& t : pool) t.join();
    if (error.failed()) {
      const uint64_t line_number =
          1 +
          static_cast<uint64_t>(std::count(
              contents.begin(),
              contents.begin() + static_cast<ptrdiff_t>(error.offset()), '\n'));
      return absl::DataLossError(
          absl::StrCat(segment.name, ":", line_number,
                       ": cannot read the record: ", error.status().message()));
    }
    bytes_done.fetch_add(contents.size() - complete, std::memory_order_relaxed);
  }

  for (int i = 1; i < threads; ++i)
    accumulators[0].Merge(std::move(accumulators[i]));
  engine::ReplayReport report = accumulators[0].Report();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  report.set_threads(static_cast<uint32_t>(threads));
  report.set_seconds(seconds);
  report.set_records_per_second(
      seconds > 0 ? static_cast<double>(report.records()) / seconds : 0);
  report.set_exact_parser_records(exact_records.load());
  if (options.progress) {
    options.progress(bytes_done.load(),
                     std::max(bytes_total, bytes_done.load()),
                     records_done.load());
  }
  return report;
}

}  // namespace stepwise::tools
