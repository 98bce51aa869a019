// DiffBundles over crafted bundle pairs: the default bundle in rules/ as OLD
// and an edited copy as NEW, one kind of change per test; the comparison of
// expression texts on its own; and a golden of the whole text report for a
// realistic pair (testdata/diff/old -> testdata/diff/new). Set
// STEPWISE_UPDATE_GOLDENS=1 to rewrite realistic.expected after a deliberate
// change in wording, then review the diff.
#include "engine/diff.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/engine/test_bundle.h"

namespace stepwise::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using v1::FieldChange;
using v1::RuleDiff;
using v1::ThresholdChange;

// The default bundle's files.
BundleFiles Rules() {
  absl::StatusOr<BundleFiles> files =
      ReadBundleFiles(STEPWISE_SOURCE_DIR "/rules");
  EXPECT_TRUE(files.ok()) << files.status();
  return files.ok() ? *files : BundleFiles{};
}

// The default bundle without its test cases, so that rules the cases name
// can be removed.
BundleFiles RulesWithoutTests() {
  BundleFiles files = Rules();
  for (auto it = files.begin(); it != files.end();) {
    it =
        absl::StartsWith(it->first, "tests/") ? files.erase(it) : std::next(it);
  }
  return files;
}

// Replaces the one occurrence of `from` in `text`.
void ReplaceOnce(std::string* text, const std::string& from,
                 const std::string& to) {
  const size_t at = text->find(from);
  if (at == std::string::npos ||
      text->find(from, at + 1) != std::string::npos) {
    ADD_FAILURE() << "expected exactly one '" << from << "'";
    return;
  }
  text->replace(at, from.size(), to);
}

void Edit(BundleFiles* files, const std::string& path, const std::string& from,
          const std::string& to) {
  ReplaceOnce(&(*files)[path], from, to);
}

// [begin, end) of rule `id`'s block in ruleset.yaml: from its "- id:" line to
// the next rule or the default.
std::pair<size_t, size_t> RuleSpan(const std::string& text,
                                   const std::string& id) {
  const size_t begin = text.find(absl::StrCat("  - id: ", id, "\n"));
  if (begin == std::string::npos) {
    ADD_FAILURE() << "no rule " << id;
    return {0, 0};
  }
  size_t end = text.find("\n  - id: ", begin + 1);
  if (end == std::string::npos) end = text.find("\ndefault:", begin);
  return {begin, end + 1};
}

// Replaces `from` inside rule `id` only.
void EditRule(BundleFiles* files, const std::string& id,
              const std::string& from, const std::string& to) {
  std::string& text = (*files)["ruleset.yaml"];
  const auto [begin, end] = RuleSpan(text, id);
  std::string block = text.substr(begin, end - begin);
  ReplaceOnce(&block, from, to);
  text.replace(begin, end - begin, block);
}

// Removes rule `id` and returns its block.
std::string CutRule(BundleFiles* files, const std::string& id) {
  std::string& text = (*files)["ruleset.yaml"];
  const auto [begin, end] = RuleSpan(text, id);
  std::string block = text.substr(begin, end - begin);
  text.erase(begin, end - begin);
  return block;
}

void AddRule(BundleFiles* files, const std::string& yaml) {
  Edit(files, "ruleset.yaml",
       "\ndefault:", absl::StrCat("\n", yaml, "\ndefault:"));
}

BundleDiff Diff(const BundleFiles& old_files, const BundleFiles& new_files) {
  auto old_bundle = testing::MustLoad(old_files);
  auto new_bundle = testing::MustLoad(new_files);
  if (!old_bundle || !new_bundle) return BundleDiff();
  return DiffBundles(*old_bundle, *new_bundle);
}

std::vector<std::string> Ids(
    const google::protobuf::RepeatedPtrField<RuleDiff>& rules) {
  std::vector<std::string> ids;
  for (const RuleDiff& r : rules) ids.push_back(r.id());
  return ids;
}

std::vector<std::string> Fields(
    const google::protobuf::RepeatedPtrField<FieldChange>& changes) {
  std::vector<std::string> fields;
  for (const FieldChange& c : changes) {
    fields.push_back(c.key().empty() ? c.field()
                                     : absl::StrCat(c.field(), " ", c.key()));
  }
  return fields;
}

