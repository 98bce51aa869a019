#include "engine/bundle.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/compiled_bundle.h"
#include "engine/decide.h"
#include "engine/expr/text.h"
#include "engine/facts.h"
#include "engine/yaml_util.h"
#include "google/protobuf/util/json_util.h"

namespace stepwise::engine {

Bundle::Bundle(std::unique_ptr<CompiledBundle> compiled)
    : compiled_(std::move(compiled)) {
  ref_.set_name(compiled_->name);
  ref_.set_version(compiled_->version);
  ref_.set_sha256(compiled_->sha256);
}
Bundle::~Bundle() = default;

const std::string& Bundle::name() const { return compiled_->name; }
const std::string& Bundle::version() const { return compiled_->version; }
const std::string& Bundle::sha256() const { return compiled_->sha256; }
const std::string& Bundle::approved_by() const {
  return compiled_->approved_by;
}
std::optional<absl::Time> Bundle::effective_from() const {
  return compiled_->effective_from;
}
int Bundle::max_step() const { return compiled_->max_step; }
const std::map<int, std::string>& Bundle::steps() const {
  return compiled_->steps;
}
const std::vector<RuleSummary>& Bundle::rules() const {
  return compiled_->rule_summaries;
}
const std::vector<TestCase>& Bundle::tests() const { return compiled_->tests; }
const BundleFiles& Bundle::files() const { return compiled_->files; }
const v1::RulesetRef& Bundle::ref() const { return ref_; }

// Builds Bundle objects; the one friend of Bundle's constructor.
class BundleBuilder {
 public:
  static std::shared_ptr<const Bundle> Make(std::unique_ptr<CompiledBundle> c) {
    return std::shared_ptr<const Bundle>(new Bundle(std::move(c)));
  }
};

std::string BundleSha256(const BundleFiles& files) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto& [path, bytes] : files) {  // std::map: byte-wise sorted
    EVP_DigestUpdate(ctx, path.data(), path.size());
    const unsigned char zero = 0;
    EVP_DigestUpdate(ctx, &zero, 1);
    unsigned char len[8];
    uint64_t n = bytes.size();
    for (int i = 7; i >= 0; --i) {
      len[i] = static_cast<unsigned char>(n & 0xff);
      n >>= 8;
    }
    EVP_DigestUpdate(ctx, len, sizeof(len));
    EVP_DigestUpdate(ctx, bytes.data(), bytes.size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  EVP_DigestFinal_ex(ctx, digest, &digest_len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  for (unsigned int i = 0; i < digest_len; ++i) {
    absl::StrAppend(&hex, absl::Hex(digest[i], absl::kZeroPad2));
  }
  return hex;
}

namespace {

bool IsYaml(absl::string_view path) {
  return absl::EndsWith(path, ".yaml") || absl::EndsWith(path, ".yml");
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || !(std::islower(static_cast<unsigned char>(s[0])) != 0))
    return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) != 0 ||
          std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_')) {
      return false;
    }
  }
  return true;
}

bool IsReservedName(std::string_view s) {
  static const char* const kReserved[] = {
      "previous", "baseline", "flags", "current_step", "weeks_at_step", "has",
      "size",     "min",      "max",   "abs",          "true",          "false",
      "null",     "in"};
  for (const char* r : kReserved) {
    if (s == r) return true;
  }
  return false;
}

std::optional<v1::Action> ParseAction(std::string_view name) {
  v1::Action action;
  if (!v1::Action_Parse(std::string(name), &action) ||
      action == v1::ACTION_UNSPECIFIED) {
    return std::nullopt;
  }
  return action;
}

std::optional<absl::Time> ParseTimeOrDate(const std::string& s) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, s, &t, &err)) return t;
  if (absl::ParseTime("%Y-%m-%d", s, absl::UTCTimeZone(), &t, &err)) return t;
  return std::nullopt;
}

class Loader {
 public:
  Loader(const BundleFiles& files, const EngineOptions& options)
      : files_(files), bundle_(std::make_unique<CompiledBundle>()) {
    bundle_->options = options;
  }

  LoadResult Run();

 private:
  void LoadInstrument(const std::string& path, const std::string& text);
  void LoadRuleset(const std::string& path, const std::string& text);
  void LoadRules(YamlFile& file, const YAML::Node& rules);
  void LoadTests(const std::string& path, const std::string& text);
  // A test case's `expect.facts`: each path a declared fact (or has() of a
  // group), each value of the fact's type; null for absent. Each wrong
  // entry is reported (and left out).
  void LoadExpectedFacts(YamlFile& file, const YAML::Node& node,
                         std::vector<ExpectedFact>* out);
  void CompileCondition(YamlFile& file, const YAML::Node& node,
                        const std::string& text, const expr::Issue& issue);
  void ReportIssues(YamlFile& file, const YAML::Node& node,
                    const std::vector<expr::Issue>& issues);

  const BundleFiles& files_;
  std::unique_ptr<CompiledBundle> bundle_;
  std::vector<Diagnostic> diagnostics_;
  std::set<std::string> rule_ids_;
  // False until the ruleset's rule list was read: test cases' rule ids are
  // checked only then (a broken ruleset would make every id "unknown").
  bool rules_listed_ = false;
};

void Loader::ReportIssues(YamlFile& file, const YAML::Node& node,
                          const std::vector<expr::Issue>& issues) {
  for (const expr::Issue& issue : issues) {
    const size_t offset = OffsetOf(node.Scalar(), issue.line, issue.column);
    const auto [line, column] = file.ScalarPosition(node, offset);
    diagnostics_.push_back(
        Diagnostic{file.path(), line, column, issue.message});
  }
}

