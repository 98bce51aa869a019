#include "service/audit/audit_log.h"

#include <time.h>

#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/audit/fault_fs.h"
#include "service/audit/format.h"
#include "service/audit/reader.h"
#include "tests/service/audit/test_util.h"

namespace stepwise::service::audit {
namespace {

using ::stepwise::service::audit::testing::AppendTo;
using ::stepwise::service::audit::testing::Body;
using ::stepwise::service::audit::testing::Collector;
using ::stepwise::service::audit::testing::FreshDir;
using ::stepwise::service::audit::testing::JoinLines;
using ::stepwise::service::audit::testing::Lines;
using ::stepwise::service::audit::testing::Options;
using ::stepwise::service::audit::testing::ReadAll;
using ::stepwise::service::audit::testing::WriteAll;
using ::testing::HasSubstr;
using ::testing::SizeIs;

VerifyResult MustVerify(const std::string& dir) {
  absl::StatusOr<VerifyResult> result = Verify(*DefaultFileSystem(), dir);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : VerifyResult{};
}

std::unique_ptr<AuditLog> MustOpen(AuditLogOptions options) {
  absl::StatusOr<std::unique_ptr<AuditLog>> log =
      AuditLog::Open(std::move(options));
  EXPECT_TRUE(log.ok()) << log.status();
  return log.ok() ? *std::move(log) : nullptr;
}

// Appends records first..last-1 and waits for them; returns their results.
std::vector<Collector::Result> AppendAndWait(AuditLog& log, int first,
                                             int last) {
  Collector collector;
  for (int i = first; i < last; ++i) {
    log.Append("decision", Body(i), collector.Callback(i - first));
  }
  collector.Wait(static_cast<size_t>(last - first));
  return collector.results();
}

std::string Segment1(const std::string& dir) {
  return JoinPath(dir, "000001.jsonl");
}

// This process's CPU time so far, in seconds.
double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         1e-9 * static_cast<double>(ts.tv_nsec);
}

TEST(AuditLogTest, RoundTripAndChain) {
  const std::string dir = FreshDir();
  const double cpu_before = ProcessCpuSeconds();
  auto log = MustOpen(Options(dir));
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(log->healthy());
  EXPECT_EQ(log->recovered(), "");
  const auto results = AppendAndWait(*log, 1, 4);
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].status.ok()) << results[i].status;
    EXPECT_EQ(results[i].seq, i + 1);
  }
  const AuditStats stats = log->stats();
  EXPECT_EQ(stats.records, 3u);
  EXPECT_EQ(stats.last_seq, 3u);
  EXPECT_GE(stats.batches, 1u);
  EXPECT_EQ(stats.syncs, stats.batches);
  EXPECT_EQ(stats.batch_size.count, stats.batches);
  EXPECT_EQ(stats.batch_size.sum, 3);
  EXPECT_EQ(stats.sync_seconds.count, stats.syncs);
  // The writer's own work is counted, and is part of this process's CPU.
  EXPECT_GT(stats.writer_cpu_seconds, 0);
  EXPECT_LE(stats.writer_cpu_seconds, ProcessCpuSeconds() - cpu_before);
  log->Close();
  EXPECT_FALSE(log->healthy());

  const std::vector<std::string> lines = Lines(ReadAll(Segment1(dir)));
  ASSERT_THAT(lines, SizeIs(3));
  EXPECT_TRUE(absl::StartsWith(
      lines[0],
      "{\"seq\":1,\"kind\":\"decision\",\"time\":\"2026-11-20T09:30:00."
      "000000Z\","
      "\"decision_id\":\"d1\",\"n\":1,\"prev_hash\":\"0000000000"));
  // Each record's prev_hash is the hash before it.
  absl::StatusOr<RecordLineFields> first = CheckRecordLine(lines[0]);
  absl::StatusOr<RecordLineFields> second = CheckRecordLine(lines[1]);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(second->prev_hash, first->hash);

  const VerifyResult verified = MustVerify(dir);
  EXPECT_TRUE(verified.ok()) << verified.FirstBreakText();
  EXPECT_EQ(verified.records_checked, 3u);
  EXPECT_EQ(verified.head_hash, stats.head_hash);
}