TEST(DiffTest, IdenticalBundlesHaveNoDifferences) {
  const BundleFiles files = Rules();
  const BundleDiff diff = Diff(files, files);
  EXPECT_FALSE(HasDifferences(diff));
  EXPECT_EQ(diff.review_count(), 0);
  EXPECT_EQ(diff.old_bundle().sha256(), diff.new_bundle().sha256());
  EXPECT_EQ(diff.old_bundle().sha256().size(), 64u);
  EXPECT_EQ(diff.old_bundle().name(), "persistent-physical-symptoms");
  EXPECT_GT(diff.new_bundle().rule_count(), 0);
  EXPECT_GT(diff.new_bundle().test_case_count(), 0);
  const std::string text = FormatDiffText(diff);
  EXPECT_THAT(text, HasSubstr("\nNo differences.\n"));
  EXPECT_THAT(text,
              HasSubstr(absl::StrCat("sha256 ", diff.old_bundle().sha256())));
  EXPECT_THAT(text, Not(HasSubstr("Rules")));
}

TEST(DiffTest, LayoutAndCommentsAloneAreNotDifferences) {
  const BundleFiles old_files = Rules();
  BundleFiles new_files = old_files;
  new_files["ruleset.yaml"] += "# a trailing comment\n";
  // The same condition laid out over two lines, with a comment in it.
  EditRule(&new_files, "SEV-01",
           "when: 'current_step <= 2 && phq9.total >= 16'",
           "when: >-\n      current_step <= 2 &&\n      phq9.total >= 16");
  const BundleDiff diff = Diff(old_files, new_files);
  EXPECT_NE(diff.old_bundle().sha256(), diff.new_bundle().sha256());
  EXPECT_FALSE(HasDifferences(diff)) << FormatDiffText(diff);
  EXPECT_THAT(
      FormatDiffText(diff),
      HasSubstr("the files differ only in layout, comments or test cases"));
}

TEST(DiffTest, ThresholdChangeIsPickedOutOfTheCondition) {
  const BundleFiles old_files = Rules();
  BundleFiles new_files = old_files;
  EditRule(&new_files, "SEV-01", "phq9.total >= 16", "phq9.total >= 15");
  const BundleDiff diff = Diff(old_files, new_files);
  ASSERT_THAT(Ids(diff.rules_changed()), ElementsAre("SEV-01"));
  const RuleDiff& rule = diff.rules_changed(0);
  ASSERT_THAT(Fields(rule.changes()), ElementsAre("condition"));
  const FieldChange& condition = rule.changes(0);
  EXPECT_EQ(condition.old_value(), "current_step <= 2 && phq9.total >= 16");
  EXPECT_EQ(condition.new_value(), "current_step <= 2 && phq9.total >= 15");
  ASSERT_EQ(condition.thresholds_size(), 1);
  const ThresholdChange& t = condition.thresholds(0);
  EXPECT_EQ(t.context(), "phq9.total >=");
  EXPECT_TRUE(t.comparison());
  EXPECT_EQ(t.old_value(), "16");
  EXPECT_EQ(t.new_value(), "15");
  EXPECT_EQ(t.effect(), ThresholdChange::MATCHES_MORE);
  EXPECT_FALSE(rule.moved());
  EXPECT_THAT(rule.warnings(), IsEmpty());
  EXPECT_EQ(diff.review_count(), 0);
  EXPECT_THAT(diff.rules_added(), IsEmpty());
  EXPECT_THAT(diff.rules_removed(), IsEmpty());
  EXPECT_THAT(diff.instruments_changed(), IsEmpty());
  EXPECT_THAT(diff.metadata(), IsEmpty());

  const std::string text = FormatDiffText(diff);
  EXPECT_THAT(text, HasSubstr("Rules changed (1)\n  ~ SEV-01  More severe "
                              "depression at a low step\n"));
  EXPECT_THAT(text, HasSubstr("      threshold of phq9.total >=: 16 → 15 "
                              "(matches more patients)\n"));
  EXPECT_THAT(text, HasSubstr("condition now: current_step <= 2 && "
                              "phq9.total >= 15"));
  EXPECT_THAT(text, Not(HasSubstr("!")));
}