LoadResult Loader::Run() {
  std::vector<std::string> rulesets;
  std::vector<std::string> instruments;
  std::vector<std::string> tests;
  for (const auto& [path, text] : files_) {
    if (!IsYaml(path)) continue;
    const std::vector<absl::string_view> parts = absl::StrSplit(path, '/');
    if (parts.size() == 1) {
      rulesets.push_back(path);
    } else if (parts.size() == 2 && parts[0] == "instruments") {
      instruments.push_back(path);
    } else if (parts.size() == 2 && parts[0] == "tests") {
      tests.push_back(path);
    } else {
      // A whole-file problem: shown at the file's start, so that every
      // diagnostic naming a file has file:line:column.
      diagnostics_.push_back(Diagnostic{path, 1, 1,
                                        "not part of a bundle: YAML files "
                                        "belong at the top (the ruleset), in "
                                        "instruments/ or in tests/"});
    }
  }
  if (rulesets.size() != 1) {
    // A folder has no line; a second ruleset file is shown at its start.
    const int at = rulesets.empty() ? 0 : 1;
    diagnostics_.push_back(Diagnostic{
        rulesets.empty() ? "." : rulesets[1], at, at,
        rulesets.empty()
            ? "no ruleset: a bundle needs exactly one YAML file at its top "
              "level"
            : absl::StrCat("more than one ruleset at the top level (",
                           absl::StrJoin(rulesets, ", "),
                           "); a bundle has exactly one")});
  }
  if (instruments.size() > bundle_->options.max_instruments) {
    diagnostics_.push_back(
        Diagnostic{"instruments", 0, 0,
                   absl::StrCat(instruments.size(),
                                " instruments, more than the limit of ",
                                bundle_->options.max_instruments)});
    instruments.resize(bundle_->options.max_instruments);
  }
  for (const std::string& path : instruments)
    LoadInstrument(path, files_.at(path));
  if (rulesets.size() == 1) LoadRuleset(rulesets[0], files_.at(rulesets[0]));
  for (const std::string& path : tests) LoadTests(path, files_.at(path));

  LoadResult result;
  if (!diagnostics_.empty()) {
    result.diagnostics = std::move(diagnostics_);
    return result;
  }
  for (const auto& [path, text] : files_) {
    if (IsYaml(path)) bundle_->files.emplace(path, text);
  }
  bundle_->sha256 = BundleSha256(bundle_->files);
  PrepareDecide(bundle_.get());
  result.bundle = BundleBuilder::Make(std::move(bundle_));
  return result;
}