// One writer per folder: a second log on a folder another one writes to is
// refused before it reads or moves anything, and gets it once the first
// has closed (or its process has died: the kernel lets the lock go).
TEST(AuditLogTest, ASecondWriterOnTheSameFolderIsRefused) {
  const std::string dir = FreshDir();
  auto first = MustOpen(Options(dir));
  ASSERT_TRUE(AppendAndWait(*first, 1, 3)[1].status.ok());
  absl::StatusOr<std::unique_ptr<AuditLog>> second =
      AuditLog::Open(Options(dir));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("is in use by another writer"));
  // The first goes on, and the chain is one chain.
  ASSERT_TRUE(AppendAndWait(*first, 3, 4)[0].status.ok());
  first->Close();
  auto next = MustOpen(Options(dir));
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->stats().last_seq, 3u);
  next.reset();
  EXPECT_EQ(MustVerify(dir).records_checked, 3u);
}

TEST(AuditLogTest, ReopenContinuesTheChain) {
  const std::string dir = FreshDir();
  std::string head;
  {
    auto log = MustOpen(Options(dir));
    AppendAndWait(*log, 1, 3);
    head = log->stats().head_hash;
  }
  auto log = MustOpen(Options(dir));
  EXPECT_EQ(log->stats().last_seq, 2u);
  EXPECT_EQ(log->stats().head_hash, head);
  const auto results = AppendAndWait(*log, 3, 5);
  EXPECT_EQ(results[0].seq, 3u);
  EXPECT_EQ(results[1].seq, 4u);
  log->Close();
  const VerifyResult verified = MustVerify(dir);
  EXPECT_TRUE(verified.ok()) << verified.FirstBreakText();
  EXPECT_EQ(verified.records_checked, 4u);
}

TEST(AuditLogTest, RefusesMalformedRecordsWithoutUsingASeq) {
  const std::string dir = FreshDir();
  auto log = MustOpen(Options(dir));
  Collector collector;
  log->Append("decision", Body(1), collector.Callback(0));
  log->Append("verdict", Body(2), collector.Callback(1));
  log->Append("decision", "[1,2]", collector.Callback(2));
  log->Append("decision", "{\"seq\":7}", collector.Callback(3));
  log->Append("decision", "{\"a\":\n1}", collector.Callback(4));
  log->Append("decision", "{\"a\":1", collector.Callback(5));
  log->Append("activation", "{}", collector.Callback(6));
  collector.Wait(7);
  const auto results = collector.results();
  EXPECT_TRUE(results[0].status.ok());
  EXPECT_EQ(results[0].seq, 1u);
  for (int i = 1; i <= 5; ++i) {
    EXPECT_EQ(results[i].status.code(), absl::StatusCode::kInvalidArgument)
        << i << ": " << results[i].status;
    EXPECT_EQ(results[i].seq, 0u);
  }
  EXPECT_TRUE(results[6].status.ok());
  EXPECT_EQ(results[6].seq, 2u);
  EXPECT_TRUE(log->healthy());
  EXPECT_EQ(log->stats().rejected, 5u);
  log->Close();
  EXPECT_EQ(MustVerify(dir).records_checked, 2u);
}

TEST(AuditLogTest, AppendAfterCloseFailsAtOnce) {
  auto log = MustOpen(Options(FreshDir()));
  log->Close();
  log->Close();  // idempotent
  absl::Status got;
  log->Append("decision", Body(1), [&](absl::Status s, uint64_t) { got = s; });
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable);
}

TEST(AuditLogTest, CloseDrainsEverythingQueued) {
  const std::string dir = FreshDir();
  auto log = MustOpen(Options(dir));
  Collector collector;
  for (int i = 0; i < 100; ++i) {
    log->Append("decision", Body(i), collector.Callback(i));
  }
  log->Close();
  EXPECT_EQ(collector.count(), 100u);
  for (const auto& r : collector.results()) EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(MustVerify(dir).records_checked, 100u);
}