TEST(DiffTest, RulesAddedRemovedAndRetitled) {
  const BundleFiles old_files = RulesWithoutTests();
  BundleFiles new_files = old_files;
  CutRule(&new_files, "NR-02");
  EditRule(&new_files, "GAD-01",
           "title: Anxiety persists after a low-intensity course",
           "title: Anxiety persists after low-intensity care");
  AddRule(&new_files, R"(  - id: ANX-02
    title: Health anxiety with high symptom burden
    when: 'current_step == 1 && wi7.total >= 3 && ssd12.total >= 23'
    action: STEP_UP
    rationale: Health anxiety on top of burdensome symptoms.
    follow_up: Offer low-intensity CBT for health anxiety
    source: "[Fink1999]"
)");
  const BundleDiff diff = Diff(old_files, new_files);

  ASSERT_THAT(Ids(diff.rules_added()), ElementsAre("ANX-02"));
  const v1::RuleContent& added = diff.rules_added(0).new_rule();
  EXPECT_EQ(added.title(), "Health anxiety with high symptom burden");
  EXPECT_EQ(added.condition(),
            "current_step == 1 && wi7.total >= 3 && ssd12.total >= 23");
  EXPECT_EQ(added.action(), v1::STEP_UP);
  EXPECT_EQ(added.to_step(), "current + 1");
  EXPECT_EQ(added.follow_up(), "Offer low-intensity CBT for health anxiety");
  EXPECT_EQ(added.source(), "[Fink1999]");
  EXPECT_EQ(added.position(), diff.new_bundle().rule_count());

  ASSERT_THAT(Ids(diff.rules_removed()), ElementsAre("NR-02"));
  EXPECT_EQ(diff.rules_removed(0).old_rule().action(), v1::STAY);
  EXPECT_THAT(diff.rules_removed(0).warnings(), IsEmpty());

  ASSERT_THAT(Ids(diff.rules_changed()), ElementsAre("GAD-01"));
  ASSERT_THAT(Fields(diff.rules_changed(0).changes()), ElementsAre("title"));
  EXPECT_EQ(diff.rules_changed(0).changes(0).old_value(),
            "Anxiety persists after a low-intensity course");
  // Removing NR-02 shifts the rules after it, which is not a move.
  EXPECT_FALSE(diff.rules_changed(0).moved());
  EXPECT_EQ(diff.review_count(), 0);

  const std::string text = FormatDiffText(diff);
  EXPECT_THAT(text,
              HasSubstr("Rules added (1)\n  + ANX-02  Health anxiety with "
                        "high symptom burden\n"));
  EXPECT_THAT(text, HasSubstr("      action: STEP_UP, to step current + 1\n"));
  EXPECT_THAT(text,
              HasSubstr("Rules removed (1)\n  - NR-02  No reliable change "
                        "at 4 to 8 weeks\n"));
  EXPECT_THAT(text,
              HasSubstr("      title changed\n        was: Anxiety persists "
                        "after a low-intensity course\n        now: Anxiety "
                        "persists after low-intensity care\n"));
}

TEST(DiffTest, ActionChangeIsMarked) {
  const BundleFiles old_files = Rules();
  BundleFiles new_files = old_files;
  EditRule(&new_files, "MED-01",
           "    action: REFER\n    to_step: current\n    refer_to: "
           "medical_reevaluation\n",
           "    action: STEP_UP\n");
  const BundleDiff diff = Diff(old_files, new_files);
  ASSERT_THAT(Ids(diff.rules_changed()), ElementsAre("MED-01"));
  const RuleDiff& rule = diff.rules_changed(0);
  EXPECT_THAT(Fields(rule.changes()),
              ElementsAre("action", "to_step", "refer_to"));
  EXPECT_EQ(rule.changes(0).old_value(), "REFER");
  EXPECT_EQ(rule.changes(0).new_value(), "STEP_UP");
  // to_step as the engine resolves it: REFER stays at the current step,
  // STEP_UP without a step goes one up.
  EXPECT_EQ(rule.changes(1).old_value(), "current");
  EXPECT_EQ(rule.changes(1).new_value(), "current + 1");
  EXPECT_EQ(rule.changes(2).old_value(), "medical_reevaluation");
  EXPECT_EQ(rule.changes(2).new_value(), "");
  EXPECT_THAT(rule.warnings(),
              ElementsAre("action changed: REFER → STEP_UP (less severe)"));
  EXPECT_EQ(diff.review_count(), 1);

  const std::string text = FormatDiffText(diff);
  EXPECT_THAT(text, HasSubstr("! 1 change needs a clinical safety review"));
  EXPECT_THAT(text,
              HasSubstr("  ! MED-01  Red flag or new or changed physical "
                        "symptoms\n      ! action changed: REFER → STEP_UP "
                        "(less severe)\n      action: REFER → STEP_UP\n"
                        "      to step: current → current + 1\n"
                        "      refer to: medical_reevaluation → (none)\n"));
}