void Loader::LoadInstrument(const std::string& path, const std::string& text) {
  YamlFile file(path, text, &diagnostics_);
  std::optional<YAML::Node> root = file.Parse();
  if (!root) return;
  const size_t errors_before = diagnostics_.size();
  try {
    const YAML::Node& n = *root;
    if (!file.CheckMap(n, "instrument",
                       {"id", "title", "description", "loinc", "item_count",
                        "item_range", "item_names", "item_ranges", "total",
                        "missing", "bands", "reliable_change", "caseness",
                        "minimal_important_difference", "source"},
                       {"id", "title", "item_count", "item_range", "total",
                        "missing", "source"})) {
      return;
    }
    auto def = std::make_unique<InstrumentDef>();
    def->file = path;
    std::optional<std::string> id = file.String(n["id"], "id");
    if (!id) return;
    const std::string stem =
        path.substr(path.find('/') + 1, path.rfind('.') - path.find('/') - 1);
    if (!IsIdentifier(*id)) {
      file.Error(n["id"],
                 absl::StrCat("instrument id '", *id,
                              "' must be lower-case letters, digits and _"));
    } else if (IsReservedName(*id)) {
      file.Error(n["id"], absl::StrCat("'", *id, "' is a reserved name"));
    } else if (*id != stem) {
      file.Error(n["id"],
                 absl::StrCat("instrument id '", *id,
                              "' does not match its file name '", stem, "'"));
    }
    if (bundle_->FindInstrument(*id) != nullptr) {
      file.Error(n["id"], absl::StrCat("duplicate instrument id '", *id, "'"));
    }
    def->id = *id;
    def->title = file.String(n["title"], "title").value_or("");
    def->source = file.String(n["source"], "source").value_or("");

    if (n["loinc"]) {
      const YAML::Node& loinc = n["loinc"];
      if (!loinc.IsMap()) {
        file.Error(loinc, "loinc must be a map of concept: code");
      } else {
        for (auto it = loinc.begin(); it != loinc.end(); ++it) {
          if (it->second.IsScalar()) {
            def->loinc[it->first.Scalar()] = it->second.Scalar();
          } else if (it->second.IsMap()) {
            for (auto jt = it->second.begin(); jt != it->second.end(); ++jt) {
              if (!jt->second.IsScalar()) {
                file.Error(jt->second, "a LOINC code must be text");
                continue;
              }
              def->loinc[absl::StrCat(it->first.Scalar(), ".",
                                      jt->first.Scalar())] =
                  jt->second.Scalar();
            }
          } else {
            file.Error(it->second, "a LOINC code must be text");
          }
        }
      }
    }

    std::optional<int64_t> count =
        file.Int(n["item_count"], "item_count", 1, 64);
    if (!count) return;
    int range_min = 0;
    int range_max = 0;
    const YAML::Node& range = n["item_range"];
    if (file.CheckMap(range, "item_range", {"min", "max"}, {"min", "max"})) {
      range_min = static_cast<int>(
          file.Int(range["min"], "item_range.min", 0, 1000).value_or(0));
      range_max = static_cast<int>(
          file.Int(range["max"], "item_range.max", 0, 1000).value_or(0));
      if (range_min > range_max)
        file.Error(range, "item_range.min is above item_range.max");
    }
    if (n["item_names"]) {
      std::optional<std::vector<std::string>> names =
          file.StringList(n["item_names"], "item_names");
      if (names) {
        if (static_cast<int64_t>(names->size()) != *count) {
          file.Error(n["item_names"],
                     absl::StrCat(names->size(), " item names for item_count ",
                                  *count));
        }
        std::set<std::string> seen;
        for (const std::string& name : *names) {
          if (!IsIdentifier(name)) {
            file.Error(
                n["item_names"],
                absl::StrCat("item name '", name,
                             "' must be lower-case letters, digits and _"));
          }
          if (!seen.insert(name).second) {
            file.Error(n["item_names"],
                       absl::StrCat("duplicate item name '", name, "'"));
          }
        }
        def->item_names = *names;
      }
    } else {
      for (int64_t i = 1; i <= *count; ++i)
        def->item_names.push_back(absl::StrCat("item", i));
    }
    def->BuildItemIndex();
    def->item_min.assign(def->item_names.size(), range_min);
    def->item_max.assign(def->item_names.size(), range_max);
    if (n["item_ranges"]) {
      const YAML::Node& overrides = n["item_ranges"];
      if (!overrides.IsMap()) {
        file.Error(overrides, "item_ranges must map item names to {min, max}");
      } else {
        for (auto it = overrides.begin(); it != overrides.end(); ++it) {
          const int idx = def->ItemIndex(it->first.Scalar());
          if (idx < 0) {
            file.Error(it->first,
                       absl::StrCat("'", it->first.Scalar(),
                                    "' is not an item of ", def->id));
            continue;
          }
          if (!file.CheckMap(it->second, "item range", {"min", "max"},
                             {"min", "max"}))
            continue;
          def->item_min[idx] = static_cast<int>(
              file.Int(it->second["min"], "min", 0, 1000).value_or(0));
          def->item_max[idx] = static_cast<int>(
              file.Int(it->second["max"], "max", 0, 1000).value_or(0));
          if (def->item_min[idx] > def->item_max[idx]) {
            file.Error(it->second, "min is above max");
          }
        }
      }
    }
    int sum_min = 0;
    int sum_max = 0;
    for (size_t i = 0; i < def->item_min.size(); ++i) {
      sum_min += def->item_min[i];
      sum_max += def->item_max[i];
    }

    const YAML::Node& total = n["total"];
    if (total.IsScalar() && total.Scalar() == "none") {
      def->has_total = false;
    } else if (file.CheckMap(total, "total", {"min", "max"}, {"min", "max"})) {
      def->total_min = static_cast<int>(
          file.Int(total["min"], "total.min", 0, 64000).value_or(0));
      def->total_max = static_cast<int>(
          file.Int(total["max"], "total.max", 0, 64000).value_or(0));
      if (def->total_min != sum_min || def->total_max != sum_max) {
        file.Error(
            total,
            absl::StrCat("total range ", def->total_min, "..", def->total_max,
                         " differs from what the items can sum to (", sum_min,
                         "..", sum_max, ")"));
      }
    }

    const YAML::Node& missing = n["missing"];
    if (file.CheckMap(missing, "missing",
                      {"max_missing", "proration", "beyond_max", "skip_logic"},
                      {"max_missing", "beyond_max"})) {
      def->max_missing = static_cast<int>(
          file.Int(missing["max_missing"], "max_missing", 0, *count - 1)
              .value_or(0));
      if (missing["proration"]) {
        def->proration =
            file.Bool(missing["proration"], "proration").value_or(false);
      }
      std::optional<std::string> beyond =
          file.String(missing["beyond_max"], "beyond_max");
      if (beyond == "no_total") {
        def->beyond_max = BeyondMax::kNoTotal;
      } else if (beyond == "reject") {
        def->beyond_max = BeyondMax::kReject;
      } else if (beyond) {
        file.Error(missing["beyond_max"],
                   absl::StrCat("beyond_max '", *beyond,
                                "' must be no_total or reject"));
      }
      if (def->proration && !def->has_total) {
        file.Error(missing["proration"], "proration needs a total");
      }
      if (missing["skip_logic"]) {
        const YAML::Node& rules = missing["skip_logic"];
        if (!rules.IsSequence()) {
          file.Error(rules, "skip_logic must be a list");
        } else {
          for (const YAML::Node& rule : rules) {
            if (!file.CheckMap(rule, "skip rule", {"if", "skipped", "value"},
                               {"if", "skipped", "value"})) {
              continue;
            }
            SkipRule skip;
            const YAML::Node& cond = rule["if"];
            if (!file.CheckMap(cond, "skip condition", {"item", "equals"},
                               {"item", "equals"}))
              continue;
            skip.if_item = def->ItemIndex(cond["item"].Scalar());
            if (skip.if_item < 0) {
              file.Error(cond["item"],
                         absl::StrCat("'", cond["item"].Scalar(),
                                      "' is not an item of ", def->id));
              continue;
            }
            skip.equals = static_cast<int>(
                file.Int(cond["equals"], "equals", 0, 1000).value_or(0));
            std::optional<std::vector<std::string>> skipped =
                file.StringList(rule["skipped"], "skipped");
            if (!skipped) continue;
            for (const std::string& name : *skipped) {
              const int idx = def->ItemIndex(name);
              if (idx < 0) {
                file.Error(
                    rule["skipped"],
                    absl::StrCat("'", name, "' is not an item of ", def->id));
                continue;
              }
              skip.skipped.push_back(idx);
            }
            skip.value = static_cast<int>(
                file.Int(rule["value"], "value", 0, 1000).value_or(0));
            def->skip_logic.push_back(std::move(skip));
          }
        }
      }
    }

    if (n["bands"]) {
      const YAML::Node& bands = n["bands"];
      if (!def->has_total) {
        file.Error(bands, "bands need a total");
      } else if (!bands.IsSequence() || bands.size() == 0) {
        file.Error(bands,
                   "bands must be a non-empty list of {label, min, max}");
      } else {
        int expect_min = def->total_min;
        std::set<std::string> labels;
        for (const YAML::Node& band_node : bands) {
          if (!file.CheckMap(band_node, "band", {"label", "min", "max"},
                             {"label", "min", "max"})) {
            continue;
          }
          Band band;
          band.label = file.String(band_node["label"], "label").value_or("");
          band.min = static_cast<int>(
              file.Int(band_node["min"], "band min", 0, 64000).value_or(0));
          band.max = static_cast<int>(
              file.Int(band_node["max"], "band max", 0, 64000).value_or(0));
          if (!IsIdentifier(band.label)) {
            file.Error(band_node["label"],
                       "a band label must be lower-case letters, digits and _");
          }
          if (!labels.insert(band.label).second) {
            file.Error(band_node["label"],
                       absl::StrCat("duplicate band label '", band.label, "'"));
          }
          if (band.min != expect_min) {
            file.Error(band_node["min"],
                       absl::StrCat(
                           "band '", band.label, "' starts at ", band.min,
                           "; bands must be contiguous, so it should start at ",
                           expect_min));
          }
          if (band.max < band.min)
            file.Error(band_node["max"], "band max is below its min");
          expect_min = band.max + 1;
          def->bands.push_back(std::move(band));
        }
        if (!def->bands.empty() && def->bands.back().max != def->total_max) {
          file.Error(bands,
                     absl::StrCat("bands end at ", def->bands.back().max,
                                  " but the total reaches ", def->total_max));
        }
      }
    }
    const int span = def->total_max - def->total_min;
    if (n["reliable_change"]) {
      if (!def->has_total) {
        file.Error(n["reliable_change"], "reliable_change needs a total");
      } else {
        def->reliable_change =
            static_cast<int>(file.Int(n["reliable_change"], "reliable_change",
                                      1, std::max(span, 1))
                                 .value_or(1));
      }
    }
    if (n["caseness"]) {
      if (!def->has_total) {
        file.Error(n["caseness"], "caseness needs a total");
      } else {
        def->caseness = static_cast<int>(
            file.Int(n["caseness"], "caseness", def->total_min, def->total_max)
                .value_or(0));
      }
    }
    if (n["minimal_important_difference"]) {
      def->minimal_important_difference = static_cast<int>(
          file.Int(n["minimal_important_difference"],
                   "minimal_important_difference", 1, std::max(span, 1))
              .value_or(1));
    }
    if (diagnostics_.size() != errors_before) return;
    def->index = static_cast<int>(bundle_->instruments.size());
    bundle_->instruments.push_back(std::move(def));
  } catch (const YAML::Exception& e) {
    file.Error(e.mark, absl::StrCat("YAML error: ", e.msg));
  }
}