TEST(AuditLogTest, RejectsBadOptions) {
  AuditLogOptions options;
  EXPECT_EQ(AuditLog::Open(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = Options(FreshDir());
  options.max_batch = 0;
  EXPECT_EQ(AuditLog::Open(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A file system whose file syncs wait until the test opens the gate, so that
// appenders queue up behind the writer deterministically.
class GatedFileSystem final : public FileSystem {
 public:
  explicit GatedFileSystem(FileSystem* base) : base_(base) {}
  void Open() { gate_.Open(); }

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenForAppend(
      const std::string& path) override {
    return Wrap(base_->OpenForAppend(path));
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateExclusive(
      const std::string& path) override {
    return Wrap(base_->CreateExclusive(path));
  }
  absl::StatusOr<std::string> ReadFile(const std::string& p) override {
    return base_->ReadFile(p);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& d) override {
    return base_->ListDir(d);
  }
  absl::Status CreateDir(const std::string& d) override {
    return base_->CreateDir(d);
  }
  absl::Status SyncDir(const std::string& d) override {
    return base_->SyncDir(d);
  }
  absl::Status Rename(const std::string& f, const std::string& t) override {
    return base_->Rename(f, t);
  }
  absl::Status Remove(const std::string& p) override {
    return base_->Remove(p);
  }
  absl::Status Truncate(const std::string& p, uint64_t s) override {
    return base_->Truncate(p, s);
  }
  absl::StatusOr<uint64_t> FileSize(const std::string& p) override {
    return base_->FileSize(p);
  }
  absl::StatusOr<bool> FileExists(const std::string& p) override {
    return base_->FileExists(p);
  }
  absl::StatusOr<uint32_t> Permissions(const std::string& p) override {
    return base_->Permissions(p);
  }
  absl::Status SetOwnerOnly(const std::string& p) override {
    return base_->SetOwnerOnly(p);
  }

 private:
  // Closed until Open(); std::mutex so that TSan sees the ordering.
  class Gate {
   public:
    void Open() {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
      cv_.notify_all();
    }
    void Wait() {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return open_; });
    }

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
  };

  class File final : public WritableFile {
   public:
    File(std::unique_ptr<WritableFile> base, Gate* gate)
        : base_(std::move(base)), gate_(gate) {}
    absl::Status Append(absl::string_view d) override {
      return base_->Append(d);
    }
    absl::Status Sync() override {
      gate_->Wait();
      return base_->Sync();
    }
    absl::Status Close() override { return base_->Close(); }

   private:
    std::unique_ptr<WritableFile> base_;
    Gate* gate_;
  };

  absl::StatusOr<std::unique_ptr<WritableFile>> Wrap(
      absl::StatusOr<std::unique_ptr<WritableFile>> file) {
    if (!file.ok()) return file.status();
    return std::make_unique<File>(*std::move(file), &gate_);
  }

  FileSystem* const base_;
  Gate gate_;
};

TEST(AuditLogTest, GroupCommitUnderConcurrentAppenders) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  constexpr int kTotal = kThreads * kPerThread;
  const std::string dir = FreshDir();
  GatedFileSystem fs(DefaultFileSystem());
  AuditLogOptions options = Options(dir, &fs);
  options.max_batch = 1024;
  auto log = MustOpen(options);

  Collector collector;
  std::vector<AuditLog::Done> callbacks;
  for (int i = 0; i < kTotal; ++i) callbacks.push_back(collector.Callback(i));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int index = t * kPerThread + i;
        log->Append("decision", Body(index), std::move(callbacks[index]));
      }
    });
  }
  // Append never waits for the disk: every appender finishes while the
  // writer is held in its first fdatasync.
  for (std::thread& thread : threads) thread.join();
  EXPECT_LT(collector.count(), static_cast<size_t>(kTotal));
  fs.Open();
  collector.Wait(kTotal);
  log->Close();

  std::set<uint64_t> seqs;
  const std::vector<Collector::Result> results = collector.results();
  for (int i = 0; i < kTotal; ++i) {
    EXPECT_EQ(collector.calls(i), 1) << i;
    const Collector::Result& result = results[i];
    ASSERT_TRUE(result.status.ok()) << result.status;
    seqs.insert(result.seq);
  }
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kTotal));
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), static_cast<uint64_t>(kTotal));

  const AuditStats stats = log->stats();
  EXPECT_EQ(stats.records, static_cast<uint64_t>(kTotal));
  // The first batch can hold few records; everything queued behind it is
  // committed max_batch at a time.
  EXPECT_LE(stats.batches, 2 + kTotal / options.max_batch);
  EXPECT_EQ(stats.syncs, stats.batches);
  EXPECT_EQ(stats.batch_size.sum, kTotal);
  EXPECT_EQ(stats.batch_size.cumulative.back(), stats.batches);

  const VerifyResult verified = MustVerify(dir);
  EXPECT_TRUE(verified.ok()) << verified.FirstBreakText();
  EXPECT_EQ(verified.records_checked, static_cast<uint64_t>(kTotal));
  EXPECT_EQ(verified.head_hash, stats.head_hash);
}

