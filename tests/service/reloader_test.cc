// Unit tests of checking and activating candidate bundles (service/
// reloader.h): an injected clock, a fake audit log that records what was
// appended (and can fail), bundle folders made from the service test bundle.
#include "service/reloader.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/audit/record.h"
#include "service/metrics.h"
#include "service/service_metrics.h"
#include "service/work_queue.h"

namespace stepwise::service {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTestBundle[] = STEPWISE_TEST_BUNDLE;

// Appends go to memory; the callback runs on a thread of its own, as the
// real writer's would, or fails with UNAVAILABLE when told to.
class FakeAuditLog final : public audit::AuditLog {
 public:
  struct Entry {
    std::string kind;
    std::string body;
  };

  ~FakeAuditLog() override { Close(); }

  void Append(std::string kind, std::string body, Done done) override {
    absl::MutexLock lock(&mu_);
    if (fail_) {
      threads_.emplace_back([done = std::move(done)] {
        done(absl::UnavailableError("disk on fire"), 0);
      });
      return;
    }
    entries_.push_back({std::move(kind), std::move(body)});
    const uint64_t seq = entries_.size();
    threads_.emplace_back(
        [done = std::move(done), seq] { done(absl::OkStatus(), seq); });
  }
  bool healthy() const override { return true; }
  audit::AuditStats stats() const override { return {}; }
  std::string recovered() const override { return ""; }
  void Close() override {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  void set_fail(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_ = fail;
  }
  std::vector<Entry> entries() {
    absl::MutexLock lock(&mu_);
    return entries_;
  }

 private:
  absl::Mutex mu_;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

// A copy of the service test bundle in a fresh folder, to edit.
std::filesystem::path CopyBundle(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      absl::StrCat("reloader-", name, "-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy(kTestBundle, dir,
                        std::filesystem::copy_options::recursive);
  return dir;
}

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void Replace(const std::filesystem::path& path, const std::string& from,
             const std::string& to) {
  const std::string text = ReadText(path);
  ASSERT_THAT(text, HasSubstr(from)) << path;
  std::ofstream(path, std::ios::trunc)
      << absl::StrReplaceAll(text, {{from, to}});
}

absl::Time Day(int year, int month, int day) {
  return absl::FromCivil(absl::CivilDay(year, month, day), absl::UTCTimeZone());
}

class ReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = CopyBundle(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ReloaderDeps deps;
    deps.bundle_dir = dir_.string();
    deps.active = &active_;
    deps.audit = &audit_;
    deps.metrics = &metrics_;
    deps.clock = [this] {
      absl::MutexLock lock(&clock_mu_);
      return now_;
    };
    deps.log = [this](const std::string& line) {
      absl::MutexLock lock(&log_mu_);
      log_.push_back(line);
    };
    deps.on_audit_failure = [this](const absl::Status&) { ++audit_failures_; };
    reloader_ = std::make_unique<Reloader>(std::move(deps));

    const CheckedCandidate first = CheckBundleDir(dir_.string());
    ASSERT_TRUE(first.validation.ok());
    ASSERT_TRUE(
        reloader_->Activate(first, ReloadTrigger::kStartup, kSystemPrincipal)
            .ok());
    first_sha_ = active_.Get()->bundle->sha256();
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  void SetNow(absl::Time t) {
    absl::MutexLock lock(&clock_mu_);
    now_ = t;
  }
  std::filesystem::path ruleset() const { return dir_ / "ruleset.yaml"; }
  std::string active_sha() const { return active_.Get()->bundle->sha256(); }
  std::string LastLog() {
    absl::MutexLock lock(&log_mu_);
    return log_.empty() ? "" : log_.back();
  }

  std::filesystem::path dir_;
  ActiveBundle active_;
  FakeAuditLog audit_;
  metrics::Registry registry_;
  ServiceMetrics metrics_{&registry_, [] { return audit::AuditStats{}; }};
  absl::Mutex clock_mu_;
  absl::Time now_ ABSL_GUARDED_BY(clock_mu_) = Day(2026, 11, 20);
  absl::Mutex log_mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(log_mu_);
  std::atomic<int> audit_failures_{0};
  std::unique_ptr<Reloader> reloader_;
  std::string first_sha_;
};

TEST_F(ReloaderTest, StartUpActivationIsRecordedWithoutAPredecessor) {
  const auto entries = audit_.entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].kind, "activation");
  EXPECT_THAT(entries[0].body, HasSubstr("\"principal\":\"system\""));
  EXPECT_THAT(entries[0].body, HasSubstr("\"previous_sha256\":\"\""));
  EXPECT_THAT(entries[0].body, HasSubstr("\"trigger\":\"startup\""));
  EXPECT_THAT(entries[0].body, HasSubstr("\"tests\":{\"passed\":5,\"failed\":0,"
                                         "\"uncovered_rules\":[]}"));
  EXPECT_THAT(entries[0].body, HasSubstr(first_sha_));
  EXPECT_THAT(registry_.Serialize(),
              HasSubstr(absl::StrCat("stepwise_ruleset_info{name=\"service-"
                                     "test\",version=\"1.0.0\",sha256=\"",
                                     first_sha_, "\"} 1")));
}

TEST_F(ReloaderTest, AValidNewBundleIsRecordedThenActivated) {
  Replace(ruleset(), "version: 1.0.0", "version: 1.0.1");
  absl::StatusOr<v1::ReloadRulesetResponse> r =
      reloader_->Reload(ReloadTrigger::kRpc, "governance-board");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->activated());
  EXPECT_TRUE(r->validation().ok());
  EXPECT_EQ(r->previous_sha256(), first_sha_);
  EXPECT_EQ(r->active().version(), "1.0.1");
  EXPECT_EQ(r->active().sha256(), active_sha());
  EXPECT_NE(active_sha(), first_sha_);
  EXPECT_EQ(r->active().loaded_at().seconds(),
            absl::ToUnixSeconds(Day(2026, 11, 20)));
  EXPECT_EQ(r->validation().tests_size(), 5);
  EXPECT_EQ(r->active().approved_by(), "Service tests");