void Loader::LoadRuleset(const std::string& path, const std::string& text) {
  YamlFile file(path, text, &diagnostics_);
  std::optional<YAML::Node> root = file.Parse();
  if (!root) return;
  try {
    const YAML::Node& n = *root;
    if (!file.CheckMap(
            n, "ruleset file",
            {"ruleset", "version", "approved_by", "effective_from",
             "description", "steps", "flags", "define", "rules", "default"},
            {"ruleset", "version", "steps", "rules", "default"})) {
      if (!n.IsMap()) return;
    }
    if (n["ruleset"])
      bundle_->name = file.String(n["ruleset"], "ruleset").value_or("");
    if (n["version"])
      bundle_->version = file.String(n["version"], "version").value_or("");
    if (n["approved_by"]) {
      bundle_->approved_by =
          file.String(n["approved_by"], "approved_by").value_or("");
    }
    if (n["description"]) {
      bundle_->description =
          file.String(n["description"], "description").value_or("");
    }
    if (n["effective_from"]) {
      std::optional<std::string> s =
          file.String(n["effective_from"], "effective_from");
      if (s) {
        bundle_->effective_from = ParseTimeOrDate(*s);
        if (!bundle_->effective_from) {
          file.Error(
              n["effective_from"],
              absl::StrCat(
                  "effective_from '", *s,
                  "' is neither a date (2026-11-01) nor an RFC 3339 time"));
        }
      }
    }
    if (n["steps"]) {
      const YAML::Node& steps = n["steps"];
      if (!steps.IsMap() || steps.size() == 0) {
        file.Error(steps, "steps must map step numbers 1..N to names");
      } else {
        for (auto it = steps.begin(); it != steps.end(); ++it) {
          std::optional<int64_t> step = file.Int(it->first, "step", 1, 100);
          std::optional<std::string> name =
              file.String(it->second, "step name");
          if (!step || !name) continue;
          if (!bundle_->steps.emplace(static_cast<int>(*step), *name).second) {
            file.Error(it->first,
                       absl::StrCat("step ", *step, " is declared twice"));
          }
        }
        int expect = 1;
        for (const auto& [step, name] : bundle_->steps) {
          if (step != expect) {
            file.Error(steps, absl::StrCat(
                                  "steps must be numbered 1..N without gaps; ",
                                  expect, " is missing"));
            break;
          }
          ++expect;
        }
        bundle_->max_step =
            bundle_->steps.empty() ? 0 : bundle_->steps.rbegin()->first;
      }
    }
    if (n["flags"]) {
      const YAML::Node& flags = n["flags"];
      if (!flags.IsSequence()) {
        file.Error(flags, "flags must be a list of {id, description}");
      } else {
        for (const YAML::Node& flag : flags) {
          std::string id;
          if (flag.IsScalar()) {
            id = flag.Scalar();
          } else if (file.CheckMap(flag, "flag", {"id", "description"},
                                   {"id"})) {
            id = file.String(flag["id"], "flag id").value_or("");
            if (flag["description"]) {
              bundle_->flag_descriptions[id] =
                  file.String(flag["description"], "flag description")
                      .value_or("");
            }
          } else {
            continue;
          }
          if (!IsIdentifier(id)) {
            file.Error(flag, absl::StrCat(
                                 "flag '", id,
                                 "' must be lower-case letters, digits and _"));
          } else if (bundle_->FlagIndex(id) >= 0) {
            file.Error(flag, absl::StrCat("flag '", id, "' is declared twice"));
          } else {
            bundle_->flags.push_back(id);
          }
        }
      }
    }
    // The flags' fact declaration carries the declared set.
    DeclareFacts(bundle_.get());

    const expr::Limits& limits = bundle_->options.expr_limits;
    if (n["define"]) {
      const YAML::Node& defines = n["define"];
      if (!defines.IsMap()) {
        file.Error(defines, "define must map names to expressions");
      } else {
        for (auto it = defines.begin(); it != defines.end(); ++it) {
          const std::string name = it->first.Scalar();
          if (!IsIdentifier(name) || IsReservedName(name)) {
            file.Error(
                it->first,
                absl::StrCat("'", name,
                             "' cannot name a define: use lower-case "
                             "letters, digits and _, not a reserved word"));
            continue;
          }
          if (bundle_->decls.FindFact(name) || bundle_->decls.FindGroup(name)) {
            file.Error(it->first,
                       absl::StrCat("define '", name, "' would hide the fact '",
                                    name, "'"));
            continue;
          }
          if (bundle_->defines.Contains(name)) {
            file.Error(it->first,
                       absl::StrCat("define '", name, "' is declared twice"));
            continue;
          }
          if (!it->second.IsScalar()) {
            file.Error(it->second, "a define must be an expression");
            continue;
          }
          std::vector<expr::Issue> issues;
          bundle_->define_texts.emplace_back(name, it->second.Scalar());
          bundle_->defines.Add(name, it->second.Scalar(), bundle_->decls,
                               limits, &issues);
          ReportIssues(file, it->second, issues);
        }
      }
    }
    if (n["rules"]) LoadRules(file, n["rules"]);
    if (n["default"]) {
      const YAML::Node& d = n["default"];
      if (file.CheckMap(d, "default",
                        {"action", "rationale", "follow_up", "source"},
                        {"action", "rationale"})) {
        std::optional<std::string> action = file.String(d["action"], "action");
        if (action && *action != "STAY") {
          file.Error(d["action"],
                     absl::StrCat("the default action must be STAY, not '",
                                  *action, "'"));
        }
        bundle_->default_outcome.action = v1::STAY;
        bundle_->default_outcome.rationale =
            file.String(d["rationale"], "rationale").value_or("");
        if (d["follow_up"]) {
          bundle_->default_outcome.follow_up =
              file.String(d["follow_up"], "follow_up").value_or("");
        }
        if (d["source"]) {
          bundle_->default_outcome.source =
              file.String(d["source"], "source").value_or("");
        }
      }
    }
  } catch (const YAML::Exception& e) {
    file.Error(e.mark, absl::StrCat("YAML error: ", e.msg));
  }
}