// A record's callback runs only after the fdatasync of its batch returned.
TEST(AuditLogTest, CallbackRunsOnlyAfterSync) {
  const std::string dir = FreshDir();
  FaultInjectingFileSystem fs(DefaultFileSystem());
  auto log = MustOpen(Options(dir, &fs));
  const int syncs_before = fs.syncs();
  int syncs_seen = -1;
  Collector collector;
  AuditLog::Done record = collector.Callback(0);
  log->Append("decision", Body(1), [&](absl::Status s, uint64_t seq) {
    syncs_seen = fs.syncs();
    record(std::move(s), seq);
  });
  collector.Wait(1);
  EXPECT_EQ(syncs_seen, syncs_before + 1);
}

// Announced records (AppendIntent) share the batch of the record queued
// before them: the writer holds the batch until they have arrived.
TEST(AuditLogGroupCommitTest, WaitsForAnnouncedRecords) {
  const std::string dir = FreshDir();
  AuditLogOptions options = Options(dir);
  // Long enough that only the announced records can end the hold.
  options.group_commit_wait = absl::Hours(1);
  auto log = MustOpen(options);
  Collector collector;
  {
    AppendIntent first(log.get());
    AppendIntent second(log.get());
    log->Append("decision", Body(1), collector.Callback(0));
    first.Release();
    log->Append("decision", Body(2), collector.Callback(1));
  }  // `second` gives up without a record
  ASSERT_TRUE(collector.WaitFor(2, absl::Seconds(30)));
  log->Close();
  const AuditStats stats = log->stats();
  // Held for the announced records, or (had the writer woken only after
  // both were appended) not held at all: one batch either way.
  EXPECT_EQ(stats.records, 2u);
  EXPECT_EQ(stats.batches, 1u);
  EXPECT_EQ(stats.syncs, 1u);
  EXPECT_TRUE(MustVerify(dir).ok());
}

// After a batch of several records (concurrent callers), the next batch
// waits for as many before its fdatasync.
TEST(AuditLogGroupCommitTest, WaitsForAsManyRecordsAsTheLastBatchHeld) {
  const std::string dir = FreshDir();
  AuditLogOptions options = Options(dir);
  options.group_commit_wait = absl::Hours(1);
  auto log = MustOpen(options);
  Collector collector;
  {
    // The first batch holds three: the announced records are waited for.
    AppendIntent more(log.get());
    for (int i = 0; i < 3; ++i) {
      log->Append("decision", Body(i), collector.Callback(i));
    }
  }
  ASSERT_TRUE(collector.WaitFor(3, absl::Seconds(30)));
  // Nothing announced now; the writer still waits for a third record.
  for (int i = 3; i < 6; ++i) {
    log->Append("decision", Body(i), collector.Callback(i));
  }
  ASSERT_TRUE(collector.WaitFor(6, absl::Seconds(30)));
  log->Close();
  const AuditStats stats = log->stats();
  EXPECT_EQ(stats.records, 6u);
  EXPECT_EQ(stats.batches, 2u);
  EXPECT_TRUE(MustVerify(dir).ok());
}

TEST(AuditLogGroupCommitTest, NothingAnnouncedNothingHeld) {
  AuditLogOptions options = Options(FreshDir());
  options.group_commit_wait = absl::Hours(1);
  auto log = MustOpen(options);
  Collector collector;
  log->Append("decision", Body(1), collector.Callback(0));
  // Were the record held, this would time out.
  ASSERT_TRUE(collector.WaitFor(1, absl::Seconds(30)));
  EXPECT_TRUE(collector.results()[0].status.ok());
  EXPECT_EQ(log->stats().holds, 0u);
}

TEST(AuditLogGroupCommitTest, TheHoldIsBounded) {
  AuditLogOptions options = Options(FreshDir());
  options.group_commit_wait = absl::Milliseconds(2);
  auto log = MustOpen(options);
  AppendIntent never_arrives(log.get());
  Collector collector;
  log->Append("decision", Body(1), collector.Callback(0));
  ASSERT_TRUE(collector.WaitFor(1, absl::Seconds(30)));
  EXPECT_TRUE(collector.results()[0].status.ok());
  EXPECT_EQ(log->stats().holds, 1u);
}