TEST(DiffTest, ToStepAndReferToChanges) {
  const BundleFiles old_files = Rules();
  BundleFiles new_files = old_files;
  EditRule(&new_files, "SEV-01", "to_step: 3", "to_step: 4");
  EditRule(&new_files, "REF-02", "refer_to: specialist_mental_health",
           "refer_to: specialist_mental_health_expedited");
  const BundleDiff diff = Diff(old_files, new_files);
  ASSERT_THAT(Ids(diff.rules_changed()), ElementsAre("SEV-01", "REF-02"));
  ASSERT_THAT(Fields(diff.rules_changed(0).changes()), ElementsAre("to_step"));
  EXPECT_EQ(diff.rules_changed(0).changes(0).old_value(), "3");
  EXPECT_EQ(diff.rules_changed(0).changes(0).new_value(), "4");
  ASSERT_THAT(Fields(diff.rules_changed(1).changes()), ElementsAre("refer_to"));
  EXPECT_EQ(diff.rules_changed(1).changes(0).new_value(),
            "specialist_mental_health_expedited");
  // Neither is a safety rule, nor an action change.
  EXPECT_EQ(diff.review_count(), 0);
  const std::string text = FormatDiffText(diff);
  EXPECT_THAT(text, HasSubstr("      to step: 3 → 4\n"));
  EXPECT_THAT(text, HasSubstr("      refer to: specialist_mental_health → "
                              "specialist_mental_health_expedited\n"));
}

TEST(DiffTest, RewrittenConditionIsShownInFull) {
  const BundleFiles old_files = Rules();
  BundleFiles new_files = old_files;
  EditRule(&new_files, "DET-01",
           "'phq9.reliable_deterioration || gad7.reliable_deterioration'",
           "'phq9.reliable_deterioration'");
  const BundleDiff diff = Diff(old_files, new_files);
  ASSERT_THAT(Ids(diff.rules_changed()), ElementsAre("DET-01"));
  const FieldChange& c = diff.rules_changed(0).changes(0);
  EXPECT_EQ(c.field(), "condition");
  EXPECT_THAT(c.thresholds(), IsEmpty());
  EXPECT_EQ(c.old_value(),
            "phq9.reliable_deterioration || gad7.reliable_deterioration");
  EXPECT_EQ(c.new_value(), "phq9.reliable_deterioration");
  EXPECT_THAT(
      FormatDiffText(diff),
      HasSubstr("      condition changed\n        was: "
                "phq9.reliable_deterioration || gad7.reliable_deterioration\n"
                "        now: phq9.reliable_deterioration\n"));
}

TEST(DiffTest, RemovedSafetyRulesAreMarked) {
  const BundleFiles old_files = RulesWithoutTests();
  BundleFiles new_files = old_files;
  CutRule(&new_files, "SAFETY-03");
  CutRule(&new_files, "SAFETY-04");
  const BundleDiff diff = Diff(old_files, new_files);
  ASSERT_THAT(Ids(diff.rules_removed()), ElementsAre("SAFETY-03", "SAFETY-04"));
  EXPECT_THAT(diff.rules_removed(0).warnings(),
              ElementsAre("URGENT_SAFETY rule removed"));
  EXPECT_THAT(diff.rules_removed(1).warnings(),
              ElementsAre("safety rule removed (REFER)"));
  EXPECT_EQ(diff.review_count(), 2);
  const std::string text = FormatDiffText(diff);
  EXPECT_THAT(
      text, HasSubstr("! 2 changes need a clinical safety review (marked !)."));
  EXPECT_THAT(text,
              HasSubstr("Rules removed (2)\n  ! SAFETY-03  Clinician "
                        "concerned about risk\n      ! URGENT_SAFETY rule "
                        "removed\n      condition: \"clinician_risk_concern\" "
                        "in flags\n      action: URGENT_SAFETY\n"));
}