void Loader::LoadRules(YamlFile& file, const YAML::Node& rules) {
  if (!rules.IsSequence()) {
    file.Error(rules, "rules must be a list");
    return;
  }
  if (rules.size() > bundle_->options.max_rules) {
    file.Error(rules,
               absl::StrCat(rules.size(), " rules, more than the limit of ",
                            bundle_->options.max_rules));
    return;
  }
  rules_listed_ = true;
  for (const YAML::Node& r : rules) {
    if (!file.CheckMap(r, "rule",
                       {"id", "title", "when", "action", "to_step", "refer_to",
                        "rationale", "follow_up", "source"},
                       {"id", "title", "when", "action", "rationale",
                        "follow_up", "source"})) {
      if (!r.IsMap()) continue;
    }
    CompiledRule rule;
    bool ok = true;
    if (r["id"]) {
      std::optional<std::string> id = file.String(r["id"], "id");
      if (id && id->empty()) {
        file.Error(r["id"], "a rule id cannot be empty");
      } else if (id && !rule_ids_.insert(*id).second) {
        file.Error(r["id"], absl::StrCat("duplicate rule id '", *id, "'"));
        ok = false;
      }
      rule.id = id.value_or("");
    }
    if (r["title"]) rule.title = file.String(r["title"], "title").value_or("");
    if (r["rationale"])
      rule.rationale = file.String(r["rationale"], "rationale").value_or("");
    if (r["follow_up"])
      rule.follow_up = file.String(r["follow_up"], "follow_up").value_or("");
    if (r["source"])
      rule.source = file.String(r["source"], "source").value_or("");
    if (r["action"]) {
      std::optional<std::string> name = file.String(r["action"], "action");
      std::optional<v1::Action> action =
          name ? ParseAction(*name) : std::nullopt;
      if (name && !action) {
        file.Error(r["action"],
                   absl::StrCat("unknown action '", *name,
                                "' (one of URGENT_SAFETY, REFER, STEP_UP, "
                                "STAY, STEP_DOWN)"));
        ok = false;
      }
      rule.action = action.value_or(v1::ACTION_UNSPECIFIED);
    }
    const bool takes_step = rule.action == v1::STEP_UP ||
                            rule.action == v1::STEP_DOWN ||
                            rule.action == v1::REFER;
    if (r["to_step"]) {
      const YAML::Node& to = r["to_step"];
      if (rule.action != v1::ACTION_UNSPECIFIED && !takes_step) {
        file.Error(to, absl::StrCat("to_step does not apply to ",
                                    v1::Action_Name(rule.action),
                                    " (only STEP_UP, STEP_DOWN and REFER)"));
      } else if (to.IsScalar() && to.Scalar() == "current") {
        rule.to_step.current = true;
      } else {
        std::optional<int64_t> step =
            file.Int(to, "to_step", INT32_MIN, INT32_MAX);
        if (step && (*step < 1 || *step > bundle_->max_step)) {
          file.Error(
              to, absl::StrCat("to_step ", *step, " is outside the steps 1..",
                               bundle_->max_step));
        } else if (step) {
          rule.to_step.step = static_cast<int>(*step);
        }
      }
    } else if (rule.action == v1::REFER) {
      rule.to_step.current = true;
    }
    if (rule.action == v1::REFER) {
      if (!r["refer_to"]) {
        file.Error(r, absl::StrCat("REFER rule '", rule.id,
                                   "' needs refer_to: where to refer"));
      } else {
        rule.refer_to = file.String(r["refer_to"], "refer_to").value_or("");
        if (rule.refer_to.empty())
          file.Error(r["refer_to"], "refer_to cannot be empty");
      }
    } else if (r["refer_to"] && rule.action != v1::ACTION_UNSPECIFIED) {
      file.Error(r["refer_to"], "refer_to belongs only on REFER rules");
    }
    if (r["when"]) {
      const YAML::Node& when = r["when"];
      if (!when.IsScalar() || when.Scalar().empty()) {
        file.Error(when, "when must be an expression");
        ok = false;
      } else {
        expr::CompileOptions options;
        options.defines = &bundle_->defines;
        options.expected = expr::Type::Bool();
        options.reject_never_true = true;
        options.limits = bundle_->options.expr_limits;
        absl::StatusOr<expr::CompileResult> compiled =
            expr::Compile(when.Scalar(), bundle_->decls, options);
        if (!compiled.ok()) {
          file.Error(when, std::string(compiled.status().message()));
          ok = false;
        } else if (!compiled->issues.empty()) {
          ReportIssues(file, when, compiled->issues);
          ok = false;
        } else {
          rule.when = std::move(compiled->program);
        }
      }
    }
    RuleSummary summary;
    summary.id = rule.id;
    summary.title = rule.title;
    summary.action = rule.action;
    summary.when = r["when"] && r["when"].IsScalar() ? r["when"].Scalar() : "";
    summary.file = file.path();
    summary.line = r.Mark().line + 1;
    bundle_->rule_summaries.push_back(std::move(summary));
    if (ok && rule.when) bundle_->rules.push_back(std::move(rule));
  }
}