TEST(AuditLogGroupCommitTest, AFullBatchIsNotHeld) {
  AuditLogOptions options = Options(FreshDir());
  options.group_commit_wait = absl::Hours(1);
  options.max_batch = 2;
  auto log = MustOpen(options);
  AppendIntent more_to_come(log.get());
  Collector collector;
  log->Append("decision", Body(1), collector.Callback(0));
  log->Append("decision", Body(2), collector.Callback(1));
  ASSERT_TRUE(collector.WaitFor(2, absl::Seconds(30)));
  EXPECT_EQ(collector.results()[1].seq, 2u);
}

TEST(AuditLogGroupCommitTest, CloseEndsTheHold) {
  const std::string dir = FreshDir();
  AuditLogOptions options = Options(dir);
  options.group_commit_wait = absl::Hours(1);
  auto log = MustOpen(options);
  AppendIntent more_to_come(log.get());
  Collector collector;
  log->Append("decision", Body(1), collector.Callback(0));
  log->Close();  // joins the writer: returns only once the hold ended
  ASSERT_TRUE(collector.WaitFor(1, absl::Seconds(30)));
  EXPECT_TRUE(collector.results()[0].status.ok());
  EXPECT_EQ(MustVerify(dir).records_checked, 1u);
}

TEST(AuditLogGroupCommitTest, IntentsMoveAndReleaseOnce) {
  AuditLogOptions options = Options(FreshDir());
  options.group_commit_wait = absl::Hours(1);
  auto log = MustOpen(options);
  AppendIntent moved_from(log.get());
  AppendIntent moved_to = std::move(moved_from);
  moved_from.Release();  // nothing left to release
  AppendIntent assigned(nullptr);
  assigned = std::move(moved_to);
  assigned.Release();
  assigned.Release();
  // Nothing is announced any more, so nothing is held.
  Collector collector;
  log->Append("decision", Body(1), collector.Callback(0));
  ASSERT_TRUE(collector.WaitFor(1, absl::Seconds(30)));
  EXPECT_EQ(log->stats().holds, 0u);
}

// Profiles and stepwise-load find the writer by its name.
TEST(AuditLogTest, WriterThreadIsNamed) {
  auto log = MustOpen(Options(FreshDir()));
  int named = 0;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/self/task")) {
    if (ReadAll(task.path().string() + "/comm") == "audit-writer\n") {
      ++named;
    }
  }
  EXPECT_EQ(named, 1);
}

