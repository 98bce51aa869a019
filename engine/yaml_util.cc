#include "engine/yaml_util.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace stepwise::engine {

YamlFile::YamlFile(std::string path, const std::string& text,
                   std::vector<Diagnostic>* out)
    : path_(std::move(path)), text_(text), out_(out) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < text_.size(); ++i) {
    if (text_[i] == '\n') line_starts_.push_back(i + 1);
  }
}

std::optional<YAML::Node> YamlFile::Parse() {
  try {
    YAML::Node root = YAML::Load(text_);
    if (!root.IsDefined() || root.IsNull()) {
      FileError("the file is empty");
      return std::nullopt;
    }
    return root;
  } catch (const YAML::Exception& e) {
    Error(e.mark, absl::StrCat("YAML syntax error: ", e.msg));
    return std::nullopt;
  }
}

void YamlFile::Error(const YAML::Mark& mark, std::string message) {
  Diagnostic d;
  d.file = path_;
  if (mark.is_null()) {
    d.line = 0;
    d.column = 0;
  } else {
    d.line = mark.line + 1;
    d.column = mark.column + 1;
  }
  d.message = std::move(message);
  out_->push_back(std::move(d));
}

void YamlFile::FileError(std::string message) {
  out_->push_back(Diagnostic{path_, 0, 0, std::move(message)});
}

bool YamlFile::CheckMap(const YAML::Node& node, absl::string_view what,
                        std::initializer_list<absl::string_view> allowed,
                        std::initializer_list<absl::string_view> required) {
  if (!node.IsMap()) {
    Error(node, absl::StrCat(what, " must be a map of keys"));
    return false;
  }
  bool ok = true;
  std::set<std::string, std::less<>> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      Error(it->first, absl::StrCat("a key of ", what, " must be a plain name"));
      ok = false;
      continue;
    }
    const std::string key = it->first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::vector<std::string> names(allowed.begin(), allowed.end());
      Error(it->first, absl::StrCat("unknown key '", key, "' in ", what,
                                    " (allowed: ", absl::StrJoin(names, ", "), ")"));
      ok = false;
    }
    if (!seen.insert(key).second) {
      Error(it->first, absl::StrCat("duplicate key '", key, "' in ", what));
      ok = false;
    }
  }
  for (absl::string_view key : required) {
    if (seen.find(key) == seen.end()) {
      Error(node, absl::StrCat(what, " is missing the required key '", key, "'"));
      ok = false;
    }
  }
  return ok;
}

std::optional<std::string> YamlFile::String(const YAML::Node& node,
                                            absl::string_view what) {
  if (!node.IsScalar()) {
    Error(node, absl::StrCat(what, " must be text"));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<int64_t> YamlFile::Int(const YAML::Node& node, absl::string_view what,
                                     int64_t min, int64_t max) {
  int64_t value = 0;
  if (!node.IsScalar() || node.Tag() == "!" ||
      !absl::SimpleAtoi(node.Scalar(), &value)) {
    Error(node, absl::StrCat(what, " must be a whole number"));
    return std::nullopt;
  }
  if (value < min || value > max) {
    Error(node, absl::StrCat(what, " ", value, " is outside ", min, "..", max));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> YamlFile::Bool(const YAML::Node& node, absl::string_view what) {
  if (node.IsScalar()) {
    if (node.Scalar() == "true") return true;
    if (node.Scalar() == "false") return false;
  }
  Error(node, absl::StrCat(what, " must be true or false"));
  return std::nullopt;
}

std::optional<std::vector<std::string>> YamlFile::StringList(const YAML::Node& node,
                                                             absl::string_view what) {
  if (!node.IsSequence()) {
    Error(node, absl::StrCat(what, " must be a list"));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) {
      Error(item, absl::StrCat("each entry of ", what, " must be text"));
      return std::nullopt;
    }
    out.push_back(item.Scalar());
  }
  return out;
}

std::pair<int, int> YamlFile::ScalarPosition(const YAML::Node& node,
                                             size_t offset) const {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null() || mark.pos < 0 || static_cast<size_t>(mark.pos) >= text_.size()) {
    return {mark.line + 1, mark.column + 1};
  }
  const std::string& value = node.Scalar();
  size_t s = static_cast<size_t>(mark.pos);
  const char first = text_[s];
  if (first == '"' || first == '\'') {
    ++s;
  } else if (first == '|' || first == '>') {
    while (s < text_.size() && text_[s] != '\n') ++s;
    while (s < text_.size() && std::isspace(static_cast<unsigned char>(text_[s]))) ++s;
  }
  // Walk the value and the source side by side; the source may hold line
  // breaks and indentation where the value holds one space (folding), and
  // escapes in quoted scalars.
  for (size_t v = 0; v < offset && v < value.size() && s < text_.size(); ++v) {
    const char c = value[v];
    if (text_[s] == c) {
      ++s;
      continue;
    }
    const bool value_space = std::isspace(static_cast<unsigned char>(c));
    while (s < text_.size() && std::isspace(static_cast<unsigned char>(text_[s]))) ++s;
    if (value_space) continue;
    if (s < text_.size() && text_[s] == c) {
      ++s;
    } else if (s < text_.size() && text_[s] == '\\') {
      s += 2;
    } else {
      ++s;
    }
  }
  s = std::min(s, text_.size());
  const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), s);
  const size_t line = static_cast<size_t>(it - line_starts_.begin());  // 1-based
  const size_t column = s - line_starts_[line - 1] + 1;
  return {static_cast<int>(line), static_cast<int>(column)};
}

namespace {

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(out, "\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

bool LooksNumeric(absl::string_view s) {
  int64_t i;
  double d;
  if (absl::SimpleAtoi(s, &i)) return true;
  if (s.empty() || absl::StrContains(s, "inf") || absl::StrContains(s, "nan") ||
      absl::StrContains(s, "INF") || absl::StrContains(s, "NaN")) {
    return false;
  }
  return absl::SimpleAtod(s, &d) && (std::isdigit(static_cast<unsigned char>(s.back())) != 0);
}

}  // namespace

void YamlFile::ToJson(const YAML::Node& node, std::string* out) {
  if (node.IsMap()) {
    out->push_back('{');
    bool first = true;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!first) out->push_back(',');
      first = false;
      AppendJsonString(it->first.Scalar(), out);
      out->push_back(':');
      ToJson(it->second, out);
    }
    out->push_back('}');
  } else if (node.IsSequence()) {
    out->push_back('[');
    bool first = true;
    for (const YAML::Node& item : node) {
      if (!first) out->push_back(',');
      first = false;
      ToJson(item, out);
    }
    out->push_back(']');
  } else if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    const bool plain = node.Tag() != "!";
    if (plain && (s == "true" || s == "false")) {
      out->append(s);
    } else if (plain && (s == "null" || s == "~")) {
      out->append("null");
    } else if (plain && LooksNumeric(s)) {
      out->append(s);
    } else {
      AppendJsonString(s, out);
    }
  } else {
    out->append("null");
  }
}

size_t OffsetOf(absl::string_view text, int line, int column) {
  size_t offset = 0;
  for (int l = 1; l < line && offset < text.size(); ++offset) {
    if (text[offset] == '\n') ++l;
  }
  offset += static_cast<size_t>(std::max(column - 1, 0));
  return std::min(offset, text.size());
}

}  // namespace stepwise::engine