void Loader::LoadTests(const std::string& path, const std::string& text) {
  YamlFile file(path, text, &diagnostics_);
  std::optional<YAML::Node> root = file.Parse();
  if (!root) return;
  try {
    const YAML::Node& n = *root;
    if (!file.CheckMap(n, "test file", {"defaults", "cases"}, {"cases"}))
      return;
    YAML::Node default_request;
    if (n["defaults"]) {
      if (file.CheckMap(n["defaults"], "defaults", {"request"}, {}) &&
          n["defaults"]["request"]) {
        default_request = n["defaults"]["request"];
        if (!default_request.IsMap()) {
          file.Error(default_request, "defaults.request must be a map");
          default_request = YAML::Node();
        }
      }
    }
    const YAML::Node& cases = n["cases"];
    if (!cases.IsSequence()) {
      file.Error(cases, "cases must be a list");
      return;
    }
    std::set<std::string> names;
    for (const YAML::Node& c : cases) {
      if (bundle_->tests.size() >= bundle_->options.max_test_cases) {
        file.Error(c,
                   absl::StrCat("more than ", bundle_->options.max_test_cases,
                                " test cases"));
        return;
      }
      if (!file.CheckMap(c, "test case", {"name", "request", "expect", "note"},
                         {"name", "request", "expect"})) {
        continue;
      }
      TestCase tc;
      tc.file = path;
      tc.line = c.Mark().line + 1;
      tc.name = file.String(c["name"], "name").value_or("");
      if (!names.insert(tc.name).second) {
        file.Error(c["name"],
                   absl::StrCat("duplicate test case name '", tc.name, "'"));
      }
      if (c["note"]) tc.note = file.String(c["note"], "note").value_or("");

      const YAML::Node& request = c["request"];
      if (!request.IsMap()) {
        file.Error(request, "request must be a map (an EvaluateRequest)");
        continue;
      }
      std::string json = "{";
      bool first = true;
      auto append_member = [&](const YAML::Node& key, const YAML::Node& value) {
        if (!first) json.push_back(',');
        first = false;
        YamlFile::ToJson(key, &json);
        json.push_back(':');
        YamlFile::ToJson(value, &json);
      };
      std::set<std::string> keys;
      for (auto it = request.begin(); it != request.end(); ++it) {
        keys.insert(it->first.Scalar());
        append_member(it->first, it->second);
      }
      if (default_request) {
        for (auto it = default_request.begin(); it != default_request.end();
             ++it) {
          if (keys.count(it->first.Scalar()) == 0)
            append_member(it->first, it->second);
        }
      }
      json.push_back('}');
      google::protobuf::util::JsonParseOptions parse_options;
      parse_options.ignore_unknown_fields = false;
      const auto status = google::protobuf::util::JsonStringToMessage(
          json, &tc.request, parse_options);
      if (!status.ok()) {
        file.Error(request, absl::StrCat("request is not an EvaluateRequest: ",
                                         std::string(status.message())));
        continue;
      }
      if (!tc.request.has_as_of()) {
        file.Error(
            request,
            "request needs as_of (in the case or in defaults.request), so the "
            "test does not depend on the clock");
      }

      const YAML::Node& expect = c["expect"];
      if (!file.CheckMap(expect, "expect",
                         {"action", "step", "matched", "refer_to",
                          "unevaluated", "warnings", "facts", "violations"},
                         {})) {
        continue;
      }
      auto check_ids = [&](const YAML::Node& node,
                           const std::vector<std::string>& ids) {
        if (!rules_listed_) return;
        for (const std::string& id : ids) {
          if (rule_ids_.count(id) == 0) {
            file.Error(node, absl::StrCat("unknown rule id '", id, "'"));
          }
        }
      };
      if (expect["violations"]) {
        tc.violations = file.StringList(expect["violations"], "violations")
                            .value_or(std::vector<std::string>{});
        if (tc.violations.empty()) {
          file.Error(expect["violations"],
                     "violations must name at least one field");
        }
        if (expect["action"] || expect["matched"] || expect["step"] ||
            expect["facts"]) {
          file.Error(expect,
                     "a bad-input case expects violations, not an outcome "
                     "or facts");
        }
        bundle_->tests.push_back(std::move(tc));
        continue;
      }
      // Facts come beside the outcome, never instead of it: architecture
      // section 3 gives every case its expected action, step and matched
      // rules, and tools outside stepwise may run the cases on that basis.
      // (A wrong entry is reported; the bundle then does not load.)
      if (expect["facts"]) LoadExpectedFacts(file, expect["facts"], &tc.facts);
      if (!expect["action"] || !expect["step"] || !expect["matched"]) {
        file.Error(expect,
                   "expect needs action, step and matched (or violations)");
        continue;
      }
      std::optional<std::string> action =
          file.String(expect["action"], "action");
      std::optional<v1::Action> parsed =
          action ? ParseAction(*action) : std::nullopt;
      if (action && !parsed) {
        file.Error(expect["action"],
                   absl::StrCat("unknown action '", *action, "'"));
      }
      tc.action = parsed.value_or(v1::ACTION_UNSPECIFIED);
      tc.step = static_cast<int>(
          file.Int(expect["step"], "step", 1, 100).value_or(0));
      tc.matched = file.StringList(expect["matched"], "matched")
                       .value_or(std::vector<std::string>{});
      check_ids(expect["matched"], tc.matched);
      if (expect["refer_to"])
        tc.refer_to = file.StringList(expect["refer_to"], "refer_to");
      if (expect["unevaluated"]) {
        tc.unevaluated = file.StringList(expect["unevaluated"], "unevaluated");
        if (tc.unevaluated) check_ids(expect["unevaluated"], *tc.unevaluated);
      }
      if (expect["warnings"]) {
        tc.warnings = static_cast<int>(
            file.Int(expect["warnings"], "warnings", 0, 1000).value_or(0));
      }
      bundle_->tests.push_back(std::move(tc));
    }
  } catch (const YAML::Exception& e) {
    file.Error(e.mark, absl::StrCat("YAML error: ", e.msg));
  }
}