TEST(AuditLogFaultTest, AppendFailureFailsClosed) {
  const std::string dir = FreshDir();
  FaultInjectingFileSystem fs(DefaultFileSystem());
  auto log = MustOpen(Options(dir, &fs));
  for (const auto& r : AppendAndWait(*log, 1, 4)) ASSERT_TRUE(r.status.ok());

  fs.FailAppend(1, ENOSPC);
  const auto failed = AppendAndWait(*log, 4, 6);
  for (const auto& r : failed) {
    EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
    EXPECT_THAT(r.status.message(), HasSubstr("injected"));
    EXPECT_EQ(r.seq, 0u);
  }
  EXPECT_FALSE(log->healthy());
  // Later records fail too, though the disk would take them now.
  const auto later = AppendAndWait(*log, 6, 7);
  EXPECT_EQ(later[0].status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(log->healthy());
  const AuditStats stats = log->stats();
  EXPECT_EQ(stats.failures, 3u);
  EXPECT_EQ(stats.records, 3u);
  EXPECT_EQ(stats.last_seq, 3u);
  log->Close();

  const VerifyResult verified = MustVerify(dir);
  EXPECT_TRUE(verified.ok()) << verified.FirstBreakText();
  EXPECT_EQ(verified.records_checked, 3u);
}

TEST(AuditLogFaultTest, SyncFailureFailsClosed) {
  const std::string dir = FreshDir();
  FaultInjectingFileSystem fs(DefaultFileSystem());
  auto log = MustOpen(Options(dir, &fs));
  for (const auto& r : AppendAndWait(*log, 1, 3)) ASSERT_TRUE(r.status.ok());

  fs.FailSync(1, EIO);
  const auto failed = AppendAndWait(*log, 3, 5);
  for (const auto& r : failed) {
    EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  }
  EXPECT_FALSE(log->healthy());
  EXPECT_EQ(AppendAndWait(*log, 5, 6)[0].status.code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(log->stats().last_seq, 2u);
  log->Close();

  // The unacknowledged lines were written whole: the file still verifies,
  // and a restart continues after whatever reached the disk.
  const VerifyResult verified = MustVerify(dir);
  EXPECT_TRUE(verified.ok()) << verified.FirstBreakText();
  EXPECT_GE(verified.records_checked, 2u);
  auto reopened = MustOpen(Options(dir));
  EXPECT_TRUE(reopened->healthy());
  EXPECT_EQ(reopened->stats().last_seq, verified.records_checked);
}

TEST(AuditLogFaultTest, TornWriteIsCutBack) {
  const std::string dir = FreshDir();
  FaultInjectingFileSystem fs(DefaultFileSystem());
  auto log = MustOpen(Options(dir, &fs));
  AppendAndWait(*log, 1, 3);
  const std::string before = ReadAll(Segment1(dir));

  fs.TearAppend(1, ENOSPC);
  EXPECT_EQ(AppendAndWait(*log, 3, 4)[0].status.code(),
            absl::StatusCode::kUnavailable);
  log->Close();
  EXPECT_EQ(ReadAll(Segment1(dir)), before);
  EXPECT_EQ(MustVerify(dir).records_checked, 2u);
}

TEST(AuditLogFaultTest, TornWriteThatCannotBeCutBackIsRecoveredAtStart) {
  const std::string dir = FreshDir();
  FaultInjectingFileSystem fs(DefaultFileSystem());
  auto log = MustOpen(Options(dir, &fs));
  AppendAndWait(*log, 1, 3);

  fs.FailTruncate(EIO);
  fs.TearAppend(1, EIO);
  EXPECT_EQ(AppendAndWait(*log, 3, 4)[0].status.code(),
            absl::StatusCode::kUnavailable);
  log->Close();
  const VerifyResult torn = MustVerify(dir);
  ASSERT_FALSE(torn.ok());
  EXPECT_EQ(torn.first_break->line, 3u);
  EXPECT_THAT(torn.first_break->reason, HasSubstr("torn"));

  auto reopened = MustOpen(Options(dir));
  EXPECT_THAT(reopened->recovered(),
              HasSubstr("at 000001.jsonl:3 (no line feed at the end"));
  EXPECT_EQ(AppendAndWait(*reopened, 3, 4)[0].seq, 3u);
  reopened->Close();
  const VerifyResult verified = MustVerify(dir);
  EXPECT_TRUE(verified.ok()) << verified.FirstBreakText();
  EXPECT_EQ(verified.records_checked, 3u);
}

TEST(AuditLogFaultTest, FailureWhileRotatingFailsTheBatch) {
  const std::string dir = FreshDir();
  FaultInjectingFileSystem fs(DefaultFileSystem());
  AuditLogOptions options = Options(dir, &fs);
  options.segment_bytes = 1;  // every record gets its own segment
  auto log = MustOpen(options);
  AppendAndWait(*log, 1, 3);
  fs.FailSync(1, EIO);
  EXPECT_EQ(AppendAndWait(*log, 3, 4)[0].status.code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(log->healthy());
  log->Close();
  EXPECT_TRUE(MustVerify(dir).ok());
}

// --- Torn tails and damage, written on purpose ---

std::string WriteLog(const std::string& dir, int records,
                     uint64_t segment_bytes = 64u << 20) {
  AuditLogOptions options = Options(dir);
  options.segment_bytes = segment_bytes;
  auto log = MustOpen(options);
  AppendAndWait(*log, 1, records + 1);
  return log->stats().head_hash;
}

TEST(AuditLogRecoveryTest, HalfALineIsQuarantined) {
  const std::string dir = FreshDir();
  WriteLog(dir, 5);
  const std::string good = ReadAll(Segment1(dir));
  const std::string torn = Lines(good)[2].substr(0, 40);
  AppendTo(Segment1(dir), torn);

  auto log = MustOpen(Options(dir));
  EXPECT_EQ(log->recovered(),
            absl::StrCat("quarantined a torn record of ", torn.size(),
                         " bytes at 000001.jsonl:6 (no line feed at the end "
                         "(a torn write)) to 000001.jsonl.torn-1"));
  EXPECT_EQ(ReadAll(JoinPath(dir, "000001.jsonl.torn-1")), torn);
  EXPECT_EQ(ReadAll(Segment1(dir)), good);
  EXPECT_EQ(log->stats().last_seq, 5u);
  EXPECT_EQ(AppendAndWait(*log, 6, 7)[0].seq, 6u);
  log->Close();
  const VerifyResult verified = MustVerify(dir);
  EXPECT_TRUE(verified.ok()) << verified.FirstBreakText();
  EXPECT_EQ(verified.records_checked, 6u);
}

TEST(AuditLogRecoveryTest, LastLineWithBadHashIsQuarantined) {
  const std::string dir = FreshDir();
  WriteLog(dir, 5);
  std::vector<std::string> lines = Lines(ReadAll(Segment1(dir)));
  const std::string original = lines[4];
  lines[4].replace(lines[4].find("\"n\":5"), 5, "\"n\":6");
  WriteAll(Segment1(dir), JoinLines(lines));

  auto log = MustOpen(Options(dir));
  EXPECT_THAT(log->recovered(),
              HasSubstr("at 000001.jsonl:5 (hash does not match the record) "
                        "to 000001.jsonl.torn-1"));
  EXPECT_EQ(ReadAll(JoinPath(dir, "000001.jsonl.torn-1")),
            absl::StrCat(lines[4], "\n"));
  // The chain continues from seq 4, the last good record.
  EXPECT_EQ(log->stats().last_seq, 4u);
  EXPECT_EQ(AppendAndWait(*log, 5, 6)[0].seq, 5u);
  log->Close();
  EXPECT_TRUE(MustVerify(dir).ok());
}

TEST(AuditLogRecoveryTest, SecondQuarantineOfASegmentGetsTheNextNumber) {
  const std::string dir = FreshDir();
  WriteLog(dir, 2);
  AppendTo(Segment1(dir), "{\"seq\":3,");
  MustOpen(Options(dir))->Close();
  AppendTo(Segment1(dir), "{\"seq\":");
  auto log = MustOpen(Options(dir));
  EXPECT_THAT(log->recovered(), HasSubstr("to 000001.jsonl.torn-2"));
  EXPECT_EQ(ReadAll(JoinPath(dir, "000001.jsonl.torn-1")), "{\"seq\":3,");
  EXPECT_EQ(ReadAll(JoinPath(dir, "000001.jsonl.torn-2")), "{\"seq\":");
}

TEST(AuditLogRecoveryTest, DamageInTheMiddleRefusesToOpen) {
  const std::string dir = FreshDir();
  WriteLog(dir, 5);
  std::vector<std::string> lines = Lines(ReadAll(Segment1(dir)));
  lines[2].replace(lines[2].find("\"n\":3"), 5, "\"n\":9");
  WriteAll(Segment1(dir), JoinLines(lines));

  const absl::Status status = AuditLog::Open(Options(dir)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      status.message(),
      HasSubstr(absl::StrCat(Segment1(dir), ":3: seq 3: hash does not match")));
  // Nothing was quarantined or cut.
  EXPECT_FALSE(std::filesystem::exists(JoinPath(dir, "000001.jsonl.torn-1")));
  EXPECT_EQ(Lines(ReadAll(Segment1(dir))), lines);

  const VerifyResult verified = MustVerify(dir);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.first_break->file, "000001.jsonl");
  EXPECT_EQ(verified.first_break->line, 3u);
  EXPECT_EQ(verified.first_break->seq, 3u);
  EXPECT_EQ(verified.records_checked, 2u);
}

TEST(AuditLogRecoveryTest, IntactLastLineThatDoesNotLinkRefusesToOpen) {
  const std::string dir = FreshDir();
  WriteLog(dir, 5);
  std::vector<std::string> lines = Lines(ReadAll(Segment1(dir)));
  lines.erase(lines.begin() + 3);  // seq 4 removed; seq 5 is now last
  WriteAll(Segment1(dir), JoinLines(lines));
  const absl::Status status = AuditLog::Open(Options(dir)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(),
              HasSubstr(":4: seq 5: expected seq 4 after seq 3"));
}

TEST(AuditLogRecoveryTest, RemovedRecordBreaksTheChain) {
  const std::string dir = FreshDir();
  WriteLog(dir, 5);
  std::vector<std::string> lines = Lines(ReadAll(Segment1(dir)));
  lines.erase(lines.begin() + 1);
  WriteAll(Segment1(dir), JoinLines(lines));
  const VerifyResult verified = MustVerify(dir);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.FirstBreakText(),
            "000001.jsonl:2: seq 3: expected seq 2 after seq 1");
}

TEST(AuditLogRecoveryTest, ReorderedRecordsBreakTheChain) {
  const std::string dir = FreshDir();
  WriteLog(dir, 4);
  std::vector<std::string> lines = Lines(ReadAll(Segment1(dir)));
  std::swap(lines[1], lines[2]);
  WriteAll(Segment1(dir), JoinLines(lines));
  const VerifyResult verified = MustVerify(dir);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.first_break->line, 2u);
  EXPECT_EQ(verified.first_break->seq, 3u);
}

