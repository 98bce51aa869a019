#include "engine/expr/declarations.h"

#include <algorithm>

namespace stepwise::expr {
namespace {
const std::string& EmptyString() {
  static const auto* empty = new std::string();
  return *empty;
}
}  // namespace

void Declarations::AddFact(std::string path, FactDecl decl) {
  const uint32_t slot = decl.slot;
  if (slot != kNoSlot) {
    if (slot >= slot_names_.size()) slot_names_.resize(slot + 1);
    slot_names_[slot] = path;
    slot_count_ = std::max(slot_count_, slot + 1);
  }
  facts_[std::move(path)] = std::move(decl);
}

void Declarations::AddGroup(std::string path, uint32_t slot) {
  if (slot >= slot_names_.size()) slot_names_.resize(slot + 1);
  slot_names_[slot] = path;
  slot_count_ = std::max(slot_count_, slot + 1);
  groups_[std::move(path)] = slot;
}

const FactDecl* Declarations::FindFact(std::string_view path) const {
  auto it = facts_.find(path);
  return it == facts_.end() ? nullptr : &it->second;
}

std::optional<uint32_t> Declarations::FindGroup(std::string_view path) const {
  auto it = groups_.find(path);
  if (it == groups_.end()) return std::nullopt;
  return it->second;
}

const std::string& Declarations::SlotName(uint32_t slot) const {
  return slot < slot_names_.size() ? slot_names_[slot] : EmptyString();
}

std::vector<std::string> Declarations::AllPaths() const {
  std::vector<std::string> paths;
  paths.reserve(facts_.size() + groups_.size());
  for (const auto& [path, decl] : facts_) paths.push_back(path);
  for (const auto& [path, slot] : groups_) paths.push_back(path);
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace stepwise::expr