  const auto entries = audit_.entries();
  ASSERT_EQ(entries.size(), 2u);
  const std::string& body = entries[1].body;
  EXPECT_THAT(body, HasSubstr("\"principal\":\"governance-board\""));
  EXPECT_THAT(body, HasSubstr(absl::StrCat("\"previous_sha256\":\"", first_sha_,
                                           "\"")));
  EXPECT_THAT(body, HasSubstr(absl::StrCat("\"sha256\":\"", active_sha())));
  EXPECT_THAT(body, HasSubstr("\"version\":\"1.0.1\""));
  EXPECT_THAT(body, HasSubstr("\"approved_by\":\"Service tests\""));
  EXPECT_THAT(body, HasSubstr("\"trigger\":\"rpc\""));
  EXPECT_THAT(body, HasSubstr("\"tests\":{\"passed\":5,\"failed\":0"));

  // The info gauge names only the active bundle.
  const std::string scrape = registry_.Serialize();
  EXPECT_THAT(scrape, HasSubstr("version=\"1.0.1\""));
  EXPECT_THAT(scrape, Not(HasSubstr(first_sha_)));
  EXPECT_THAT(scrape, HasSubstr("stepwise_ruleset_reloads_total{trigger="
                                "\"rpc\",result=\"activated\"} 1"));
  EXPECT_THAT(LastLog(), HasSubstr("reload by rpc (governance-board): "
                                   "activated service-test 1.0.1"));
}

TEST_F(ReloaderTest, AFutureEffectiveFromIsRefusedUntilItArrives) {
  Replace(ruleset(), "approved_by: Service tests",
          "approved_by: Service tests\neffective_from: 2026-12-01");
  absl::StatusOr<v1::ReloadRulesetResponse> r =
      reloader_->Reload(ReloadTrigger::kSignal, kSystemPrincipal);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->activated());
  EXPECT_FALSE(r->validation().ok());
  ASSERT_EQ(r->validation().diagnostics_size(), 1);
  EXPECT_EQ(r->validation().diagnostics(0).file(), "ruleset.yaml");
  EXPECT_EQ(r->validation().diagnostics(0).message(),
            "effective_from 2026-12-01T00:00:00Z is in the future (server "
            "time 2026-11-20T00:00:00Z): the bundle cannot be activated "
            "before then");
  EXPECT_EQ(active_sha(), first_sha_);
  EXPECT_EQ(r->active().sha256(), first_sha_);
  EXPECT_EQ(audit_.entries().size(), 1u);
  EXPECT_THAT(LastLog(), HasSubstr("refused: ruleset.yaml:"));
  EXPECT_THAT(LastLog(), HasSubstr("stays active"));
  EXPECT_THAT(registry_.Serialize(),
              HasSubstr("stepwise_ruleset_reloads_total{trigger=\"signal\","
                        "result=\"refused\"} 1"));

  // The same bundle, once the day has come.
  SetNow(Day(2026, 12, 1));
  r = reloader_->Reload(ReloadTrigger::kSignal, kSystemPrincipal);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->activated());
  EXPECT_EQ(r->active().effective_from().seconds(),
            absl::ToUnixSeconds(Day(2026, 12, 1)));
  EXPECT_THAT(audit_.entries().back().body,
              HasSubstr("\"effective_from\":\"2026-12-01T00:00:00Z\""));
}