// --- Rotation ---

TEST(AuditLogRotationTest, RotatesBySizeAndVerifiesAcrossSegments) {
  const std::string dir = FreshDir();
  const uint64_t kSegmentBytes = 700;
  WriteLog(dir, 20, kSegmentBytes);
  absl::StatusOr<std::vector<Segment>> segments =
      ListSegments(*DefaultFileSystem(), dir);
  ASSERT_TRUE(segments.ok());
  ASSERT_GT(segments->size(), 3u);
  for (size_t i = 0; i < segments->size(); ++i) {
    EXPECT_EQ((*segments)[i].number, i + 1);
    const std::string contents = ReadAll(JoinPath(dir, (*segments)[i].name));
    EXPECT_LE(contents.size(), kSegmentBytes);
    EXPECT_FALSE(contents.empty());
  }
  VerifyResult verified = MustVerify(dir);
  EXPECT_TRUE(verified.ok()) << verified.FirstBreakText();
  EXPECT_EQ(verified.records_checked, 20u);

  // Reopening continues in the newest segment and on into new ones.
  AuditLogOptions options = Options(dir);
  options.segment_bytes = kSegmentBytes;
  auto log = MustOpen(options);
  EXPECT_EQ(log->stats().segment, segments->back().number);
  EXPECT_EQ(AppendAndWait(*log, 21, 31).back().seq, 30u);
  log->Close();
  verified = MustVerify(dir);
  EXPECT_TRUE(verified.ok()) << verified.FirstBreakText();
  EXPECT_EQ(verified.records_checked, 30u);

  // Damage in an older segment is named by that segment.
  const std::string second = JoinPath(dir, (*segments)[1].name);
  std::vector<std::string> lines = Lines(ReadAll(second));
  lines[0][lines[0].size() - 3] ^= 1;  // a hex digit of the hash
  WriteAll(second, JoinLines(lines));
  verified = MustVerify(dir);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.first_break->file, "000002.jsonl");
  EXPECT_EQ(verified.first_break->line, 1u);
}