void Loader::LoadExpectedFacts(YamlFile& file, const YAML::Node& node,
                               std::vector<ExpectedFact>* out) {
  if (!node.IsMap() || node.size() == 0) {
    file.Error(node,
               "facts must map fact paths to the values expected (null: "
               "absent), e.g. {phq9.severity: mild, gad7.total: null}");
    return;
  }
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const std::string path = key.IsScalar() ? key.Scalar() : "";
    if (!seen.insert(path).second) {
      file.Error(key, absl::StrCat("fact '", path, "' is expected twice"));
      continue;
    }
    ExpectedFact fact;
    fact.path = path;
    // has(<group>): whether the request holds that instrument (or its
    // previous / baseline administration).
    expr::Type type = expr::Type::Bool();
    const expr::FactDecl* decl = nullptr;
    if (absl::StartsWith(path, "has(") && absl::EndsWith(path, ")")) {
      const std::string group = path.substr(4, path.size() - 5);
      const std::optional<uint32_t> slot = bundle_->decls.FindGroup(group);
      if (!slot) {
        file.Error(key, absl::StrCat("'", group,
                                     "' is not an instrument or an "
                                     "administration has() can test"));
        continue;
      }
      fact.slot = *slot;
    } else {
      decl = bundle_->decls.FindFact(path);
      if (decl == nullptr) {
        std::string message = absl::StrCat("unknown fact '", path, "'");
        const std::string nearest =
            expr::NearestName(path, bundle_->decls.AllPaths());
        if (!nearest.empty()) {
          absl::StrAppend(&message, "; did you mean '", nearest, "'?");
        }
        file.Error(key, std::move(message));
        continue;
      }
      if (decl->type.kind == expr::Kind::kList) {
        file.Error(
            key, absl::StrCat("'", path, "' is a list (", decl->type.ToString(),
                              "); facts can expect single values"));
        continue;
      }
      fact.slot = decl->slot;
      type = decl->type;
    }

    if (value.IsNull()) {
      if (decl == nullptr) {  // has(): never absent
        file.Error(value,
                   absl::StrCat(path, " is true or false, never absent"));
        continue;
      }
      fact.kind = ExpectedFact::Kind::kAbsent;
      out->push_back(std::move(fact));
      continue;
    }
    const std::string what = absl::StrCat("the value of ", path);
    bool parsed = false;
    switch (type.kind) {
      case expr::Kind::kBool: {
        const std::optional<bool> b = file.Bool(value, what);
        if (b) {
          fact.kind = ExpectedFact::Kind::kBool;
          fact.b = *b;
          parsed = true;
        }
        break;
      }
      case expr::Kind::kInt: {
        const std::optional<int64_t> i =
            file.Int(value, what, std::numeric_limits<int64_t>::min(),
                     std::numeric_limits<int64_t>::max());
        if (i) {
          fact.kind = ExpectedFact::Kind::kInt;
          fact.i = *i;
          parsed = true;
        }
        break;
      }
      case expr::Kind::kDouble: {
        // A plain number; compared exactly (the shortest text that reads
        // back as the double, as `stepwise eval --explain` prints it).
        double d = 0;
        const std::string text = value.IsScalar() ? value.Scalar() : "";
        const auto result =
            std::from_chars(text.data(), text.data() + text.size(), d);
        if (!value.IsScalar() || value.Tag() == "!" || text.empty() ||
            result.ec != std::errc() ||
            result.ptr != text.data() + text.size() || !std::isfinite(d)) {
          file.Error(value, absl::StrCat(what, " must be a number"));
        } else {
          fact.kind = ExpectedFact::Kind::kDouble;
          fact.d = d;
          parsed = true;
        }
        break;
      }
      case expr::Kind::kString: {
        if (!value.IsScalar()) {
          file.Error(value, absl::StrCat(what, " must be text"));
          break;
        }
        fact.kind = ExpectedFact::Kind::kString;
        fact.s = value.Scalar();
        if (decl != nullptr && !decl->allowed_values.empty() &&
            std::find(decl->allowed_values.begin(), decl->allowed_values.end(),
                      fact.s) == decl->allowed_values.end()) {
          file.Error(value,
                     absl::StrCat(
                         "'", fact.s, "' is not a value ", path, " can take (",
                         absl::StrJoin(decl->allowed_values, ", "), ")"));
          break;
        }
        parsed = true;
        break;
      }
      case expr::Kind::kList:
        break;  // refused above
    }
    if (parsed) out->push_back(std::move(fact));
  }
}

}  // namespace