TEST_F(ReloaderTest, AFailingTestCaseIsRefused) {
  Replace(dir_ / "tests" / "cases.yaml",
          "expect: {action: STEP_UP, step: 2, matched: [T-UP]}",
          "expect: {action: STAY, step: 1, matched: []}");
  absl::StatusOr<v1::ReloadRulesetResponse> r =
      reloader_->Reload(ReloadTrigger::kRpc, "governance-board");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->activated());
  EXPECT_FALSE(r->validation().ok());
  int failed = 0;
  for (const v1::TestCaseResult& t : r->validation().tests()) {
    if (t.passed()) continue;
    ++failed;
    EXPECT_EQ(t.name(), "a high total steps up");
    EXPECT_THAT(t.diff(), HasSubstr("tests/cases.yaml:"));
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(active_sha(), first_sha_);
  EXPECT_EQ(audit_.entries().size(), 1u);
  EXPECT_THAT(LastLog(),
              HasSubstr("refused: 1 of 5 test cases fail, the first: "
                        "tests/cases.yaml:"));
}

TEST_F(ReloaderTest, BadYamlIsRefusedAtFileLineColumn) {
  std::ofstream(ruleset(), std::ios::app) << "unknown_key: 1\n";
  absl::StatusOr<v1::ReloadRulesetResponse> r =
      reloader_->Reload(ReloadTrigger::kWatch, kSystemPrincipal);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->activated());
  ASSERT_GE(r->validation().diagnostics_size(), 1);
  const v1::Diagnostic& d = r->validation().diagnostics(0);
  EXPECT_EQ(d.file(), "ruleset.yaml");
  EXPECT_GT(d.line(), 30);
  EXPECT_EQ(d.column(), 1);
  EXPECT_THAT(d.message(), HasSubstr("unknown_key"));
  EXPECT_FALSE(r->validation().has_ruleset());
  EXPECT_EQ(active_sha(), first_sha_);

  // Broken YAML syntax, too.
  std::ofstream(ruleset(), std::ios::trunc) << "rules: [unterminated\n";
  r = reloader_->Reload(ReloadTrigger::kWatch, kSystemPrincipal);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->activated());
  ASSERT_GE(r->validation().diagnostics_size(), 1);
  EXPECT_EQ(r->validation().diagnostics(0).file(), "ruleset.yaml");
  EXPECT_GT(r->validation().diagnostics(0).line(), 0);
  EXPECT_EQ(active_sha(), first_sha_);
  EXPECT_EQ(audit_.entries().size(), 1u);
}

TEST_F(ReloaderTest, AMissingFolderIsRefused) {
  std::filesystem::remove_all(dir_);
  absl::StatusOr<v1::ReloadRulesetResponse> r =
      reloader_->Reload(ReloadTrigger::kRpc, "governance-board");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->activated());
  ASSERT_EQ(r->validation().diagnostics_size(), 1);
  EXPECT_THAT(r->validation().diagnostics(0).message(),
              HasSubstr("cannot read the bundle folder"));
  EXPECT_EQ(active_sha(), first_sha_);
}