TEST(AuditLogRotationTest, EmptyNewestSegmentFromACrashIsReused) {
  const std::string dir = FreshDir();
  WriteLog(dir, 6, 700);
  absl::StatusOr<std::vector<Segment>> segments =
      ListSegments(*DefaultFileSystem(), dir);
  ASSERT_TRUE(segments.ok());
  const uint64_t next = segments->back().number + 1;
  WriteAll(JoinPath(dir, SegmentFileName(next)), "");
  AuditLogOptions options = Options(dir);
  options.segment_bytes = 700;
  auto log = MustOpen(options);
  EXPECT_EQ(log->stats().segment, next);
  EXPECT_EQ(AppendAndWait(*log, 7, 8)[0].seq, 7u);
  log->Close();
  EXPECT_TRUE(MustVerify(dir).ok());
  EXPECT_FALSE(ReadAll(JoinPath(dir, SegmentFileName(next))).empty());
}

TEST(AuditLogRotationTest, NewestSegmentMustLinkToThePrevious) {
  const std::string dir = FreshDir();
  WriteLog(dir, 6, 700);
  absl::StatusOr<std::vector<Segment>> segments =
      ListSegments(*DefaultFileSystem(), dir);
  ASSERT_TRUE(segments.ok() && segments->size() >= 3);
  // Drop the segment before the newest: the newest no longer links.
  std::filesystem::remove(
      JoinPath(dir, (*segments)[segments->size() - 2].name));
  const absl::Status status = AuditLog::Open(Options(dir)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
}

}  // namespace
}  // namespace stepwise::service::audit