absl::StatusOr<BundleFiles> ReadBundleFiles(const std::filesystem::path& dir,
                                            const EngineOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "bundle folder ", dir.string(), " does not exist or is not a folder"));
  }
  BundleFiles files;
  std::filesystem::recursive_directory_iterator it(
      dir, std::filesystem::directory_options::none, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot read bundle folder ", dir.string(), ": ", ec.message()));
  }
  size_t seen = 0;
  for (; it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot read bundle folder ", dir.string(), ": ", ec.message()));
    }
    if (++seen > 100000) {
      return absl::ResourceExhaustedError(
          "bundle folder holds more than 100000 entries");
    }
    const std::filesystem::path& p = it->path();
    const std::string name = p.filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec) || !IsYaml(name)) continue;
    const std::string rel =
        std::filesystem::relative(p, dir, ec).generic_string();
    const uintmax_t size = std::filesystem::file_size(p, ec);
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot read ", p.string()));
    }
    if (size > options.max_file_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat(rel, " is ", size, " bytes, over the limit of ",
                       options.max_file_bytes));
    }
    std::ifstream in(p, std::ios::binary);
    if (!in)
      return absl::PermissionDeniedError(
          absl::StrCat("cannot read ", p.string()));
    std::ostringstream buf;
    buf << in.rdbuf();
    files.emplace(rel, buf.str());
  }
  return files;
}

LoadResult CompileBundle(const BundleFiles& files,
                         const EngineOptions& options) {
  return Loader(files, options).Run();
}

absl::StatusOr<LoadResult> LoadBundle(const std::filesystem::path& dir,
                                      const EngineOptions& options) {
  absl::StatusOr<BundleFiles> files = ReadBundleFiles(dir, options);
  if (!files.ok()) return files.status();
  return CompileBundle(*files, options);
}

}  // namespace stepwise::engine
