#include "engine/facts.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/engine.h"

namespace stepwise::engine {

using expr::FactDecl;
using expr::Kind;
using expr::Type;
using expr::Value;

namespace {

FactDecl Decl(uint32_t slot, Type type,
              std::optional<double> min = std::nullopt,
              std::optional<double> max = std::nullopt) {
  FactDecl decl;
  decl.slot = slot;
  decl.type = type;
  decl.min = min;
  decl.max = max;
  return decl;
}

// Seconds since the epoch that google.protobuf.Timestamp allows
// (0001-01-01 .. 9999-12-31).
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

bool ValidTimestamp(const google::protobuf::Timestamp& ts) {
  return ts.seconds() >= kMinTimestampSeconds &&
         ts.seconds() <= kMaxTimestampSeconds && ts.nanos() >= 0 &&
         ts.nanos() <= 999999999;
}

absl::Time ToTime(int64_t seconds, int32_t nanos) {
  return absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
}

// CompiledBundle::FindInstrument with the first byte compared before the
// rest: instrument ids are short and mostly of the same few lengths, so the
// usual size-then-memcmp comparison calls memcmp for most candidates.
const InstrumentDef* FindInstrumentFast(const CompiledBundle& bundle,
                                        const std::string& id) {
  if (id.empty()) return bundle.FindInstrument(id);
  for (const auto& def : bundle.instruments) {
    const std::string& candidate = def->id;
    if (candidate.size() == id.size() && candidate[0] == id[0] &&
        std::memcmp(candidate.data(), id.data(), id.size()) == 0) {
      return def.get();
    }
  }
  return nullptr;
}

void ResetSlots(const CompiledBundle& bundle, Value* slots, size_t size) {
  if (bundle.empty_facts.size() == size) {
    std::copy(bundle.empty_facts.begin(), bundle.empty_facts.end(), slots);
    return;
  }
  std::fill(slots, slots + size, Value::Absent());
  for (const auto& def : bundle.instruments) {
    slots[def->slots.present] = Value::Bool(false);
    slots[def->slots.previous_present] = Value::Bool(false);
    slots[def->slots.baseline_present] = Value::Bool(false);
  }
}

}  // namespace

void DeclareFacts(CompiledBundle* bundle) {
  expr::Declarations& decls = bundle->decls;
  decls.AddFact("current_step", Decl(kCurrentStepSlot, Type::Int(), 1,
                                     static_cast<double>(bundle->max_step)));
  decls.AddFact("weeks_at_step", Decl(kWeeksAtStepSlot, Type::Double(), 0.0));
  FactDecl flags = Decl(kFlagsSlot, Type::List(Kind::kString));
  flags.allowed_values = bundle->flags;
  decls.AddFact("flags", std::move(flags));

  uint32_t next = kFlagsSlot + 1;
  for (auto& def_ptr : bundle->instruments) {
    InstrumentDef& def = *def_ptr;
    InstrumentSlots& s = def.slots;
    const std::string& id = def.id;
    s.present = next++;
    decls.AddGroup(id, s.present);
    s.items.clear();
    for (int i = 0; i < def.item_count(); ++i) {
      s.items.push_back(next++);
      decls.AddFact(
          absl::StrCat(id, ".", def.item_names[i]),
          Decl(s.items.back(), Type::Int(), def.item_min[i], def.item_max[i]));
    }
    s.days_since = next++;
    decls.AddFact(absl::StrCat(id, ".days_since"),
                  Decl(s.days_since, Type::Double(), 0.0));
    s.count = next++;
    decls.AddFact(absl::StrCat(id, ".count"), Decl(s.count, Type::Int(), 1.0));
    s.previous_present = next++;
    decls.AddGroup(absl::StrCat("previous.", id), s.previous_present);
    s.baseline_present = next++;
    decls.AddGroup(absl::StrCat("baseline.", id), s.baseline_present);
    if (!def.has_total) continue;

    const double tmin = def.total_min;
    const double tmax = def.total_max;
    s.total = next++;
    decls.AddFact(absl::StrCat(id, ".total"),
                  Decl(s.total, Type::Int(), tmin, tmax));
    s.previous_total = next++;
    decls.AddFact(absl::StrCat("previous.", id, ".total"),
                  Decl(s.previous_total, Type::Int(), tmin, tmax));
    s.baseline_total = next++;
    decls.AddFact(absl::StrCat("baseline.", id, ".total"),
                  Decl(s.baseline_total, Type::Int(), tmin, tmax));
    s.change = next++;
    decls.AddFact(absl::StrCat(id, ".change"),
                  Decl(s.change, Type::Int(), tmin - tmax, tmax - tmin));
    s.pct_change = next++;
    // change / baseline with baseline >= max(1, tmin) and current >= tmin.
    decls.AddFact(
        absl::StrCat(id, ".pct_change"),
        Decl(s.pct_change, Type::Double(), tmin >= 0 ? -1.0 : -INFINITY,
             tmax - std::max(1.0, tmin)));
    if (!def.bands.empty()) {
      s.severity = next++;
      FactDecl severity = Decl(s.severity, Type::String());
      for (const Band& band : def.bands)
        severity.allowed_values.push_back(band.label);
      decls.AddFact(absl::StrCat(id, ".severity"), std::move(severity));
    }
    if (def.caseness.has_value()) {
      s.caseness = next++;
      decls.AddFact(absl::StrCat(id, ".caseness"),
                    Decl(s.caseness, Type::Bool()));
    }
    if (def.reliable_change.has_value()) {
      s.reliable_improvement = next++;
      decls.AddFact(absl::StrCat(id, ".reliable_improvement"),
                    Decl(s.reliable_improvement, Type::Bool()));
      s.reliable_deterioration = next++;
      decls.AddFact(absl::StrCat(id, ".reliable_deterioration"),
                    Decl(s.reliable_deterioration, Type::Bool()));
    }
  }
  bundle->empty_facts.clear();
  std::vector<Value> empty(decls.slot_count());
  ResetSlots(*bundle, empty.data(), empty.size());
  bundle->empty_facts = std::move(empty);
}

FactTable::FactTable(const CompiledBundle& bundle)
    : size_(bundle.decls.slot_count()), slots_(inline_.values) {
  if (size_ > kInlineSlots) {
    heap_.reset(new Value[size_]);
    slots_ = heap_.get();
  }
  Reset(bundle);
}

void FactTable::Reset(const CompiledBundle& bundle) {
  if (!dirty_) return;
  ResetSlots(bundle, slots_, size_);
  flag_values_.clear();
  slots_[kFlagsSlot] = Value::List(flag_values_.data(), 0);
  dirty_ = false;
}

absl::Time ResolveAsOf(const v1::EvaluateRequest& request,
                       absl::Time received_at) {
  if (!request.has_as_of()) return received_at;
  return ToTime(request.as_of().seconds(), request.as_of().nanos());
}

bool DeriveFacts(const CompiledBundle& bundle,
                 const v1::EvaluateRequest& request, absl::Time as_of,
                 FactTable* facts, std::vector<FieldViolation>* violations,
                 std::vector<std::string>* warnings) {
  const size_t violations_before = violations->size();
  const EngineOptions& defaults = bundle.options;

  if (request.subject_id().empty()) {
    violations->push_back(
        {"subject_id", "required: the caller's patient reference"});
  }
  if (request.current_step() < 1 || request.current_step() > bundle.max_step) {
    violations->push_back(
        {"current_step",
         request.current_step() == 0
             ? absl::StrCat("required: a step in 1..", bundle.max_step)
             : absl::StrCat(request.current_step(), " is outside the steps 1..",
                            bundle.max_step)});
  }
  if (!std::isfinite(request.weeks_at_step()) || request.weeks_at_step() < 0) {
    violations->push_back(
        {"weeks_at_step", absl::StrCat(request.weeks_at_step(),
                                       " is not a number of weeks (>= 0)")});
  }
  if (request.has_as_of() && !ValidTimestamp(request.as_of())) {
    violations->push_back({"as_of", "not a valid timestamp"});
  }
  if (static_cast<size_t>(request.flags_size()) > defaults.max_flags) {
    violations->push_back(
        {"flags", absl::StrCat("more than ", defaults.max_flags, " flags")});
  } else {
    for (int i = 0; i < request.flags_size(); ++i) {
      if (bundle.FlagIndex(request.flags(i)) < 0) {
        violations->push_back(
            {absl::StrCat("flags[", i, "]"),
             absl::StrCat("'", request.flags(i),
                          "' is not a flag this ruleset declares (declared: ",
                          absl::StrJoin(bundle.flags, ", "), ")")});
      }
    }
  }
  if (static_cast<size_t>(request.assessments_size()) >
      defaults.max_assessments) {
    violations->push_back(
        {"assessments", absl::StrCat("more than ", defaults.max_assessments,
                                     " administrations")});
    return false;
  }

  // as_of as (seconds, nanos), compared with each administration's time
  // without building an absl::Time for it.
  const int64_t as_of_seconds = absl::ToUnixSeconds(as_of);
  const std::pair<int64_t, int32_t> as_of_parts(
      as_of_seconds, static_cast<int32_t>(absl::ToInt64Nanoseconds(
                         as_of - absl::FromUnixSeconds(as_of_seconds))));
  absl::InlinedVector<ScoredAdministration, 12> administrations;
  for (int i = 0; i < request.assessments_size(); ++i) {
    const v1::Assessment& assessment = request.assessments(i);
    auto prefix = [i] { return absl::StrCat("assessments[", i, "]"); };
    const InstrumentDef* def =
        FindInstrumentFast(bundle, assessment.instrument());
    if (def == nullptr) {
      std::vector<std::string> known;
      for (const auto& d : bundle.instruments) known.push_back(d->id);
      violations->push_back(
          {absl::StrCat(prefix(), ".instrument"),
           assessment.instrument().empty()
               ? absl::StrCat("required (one of ", absl::StrJoin(known, ", "),
                              ")")
               : absl::StrCat("unknown instrument '", assessment.instrument(),
                              "' (known: ", absl::StrJoin(known, ", "), ")")});
      continue;
    }
    if (!assessment.has_administered_at()) {
      violations->push_back(
          {absl::StrCat(prefix(), ".administered_at"), "required"});
    } else if (!ValidTimestamp(assessment.administered_at())) {
      violations->push_back({absl::StrCat(prefix(), ".administered_at"),
                             "not a valid timestamp"});
    } else if (std::make_pair(assessment.administered_at().seconds(),
                              assessment.administered_at().nanos()) >
               as_of_parts) {
      violations->push_back(
          {absl::StrCat(prefix(), ".administered_at"),
           absl::StrCat(
               "is after as_of (",
               absl::FormatTime(absl::RFC3339_full, as_of, absl::UTCTimeZone()),
               "): an administration cannot come after the decision")});
    }
    ScoreAdministration(*def, assessment, i, violations, warnings,
                        &administrations.emplace_back());
  }
  if (violations->size() != violations_before) return false;

  // Sorted by reference: moving the administrations themselves copies their
  // items. Same comparisons, so the same order as sorting them in place.
  absl::InlinedVector<const ScoredAdministration*, 12> scored;
  for (const ScoredAdministration& a : administrations) scored.push_back(&a);
  std::sort(scored.begin(), scored.end(),
            [](const ScoredAdministration* a, const ScoredAdministration* b) {
              if (a->def->index != b->def->index)
                return a->def->index < b->def->index;
              if (a->at_seconds != b->at_seconds)
                return a->at_seconds < b->at_seconds;
              return a->at_nanos < b->at_nanos;
            });
  for (size_t i = 1; i < scored.size(); ++i) {
    const ScoredAdministration& a = *scored[i - 1];
    const ScoredAdministration& b = *scored[i];
    if (a.def == b.def && a.at_seconds == b.at_seconds &&
        a.at_nanos == b.at_nanos) {
      const int first = std::min(a.request_index, b.request_index);
      const int second = std::max(a.request_index, b.request_index);
      violations->push_back(
          {absl::StrCat("assessments[", second, "].administered_at"),
           absl::StrCat("same instant as assessments[", first, "]: two ",
                        a.def->id, " administrations cannot share a time")});
    }
  }
  if (violations->size() != violations_before) return false;

  facts->Reset(bundle);
  Value* slots = facts->mutable_slots();

  slots[kCurrentStepSlot] = Value::Int(request.current_step());
  slots[kWeeksAtStepSlot] = Value::Double(request.weeks_at_step());
  auto& flag_values = facts->flag_values();
  flag_values.clear();
  for (const std::string& flag : request.flags()) {
    flag_values.push_back(Value::String(&bundle.flags[bundle.FlagIndex(flag)]));
  }
  slots[kFlagsSlot] = Value::List(flag_values.data(),
                                  static_cast<uint32_t>(flag_values.size()));

  for (size_t begin = 0; begin < scored.size();) {
    size_t end = begin + 1;
    while (end < scored.size() && scored[end]->def == scored[begin]->def) ++end;
    const InstrumentDef& def = *scored[begin]->def;
    const InstrumentSlots& s = def.slots;
    const ScoredAdministration& current = *scored[end - 1];
    const size_t count = end - begin;

    slots[s.present] = Value::Bool(true);
    slots[s.count] = Value::Int(static_cast<int64_t>(count));
    slots[s.days_since] = Value::Double(absl::FDivDuration(
        as_of - ToTime(current.at_seconds, current.at_nanos), absl::Hours(24)));
    // Hoisted: a store through `slots` could alias the vector's size.
    const int item_count = def.item_count();
    for (int i = 0; i < item_count; ++i) {
      if (current.items[i] != kMissingItem)
        slots[s.items[i]] = Value::Int(current.items[i]);
    }
    if (count >= 2) {
      slots[s.previous_present] = Value::Bool(true);
      slots[s.baseline_present] = Value::Bool(true);
    }
    if (def.has_total) {
      const std::optional<int>& total = current.total;
      if (total.has_value()) {
        slots[s.total] = Value::Int(*total);
        if (s.severity != expr::kNoSlot) {
          if (const Band* band = def.BandFor(*total)) {
            slots[s.severity] = Value::String(&band->label);
          }
        }
        if (s.caseness != expr::kNoSlot) {
          slots[s.caseness] = Value::Bool(*total >= *def.caseness);
        }
      }
      if (count >= 2) {
        const std::optional<int>& previous = scored[end - 2]->total;
        const std::optional<int>& baseline = scored[begin]->total;
        if (previous.has_value())
          slots[s.previous_total] = Value::Int(*previous);
        if (baseline.has_value())
          slots[s.baseline_total] = Value::Int(*baseline);
        if (total.has_value() && baseline.has_value()) {
          const int change = *total - *baseline;
          slots[s.change] = Value::Int(change);
          if (*baseline != 0) {
            slots[s.pct_change] = Value::Double(static_cast<double>(change) /
                                                static_cast<double>(*baseline));
          }
          if (def.reliable_change.has_value()) {
            slots[s.reliable_improvement] =
                Value::Bool(-change >= *def.reliable_change);
            slots[s.reliable_deterioration] =
                Value::Bool(change >= *def.reliable_change);
          }
        }
      }
    }
    begin = end;
  }
  return true;
}

}  // namespace stepwise::engine