TEST(DiffTest, SafetyRuleThatMatchesFewerPatientsIsMarked) {
  const BundleFiles old_files = Rules();
  BundleFiles new_files = old_files;
  EditRule(&new_files, "SAFETY-02", "phq9.item9 >= 1", "phq9.item9 >= 2");
  EditRule(&new_files, "SAFETY-04", "refer_to: mental_health_assessment_24h",
           "refer_to: mental_health_assessment_72h");
  const BundleDiff diff = Diff(old_files, new_files);
  ASSERT_THAT(Ids(diff.rules_changed()), ElementsAre("SAFETY-02", "SAFETY-04"));
  EXPECT_THAT(
      diff.rules_changed(0).warnings(),
      ElementsAre("safety rule now matches fewer patients (threshold of "
                  "phq9.item9 >=: 1 → 2)"));
  EXPECT_EQ(diff.rules_changed(0).changes(0).thresholds(0).effect(),
            ThresholdChange::MATCHES_FEWER);
  EXPECT_THAT(diff.rules_changed(1).warnings(),
              ElementsAre("safety rule refers elsewhere: "
                          "mental_health_assessment_24h → "
                          "mental_health_assessment_72h"));

  // A number that is not simply compared with a fact: its direction is not
  // known, so on a safety rule it is marked.
  EditRule(&new_files, "SAFETY-02", "phq9.item9 >= 2", "phq9.item9 >= 1");
  EditRule(&new_files, "SAFETY-02", "cssrs.days_since <= phq9.days_since + 1.0",
           "cssrs.days_since <= phq9.days_since + 2.0");
  const BundleDiff unknown = Diff(old_files, new_files);
  ASSERT_EQ(unknown.rules_changed(0).id(), "SAFETY-02");
  const ThresholdChange& t = unknown.rules_changed(0).changes(0).thresholds(0);
  EXPECT_FALSE(t.comparison());
  EXPECT_EQ(t.context(), "phq9.days_since + 2.0");
  EXPECT_EQ(t.effect(), ThresholdChange::EFFECT_UNKNOWN);
  EXPECT_THAT(unknown.rules_changed(0).warnings(),
              ElementsAre(HasSubstr("safety rule threshold changed")));

  // A safety rule that now matches more patients is reported, not marked;
  // so is any other rule that now matches fewer.
  BundleFiles other = Rules();
  EditRule(&other, "SAFETY-02", "phq9.item9 >= 1", "phq9.item9 >= 0.5");
  EditRule(&other, "SEV-01", "phq9.total >= 16", "phq9.total >= 17");
  const BundleDiff unmarked = Diff(old_files, other);
  ASSERT_THAT(Ids(unmarked.rules_changed()),
              ElementsAre("SAFETY-02", "SEV-01"));
  EXPECT_EQ(unmarked.rules_changed(0).changes(0).thresholds(0).effect(),
            ThresholdChange::MATCHES_MORE);
  EXPECT_EQ(unmarked.rules_changed(1).changes(0).thresholds(0).effect(),
            ThresholdChange::MATCHES_FEWER);
  EXPECT_EQ(unmarked.review_count(), 0);
}

TEST(DiffTest, InstrumentChangesFieldByField) {
  const BundleFiles old_files = RulesWithoutTests();
  BundleFiles new_files = old_files;
  Edit(&new_files, "instruments/phq9.yaml",
       "  - {label: moderate, min: 10, max: 14}\n"
       "  - {label: moderately_severe, min: 15, max: 19}\n",
       "  - {label: moderate, min: 10, max: 13}\n"
       "  - {label: moderately_severe, min: 14, max: 19}\n");
  Edit(&new_files, "instruments/phq9.yaml", "caseness: 10", "caseness: 11");
  Edit(&new_files, "instruments/phq9.yaml", "max_missing: 2", "max_missing: 1");
  Edit(&new_files, "instruments/cssrs.yaml", "skipped: [q3, q4, q5]",
       "skipped: [q3, q4]");
  new_files.erase("instruments/wi7.yaml");
  new_files["instruments/who5.yaml"] = R"(id: who5
title: WHO-5 Well-Being Index
item_count: 5
item_range: {min: 0, max: 5}
total: {min: 0, max: 25}
missing: {max_missing: 0, beyond_max: no_total}
source: "[Topp2015]"
)";
  const BundleDiff diff = Diff(old_files, new_files);
  EXPECT_THAT(diff.rules_changed(), IsEmpty());
  ASSERT_EQ(diff.instruments_changed_size(), 2);
  const v1::InstrumentDiff& cssrs = diff.instruments_changed(0);
  EXPECT_EQ(cssrs.id(), "cssrs");
  ASSERT_THAT(Fields(cssrs.changes()), ElementsAre("skip_logic if q2 = 0"));
  EXPECT_EQ(cssrs.changes(0).old_value(), "q3, q4, q5 skipped, counted as 0");
  EXPECT_EQ(cssrs.changes(0).new_value(), "q3, q4 skipped, counted as 0");
  const v1::InstrumentDiff& phq9 = diff.instruments_changed(1);
  EXPECT_EQ(phq9.id(), "phq9");
  ASSERT_THAT(Fields(phq9.changes()),
              ElementsAre("band moderate", "band moderately_severe",
                          "max_missing", "caseness"));
  EXPECT_EQ(phq9.changes(0).old_value(), "10..14");
  EXPECT_EQ(phq9.changes(0).new_value(), "10..13");
  EXPECT_EQ(phq9.changes(3).old_value(), "10");
  EXPECT_EQ(phq9.changes(3).new_value(), "11");
  ASSERT_EQ(diff.instruments_added_size(), 1);
  EXPECT_EQ(diff.instruments_added(0).id(), "who5");
  EXPECT_THAT(Fields(diff.instruments_added(0).changes()),
              ElementsAre("items", "item_ranges", "total", "max_missing",
                          "proration", "beyond_max", "source"));
  ASSERT_EQ(diff.instruments_removed_size(), 1);
  EXPECT_EQ(diff.instruments_removed(0).id(), "wi7");

  const std::string text = FormatDiffText(diff);
  EXPECT_THAT(
      text,
      HasSubstr("Instruments (4)\n"
                "  ~ cssrs  Columbia Suicide Severity Rating Scale (screener)\n"
                "      skip rule if q2 = 0: q3, q4, q5 skipped, counted as 0 → "
                "q3, q4 skipped, counted as 0\n"
                "  ~ phq9  Patient Health Questionnaire-9\n"
                "      band moderate: 10..14 → 10..13\n"
                "      band moderately_severe: 15..19 → 14..19\n"
                "      missing items allowed: 2 → 1\n"
                "      caseness: 10 → 11\n"
                "  + who5  WHO-5 Well-Being Index\n"
                "      items: 5 (item1..item5)\n"
                "      item ranges: 0..5\n"
                "      total: 0..25\n"));
  EXPECT_THAT(text, HasSubstr("  - wi7  Whiteley Index-7\n"));
}