TEST_F(ReloaderTest, TheActiveSha256IsUnchangedAndNotRecorded) {
  absl::StatusOr<v1::ReloadRulesetResponse> r =
      reloader_->Reload(ReloadTrigger::kRpc, "governance-board");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->activated());
  EXPECT_TRUE(r->validation().ok());
  EXPECT_EQ(r->validation().ruleset().sha256(), first_sha_);
  EXPECT_EQ(r->active().sha256(), first_sha_);
  EXPECT_EQ(r->previous_sha256(), first_sha_);
  EXPECT_EQ(audit_.entries().size(), 1u);
  EXPECT_THAT(LastLog(), HasSubstr("unchanged"));
  EXPECT_THAT(registry_.Serialize(),
              HasSubstr("stepwise_ruleset_reloads_total{trigger=\"rpc\","
                        "result=\"unchanged\"} 1"));
}

TEST_F(ReloaderTest, AnUnwritableRecordLeavesThePreviousBundleActive) {
  Replace(ruleset(), "version: 1.0.0", "version: 1.0.2");
  audit_.set_fail(true);
  absl::StatusOr<v1::ReloadRulesetResponse> r =
      reloader_->Reload(ReloadTrigger::kRpc, "governance-board");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(),
              HasSubstr("the activation record could not be written"));
  EXPECT_THAT(r.status().message(), HasSubstr("stays active"));
  EXPECT_EQ(active_sha(), first_sha_);
  EXPECT_EQ(audit_failures_.load(), 1);
  EXPECT_THAT(LastLog(), HasSubstr("failed:"));
  EXPECT_THAT(registry_.Serialize(),
              HasSubstr("stepwise_ruleset_reloads_total{trigger=\"rpc\","
                        "result=\"failed\"} 1"));
}

TEST_F(ReloaderTest, ConcurrentReloadsAreSerialised) {
  Replace(ruleset(), "version: 1.0.0", "version: 1.1.0");
  constexpr int kThreads = 4;
  std::vector<absl::StatusOr<v1::ReloadRulesetResponse>> results(
      kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<size_t>(i)] =
          reloader_->Reload(ReloadTrigger::kRpc, absl::StrCat("caller-", i));
    });
  }
  for (std::thread& t : threads) t.join();
  int activated = 0;
  int unchanged = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->activated()) {
      ++activated;
      EXPECT_EQ(r->previous_sha256(), first_sha_);
    } else {
      ++unchanged;
      EXPECT_TRUE(r->validation().ok());
      EXPECT_EQ(r->previous_sha256(), active_sha());
    }
  }
  // One activation, recorded once; the others found it already active.
  EXPECT_EQ(activated, 1);
  EXPECT_EQ(unchanged, kThreads - 1);
  EXPECT_EQ(audit_.entries().size(), 2u);
}

TEST(CheckBundleTest, InlineFilesAreCheckedLikeAFolder) {
  absl::StatusOr<engine::BundleFiles> files =
      engine::ReadBundleFiles(kTestBundle);
  ASSERT_TRUE(files.ok()) << files.status();
  CheckedCandidate c = CheckBundleFiles(*files);
  EXPECT_TRUE(c.validation.ok());
  EXPECT_EQ(c.validation.ruleset().name(), "service-test");
  EXPECT_FALSE(c.validation.ruleset().has_loaded_at());
  EXPECT_EQ(c.validation.tests_size(), 5);
  EXPECT_EQ(c.validation.uncovered_rules_size(), 0);

  // A rule no case fires is reported as uncovered, and does not fail.
  (*files)["ruleset.yaml"] = absl::StrReplaceAll(
      (*files)["ruleset.yaml"],
      {{"default:",
        "  - id: T-NEVER\n    title: Never\n    when: "
        "'mood.item1 >= 3 && mood.item2 >= 3 && mood.item3 >= "
        "3'\n    action: STEP_UP\n    rationale: Test.\n"
        "    follow_up: Test.\n    source: test\ndefault:"}});
  c = CheckBundleFiles(*files);
  EXPECT_TRUE(c.validation.ok());
  ASSERT_EQ(c.validation.uncovered_rules_size(), 1);
  EXPECT_EQ(c.validation.uncovered_rules(0), "T-NEVER");
}

TEST(WorkQueueTest, RunsEveryPostedJobAndRefusesAfterStop) {
  std::atomic<int> ran{0};
  WorkQueue work(2);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(work.Post([&ran] { ++ran; }));
  }
  work.Stop();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_FALSE(work.Post([&ran] { ++ran; }));
  work.Stop();  // idempotent
  EXPECT_EQ(ran.load(), 100);
}

}  // namespace
}  // namespace stepwise::service