TEST(DiffTest, MetadataChanges) {
  const BundleFiles old_files = Rules();
  BundleFiles new_files = old_files;
  Edit(&new_files, "ruleset.yaml", "version: 2026.11.0", "version: 2026.12.0");
  Edit(&new_files, "ruleset.yaml", "approved_by: Clinical Safety Officer",
       "approved_by: Clinical Governance Committee");
  Edit(&new_files, "ruleset.yaml", "effective_from: 2026-11-01",
       "effective_from: 2026-12-01");
  Edit(&new_files, "ruleset.yaml", "  4: Specialist care\n",
       "  4: Specialist mental-health care\n");
  Edit(&new_files, "ruleset.yaml", "\nrules:\n",
       "\n  - id: carer_concern\n    description: A carer reports a "
       "concern.\n\nrules:\n");
  const BundleDiff diff = Diff(old_files, new_files);
  EXPECT_THAT(diff.rules_changed(), IsEmpty());
  ASSERT_THAT(Fields(diff.metadata()),
              ElementsAre("version", "approved_by", "effective_from", "step 4",
                          "flag carer_concern"));
  EXPECT_EQ(diff.metadata(2).old_value(), "2026-11-01");
  EXPECT_EQ(diff.metadata(2).new_value(), "2026-12-01");
  EXPECT_EQ(diff.metadata(4).kind(), FieldChange::ADDED);
  EXPECT_EQ(diff.old_bundle().version(), "2026.11.0");
  EXPECT_EQ(diff.new_bundle().version(), "2026.12.0");
  const std::string text = FormatDiffText(diff);
  EXPECT_THAT(text,
              HasSubstr("Ruleset metadata (5)\n"
                        "  version: 2026.11.0 → 2026.12.0\n"
                        "  approved by: Clinical Safety Officer → Clinical "
                        "Governance Committee\n"
                        "  effective from: 2026-11-01 → 2026-12-01\n"
                        "  step 4: Specialist care → Specialist mental-health "
                        "care\n"
                        "  flag carer_concern added: A carer reports a concern.\n"));
}

TEST(DiffTest, DefineChangeUsedByASafetyRuleIsMarked) {
  BundleFiles old_files = Rules();
  Edit(&old_files, "ruleset.yaml", "\nrules:\n",
       "\ndefine:\n  item9_positive: phq9.item9 >= 1\n"
       "  long_wait: weeks_at_step >= 12.0\n\nrules:\n");
  EditRule(&old_files, "SAFETY-02", "'phq9.item9 >= 1 &&",
           "'item9_positive &&");
  BundleFiles new_files = old_files;
  Edit(&new_files, "ruleset.yaml", "item9_positive: phq9.item9 >= 1",
       "item9_positive: phq9.item9 >= 2");
  Edit(&new_files, "ruleset.yaml", "  long_wait: weeks_at_step >= 12.0\n", "");
  const BundleDiff diff = Diff(old_files, new_files);
  // SAFETY-02's own text is unchanged; the define it names changed.
  EXPECT_THAT(diff.rules_changed(), IsEmpty());
  ASSERT_THAT(Fields(diff.metadata()),
              ElementsAre("define item9_positive", "define long_wait"));
  const FieldChange& define = diff.metadata(0);
  ASSERT_EQ(define.thresholds_size(), 1);
  EXPECT_EQ(define.thresholds(0).effect(), ThresholdChange::MATCHES_FEWER);
  EXPECT_EQ(define.warning(),
            "define used by safety rule SAFETY-02: check which patients they "
            "now match");
  EXPECT_EQ(diff.metadata(1).kind(), FieldChange::REMOVED);
  EXPECT_EQ(diff.review_count(), 1);
  EXPECT_THAT(FormatDiffText(diff),
              HasSubstr("  ! define used by safety rule SAFETY-02: check which "
                        "patients they now match\n"
                        "  threshold of phq9.item9 >=: 1 → 2 (matches fewer "
                        "patients)\n"
                        "    define item9_positive now: phq9.item9 >= 2\n"
                        "  define long_wait removed: weeks_at_step >= 12.0\n"));
}

TEST(DiffTest, ReorderedRulesAreOnlyMoved) {
  const BundleFiles old_files = Rules();
  BundleFiles new_files = old_files;
  const std::string block = CutRule(&new_files, "REM-01");
  Edit(&new_files, "ruleset.yaml", "  - id: SAFETY-01\n",
       absl::StrCat(block, "  - id: SAFETY-01\n"));
  const BundleDiff diff = Diff(old_files, new_files);
  // Every other rule shifted one place down, but kept its order.
  ASSERT_THAT(Ids(diff.rules_changed()), ElementsAre("REM-01"));
  const RuleDiff& rule = diff.rules_changed(0);
  EXPECT_TRUE(rule.moved());
  EXPECT_THAT(rule.changes(), IsEmpty());
  EXPECT_THAT(rule.warnings(), IsEmpty());
  EXPECT_EQ(rule.old_rule().position(), diff.old_bundle().rule_count());
  EXPECT_EQ(rule.new_rule().position(), 1);
  EXPECT_THAT(FormatDiffText(diff),
              HasSubstr(absl::StrCat(
                  "      moved: position ", diff.old_bundle().rule_count(),
                  " → 1 (rule order does not change the outcome")));
}

TEST(DiffTest, TestCaseCountsAndJsonRoundTrip) {
  const BundleFiles old_files = Rules();
  BundleFiles new_files = old_files;
  new_files.erase("tests/examples.yaml");
  EditRule(&new_files, "SEV-01", "phq9.total >= 16", "phq9.total >= 15");
  const BundleDiff diff = Diff(old_files, new_files);
  EXPECT_LT(diff.new_bundle().test_case_count(),
            diff.old_bundle().test_case_count());
  const std::string text = FormatDiffText(diff);
  EXPECT_THAT(text, HasSubstr(absl::StrCat(diff.old_bundle().test_case_count(),
                                           " test cases)")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat(diff.new_bundle().test_case_count(),
                                           " test cases)")));

  const std::string json = FormatDiffJson(diff);
  EXPECT_THAT(json, HasSubstr("\"rulesChanged\""));
  EXPECT_THAT(json, HasSubstr("\"effect\": \"MATCHES_MORE\""));
  BundleDiff parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(parsed, diff));
}

TEST(CompareExpressionsTest, SameTokensAreTheSameExpression) {
  EXPECT_EQ(
      CompareExpressions("a.b >= 1 && c", " a . b>=1 &&\n  c // why\n").kind,
      ExpressionDelta::Kind::kSame);
  EXPECT_EQ(CompareExpressions("x >= 1", "x > 1").kind,
            ExpressionDelta::Kind::kRewritten);
  EXPECT_EQ(CompareExpressions("x >= 1", "x >= 1 && y").kind,
            ExpressionDelta::Kind::kRewritten);
  EXPECT_EQ(CompareExpressions("\"a\" in flags", "\"b\" in flags").kind,
            ExpressionDelta::Kind::kRewritten);
  // A sign belongs to the number; a binary minus does not.
  EXPECT_EQ(CompareExpressions("x > -6", "x > 6").kind,
            ExpressionDelta::Kind::kThresholds);
  EXPECT_EQ(CompareExpressions("x - 6 > 0", "x + 6 > 0").kind,
            ExpressionDelta::Kind::kRewritten);
}

ThresholdChange OnlyThreshold(std::string_view old_text,
                              std::string_view new_text) {
  const ExpressionDelta delta = CompareExpressions(old_text, new_text);
  EXPECT_EQ(delta.kind, ExpressionDelta::Kind::kThresholds);
  EXPECT_EQ(delta.thresholds.size(), 1u);
  return delta.thresholds.empty() ? ThresholdChange() : delta.thresholds[0];
}

TEST(CompareExpressionsTest, ThresholdContextAndEffect) {
  ThresholdChange t =
      OnlyThreshold("phq9.pct_change > -0.5", "phq9.pct_change > -0.4");
  EXPECT_EQ(t.context(), "phq9.pct_change >");
  EXPECT_EQ(t.old_value(), "-0.5");
  EXPECT_EQ(t.new_value(), "-0.4");
  EXPECT_EQ(t.effect(), ThresholdChange::MATCHES_FEWER);

  t = OnlyThreshold("phq9.total < 5 && x", "phq9.total < 4 && x");
  EXPECT_EQ(t.effect(), ThresholdChange::MATCHES_FEWER);

  // Number first: read as the fact compared with the number.
  t = OnlyThreshold("16 <= phq9.total", "15 <= phq9.total");
  EXPECT_EQ(t.context(), "phq9.total >=");
  EXPECT_EQ(t.effect(), ThresholdChange::MATCHES_MORE);

  // Under `!(...)` a wider comparison makes a narrower expression.
  t = OnlyThreshold("a && !(b.days <= 1.0)", "a && !(b.days <= 2.0)");
  EXPECT_EQ(t.context(), "b.days <=");
  EXPECT_EQ(t.effect(), ThresholdChange::MATCHES_FEWER);

  t = OnlyThreshold("cssrs.q6 == 2", "cssrs.q6 == 1");
  EXPECT_TRUE(t.comparison());
  EXPECT_EQ(t.effect(), ThresholdChange::EFFECT_UNKNOWN);

  // Arithmetic next to the number: no comparison to name.
  t = OnlyThreshold("x >= y + 1 && z", "x >= y + 2 && z");
  EXPECT_FALSE(t.comparison());
  EXPECT_EQ(t.context(), "y + 2");
  EXPECT_EQ(t.effect(), ThresholdChange::EFFECT_UNKNOWN);

  t = OnlyThreshold("phq9.total * 2 >= 10", "phq9.total * 3 >= 10");
  EXPECT_FALSE(t.comparison());
  // A function's name is not a fact.
  t = OnlyThreshold("2 <= size(flags)", "3 <= size(flags)");
  EXPECT_FALSE(t.comparison());

  // A list element: the list and what is tested against it.
  t = OnlyThreshold("x && cssrs.q6 in [1, 2]", "x && cssrs.q6 in [1, 3]");
  EXPECT_FALSE(t.comparison());
  EXPECT_EQ(t.context(), "cssrs.q6 in [1, 3]");
  t = OnlyThreshold("abs(x - 1) > 2", "abs(x - 2) > 2");
  EXPECT_EQ(t.context(), "x - 2");

  const ExpressionDelta two =
      CompareExpressions("weeks_at_step >= 8.0 && phq9.total >= 10",
                         "weeks_at_step >= 6.0 && phq9.total >= 12");
  ASSERT_EQ(two.thresholds.size(), 2u);
  EXPECT_EQ(two.thresholds[0].context(), "weeks_at_step >=");
  EXPECT_EQ(two.thresholds[1].context(), "phq9.total >=");
}

TEST(CompareExpressionsTest, NeverFailsOnOddText) {
  // Unterminated string, stray characters, empty text: a result either way.
  EXPECT_EQ(CompareExpressions("", "").kind, ExpressionDelta::Kind::kSame);
  EXPECT_EQ(CompareExpressions("'abc", "'abd").kind,
            ExpressionDelta::Kind::kRewritten);
  EXPECT_EQ(CompareExpressions("x # 1", "x # 2").kind,
            ExpressionDelta::Kind::kThresholds);
  EXPECT_EQ(CompareExpressions("-", "1").kind,
            ExpressionDelta::Kind::kRewritten);
  EXPECT_EQ(CompareExpressions("0x1F", "0x20").thresholds.size(), 1u);
}

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

TEST(DiffGoldenTest, RealisticPairTextReport) {
  const std::filesystem::path dir = testing::TestData("diff");
  absl::StatusOr<LoadResult> old_bundle = LoadBundle(dir / "old");
  absl::StatusOr<LoadResult> new_bundle = LoadBundle(dir / "new");
  ASSERT_TRUE(old_bundle.ok() && new_bundle.ok());
  ASSERT_TRUE(old_bundle->ok()) << FormatDiagnostics(old_bundle->diagnostics);
  ASSERT_TRUE(new_bundle->ok()) << FormatDiagnostics(new_bundle->diagnostics);
  const std::string actual =
      FormatDiffText(DiffBundles(*old_bundle->bundle, *new_bundle->bundle));
  const std::filesystem::path expected_path = dir / "realistic.expected";
  if (const char* update = std::getenv("STEPWISE_UPDATE_GOLDENS");
      update && *update == '1') {
    std::ofstream(expected_path, std::ios::binary) << actual;
  }
  EXPECT_EQ(actual, Slurp(expected_path)) << "golden: " << expected_path;
}

}  // namespace
}  // namespace stepwise::engine
