#include "service/audit/audit_log.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "engine/status_macros.h"
#include "service/audit/annotated_mutex.h"
#include "service/audit/format.h"
#include "service/audit/json.h"

namespace stepwise::service::audit {
namespace {

// Fixed buckets, so that the exported series never change shape.
const std::vector<double>& BatchSizeBounds() {
  static const auto* bounds = new std::vector<double>{
      1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  return *bounds;
}
const std::vector<double>& SyncSecondsBounds() {
  static const auto* bounds = new std::vector<double>{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
  return *bounds;
}

class HistogramRecorder {
 public:
  explicit HistogramRecorder(const std::vector<double>& bounds)
      : bounds_(bounds), buckets_(bounds.size(), 0) {}

  void Observe(double value) {
    const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
    if (it != bounds_.end()) ++buckets_[it - bounds_.begin()];
    ++count_;
    sum_ += value;
  }

  Histogram Snapshot() const {
    Histogram h;
    h.bounds = bounds_;
    h.cumulative.reserve(buckets_.size());
    uint64_t running = 0;
    for (uint64_t n : buckets_) h.cumulative.push_back(running += n);
    h.count = count_;
    h.sum = sum_;
    return h;
  }

 private:
  const std::vector<double>& bounds_;
  std::vector<uint64_t> buckets_;  // observations in (bounds[i-1], bounds[i]]
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The record kinds, as the constants the writer keeps (no copy per record).
absl::StatusOr<absl::string_view> KnownKind(absl::string_view kind) {
  for (absl::string_view known :
       {kKindDecision, kKindActivation, kKindShadow}) {
    if (kind == known) return known;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown audit record kind \"", absl::CEscape(kind),
                   "\" (decision, activation or shadow)"));
}

// Checks a body handed to Append and returns where its members lie inside the
// braces. Runs on the caller's thread, so the writer never parses.
absl::StatusOr<std::pair<size_t, size_t>> BodyMembers(absl::string_view body) {
  // A line feed would split the record; JSON strings escape theirs.
  if (body.find_first_of("\r\n") != absl::string_view::npos) {
    return absl::InvalidArgumentError("an audit record body must be one line");
  }
  absl::StatusOr<std::vector<JsonMember>> members = SplitJsonObject(body);
  if (!members.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("an audit record body must be a JSON object: ",
                     members.status().message()));
  }
  for (const JsonMember& member : *members) {
    if (member.name == "seq" || member.name == "kind" ||
        member.name == "time" || member.name == "prev_hash" ||
        member.name == "hash") {
      return absl::InvalidArgumentError(
          absl::StrCat("an audit record body must not hold \"", member.name,
                       "\"; the log writes it"));
    }
  }
  // Inside the braces, without the whitespace around the members.
  const auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  };
  size_t begin = body.find('{') + 1;
  size_t end = body.rfind('}');
  while (begin < end && space(body[begin])) ++begin;
  while (end > begin && space(body[end - 1])) --end;
  return std::make_pair(begin, end);
}

// Where the chain stands when the writer starts.
struct WriterState {
  std::unique_ptr<DirLock> lock;  // held for the life of the log
  std::unique_ptr<WritableFile> file;
  uint64_t segment_number = 0;
  uint64_t segment_size = 0;
  uint64_t last_seq = 0;
  std::string last_hash;
  std::string recovered;  // what recovery did, for AuditLog::recovered()
};

absl::Status Damaged(const std::string& path, const SegmentLine& line,
                     uint64_t seq, absl::string_view reason) {
  return absl::DataLossError(absl::StrCat(
      path, ":", line.number, ": seq ", seq, ": ", reason,
      ". The audit log is damaged or was edited; it is not repaired "
      "automatically (run `stepwise audit verify`)"));
}

// Copies the torn tail of `segment` (from `line` on) to a new quarantine file,
// makes that durable, then cuts the segment back to the last good record.
absl::StatusOr<std::string> Quarantine(FileSystem& fs, const std::string& dir,
                                       const Segment& segment,
                                       absl::string_view contents,
                                       const SegmentLine& line,
                                       absl::string_view reason) {
  STEPWISE_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDir(dir));
  int k = 1;
  const std::string prefix = QuarantineFileName(segment.name, 0);
  const std::string stem = prefix.substr(0, prefix.size() - 1);
  for (const std::string& name : names) {
    int used;
    if (absl::StartsWith(name, stem) &&
        absl::SimpleAtoi(absl::string_view(name).substr(stem.size()), &used)) {
      k = std::max(k, used + 1);
    }
  }
  const std::string quarantine = QuarantineFileName(segment.name, k);
  const absl::string_view torn = contents.substr(line.offset);
  {
    STEPWISE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                              fs.CreateExclusive(JoinPath(dir, quarantine)));
    STEPWISE_RETURN_IF_ERROR(file->Append(torn));
    STEPWISE_RETURN_IF_ERROR(file->Sync());
    STEPWISE_RETURN_IF_ERROR(file->Close());
  }
  STEPWISE_RETURN_IF_ERROR(fs.SyncDir(dir));
  // Only now, with the bytes safe elsewhere, cut them from the segment.
  const std::string path = JoinPath(dir, segment.name);
  STEPWISE_RETURN_IF_ERROR(fs.Truncate(path, line.offset));
  return absl::StrFormat(
      "quarantined a torn record of %d bytes at %s:%d (%s) "
      "to %s",
      torn.size(), segment.name, line.number, reason, quarantine);
}

// Start-up recovery (docs/audit-log.md §5): checks the newest segment and
// its link to the one before, sets a torn last record aside, and opens the
// newest segment for appending.
absl::StatusOr<WriterState> Recover(FileSystem& fs, const std::string& dir) {
  STEPWISE_RETURN_IF_ERROR(fs.CreateDir(dir));
  WriterState state;
  // Before anything is read or moved aside: a second writer would fork the
  // chain, and two recoveries could quarantine each other's records.
  STEPWISE_ASSIGN_OR_RETURN(state.lock, fs.LockDir(dir));
  STEPWISE_ASSIGN_OR_RETURN(std::vector<Segment> segments,
                            ListSegments(fs, dir));
  if (segments.empty()) {
    STEPWISE_ASSIGN_OR_RETURN(
        state.file, fs.CreateExclusive(JoinPath(dir, SegmentFileName(1))));
    STEPWISE_RETURN_IF_ERROR(fs.SyncDir(dir));
    // A new log's folder may be new too: make its name durable, or a crash
    // could take the folder, acknowledged records and all.
    STEPWISE_RETURN_IF_ERROR(fs.SyncDir(ParentDir(dir)));
    state.segment_number = 1;
    state.last_hash = std::string(kZeroHash);
    return state;
  }

  ChainChecker chain;
  if (segments.size() > 1) {
    // Only the newest segment can end torn: a segment is synced before the
    // next one is created.
    const Segment& before = segments[segments.size() - 2];
    const std::string path = JoinPath(dir, before.name);
    STEPWISE_ASSIGN_OR_RETURN(const std::string contents, fs.ReadFile(path));
    const std::vector<SegmentLine> lines = SplitSegmentLines(contents);
    if (lines.empty()) {
      return absl::DataLossError(
          absl::StrCat(path,
                       ": empty, but a newer segment exists; the audit log is "
                       "damaged (run `stepwise audit verify`)"));
    }
    const SegmentLine& last = lines.back();
    absl::StatusOr<RecordLineFields> fields = CheckRecordLine(last.text);
    if (!fields.ok() || !last.terminated) {
      return Damaged(
          path, last, fields.ok() ? fields->seq : 0,
          fields.ok() ? "no line feed at the end" : fields.status().message());
    }
    chain = ChainChecker(fields->seq, std::string(fields->hash));
  }

  const Segment& newest = segments.back();
  const std::string path = JoinPath(dir, newest.name);
  STEPWISE_ASSIGN_OR_RETURN(const std::string contents, fs.ReadFile(path));
  const std::vector<SegmentLine> lines = SplitSegmentLines(contents);
  uint64_t good_end = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const SegmentLine& line = lines[i];
    std::optional<ChainChecker::Break> broken = chain.Next(line);
    if (!broken) {
      good_end = line.offset + line.text.size() + 1;
      continue;
    }
    // A crash can only tear the last record, and only that record's own
    // bytes: an intact record that does not link is damage, not a crash.
    if (i + 1 != lines.size() || !broken->damaged) {
      return Damaged(path, line, broken->seq, broken->reason);
    }
    STEPWISE_ASSIGN_OR_RETURN(
        state.recovered,
        Quarantine(fs, dir, newest, contents, line, broken->reason));
  }
  STEPWISE_ASSIGN_OR_RETURN(state.file, fs.OpenForAppend(path));
  // Makes a quarantine's truncation durable (and costs nothing otherwise).
  STEPWISE_RETURN_IF_ERROR(state.file->Sync());
  state.segment_number = newest.number;
  state.segment_size = good_end;
  state.last_seq = chain.last_seq();
  state.last_hash = chain.last_hash();
  return state;
}

// One record waiting for the writer.
struct Pending {
  absl::string_view kind;    // one of the kind constants
  std::string body;          // as handed to Append
  size_t members_begin = 0;  // the members inside its braces
  size_t members_end = 0;
  absl::Status rejected;  // set when the record is refused before writing
  AuditLog::Done done;

  absl::string_view members() const {
    return absl::string_view(body).substr(members_begin,
                                          members_end - members_begin);
  }
};

// A batch buffer larger than this (a burst of big records) is given back
// after its batch rather than kept for the next.
constexpr size_t kMaxKeptBuffer = 16 << 20;

// A batch never waits for more records than this because the last one held
// them: after a burst (a backlog written at once) the next batch would wait
// out group_commit_wait for records that are not coming.
constexpr size_t kMaxExpectedBatch = 64;

// Lock order: `close_once_` (Close) is taken before `mu_`; `mu_` is a leaf —
// nothing is called out (file system, callbacks, clock) while it is held.
// Locks go through AnnotatedMutexLock so that TSan builds see them.
class AuditLogImpl final : public AuditLog {
 public:
  AuditLogImpl(AuditLogOptions options, FileSystem* fs, WriterState state)
      : lock_(std::move(state.lock)),
        options_(std::move(options)),
        fs_(fs),
        recovered_(std::move(state.recovered)),
        file_(std::move(state.file)),
        segment_number_(state.segment_number),
        segment_size_(state.segment_size),
        seq_(state.last_seq),
        hash_(std::move(state.last_hash)),
        batch_sizes_(BatchSizeBounds()),
        sync_seconds_(SyncSecondsBounds()) {
    stats_.last_seq = seq_;
    stats_.head_hash = hash_;
    stats_.segment = segment_number_;
    writer_ = std::thread([this] { Run(); });
    // Named so that profiles and per-thread CPU figures can find it.
    pthread_setname_np(writer_.native_handle(), "audit-writer");
  }

  ~AuditLogImpl() override { Close(); }

  void Append(std::string kind, std::string body, Done done) override {
    Pending pending;
    absl::StatusOr<absl::string_view> known = KnownKind(kind);
    absl::StatusOr<std::pair<size_t, size_t>> members =
        known.ok() ? BodyMembers(body)
                   : absl::StatusOr<std::pair<size_t, size_t>>(known.status());
    if (members.ok()) {
      pending.kind = *known;
      std::tie(pending.members_begin, pending.members_end) = *members;
    } else {
      pending.rejected = members.status();
    }
    pending.body = std::move(body);
    pending.done = std::move(done);
    Enqueue(std::move(pending));
  }

  void Enqueue(Pending pending) {
    {
      AnnotatedMutexLock lock(&mu_);
      if (!closing_) {
        queue_.push_back(std::move(pending));
        // While the writer holds a batch for announced records, it needs
        // waking only when the batch is full.
        if (!holding_ || HoldIsOver()) work_.Signal();
        return;
      }
    }
    // No writer is left to call back from.
    pending.done(absl::UnavailableError("the audit log is closed"), 0);
  }

  void AppendBody(RecordBody body, Done done) override {
    // Built by record.h's builders: nothing to check, nothing to copy.
    Pending pending;
    pending.kind = body.kind();
    pending.members_begin = 1;
    pending.members_end = body.json().size() - 1;
    pending.body = std::move(body).TakeJson();
    pending.done = std::move(done);
    Enqueue(std::move(pending));
  }

  void BeginAppend() override {
    AnnotatedMutexLock lock(&mu_);
    ++announced_;
  }

  void EndAppend() override {
    AnnotatedMutexLock lock(&mu_);
    if (announced_ > 0) --announced_;
    if (holding_ && HoldIsOver()) work_.Signal();
  }

  bool healthy() const override {
    AnnotatedMutexLock lock(&mu_);
    return !failed_ && !closing_;
  }

  AuditStats stats() const override {
    AnnotatedMutexLock lock(&mu_);
    AuditStats stats = stats_;
    stats.batch_size = batch_sizes_.Snapshot();
    stats.sync_seconds = sync_seconds_.Snapshot();
    return stats;
  }

  std::string recovered() const override { return recovered_; }

  void Close() override {
    std::call_once(close_once_, [this] {
      {
        AnnotatedMutexLock lock(&mu_);
        closing_ = true;
        work_.Signal();
      }
      writer_.join();
      // Nothing more is written: another writer may have the folder now.
      lock_.reset();
    });
  }

 private:
  // The writer thread: group commits until Close() and the queue is drained.
  void Run() {
    std::vector<Pending> batch;
    for (;;) {
      batch.clear();
      {
        AnnotatedMutexLock lock(&mu_);
        while (queue_.empty() && !closing_) AnnotatedWait(&work_, &mu_);
        if (queue_.empty()) break;  // closing, and everything is written
        HoldForAnnouncedRecords();
        const size_t n = std::min(queue_.size(), options_.max_batch);
        if (n == queue_.size()) {
          batch.swap(queue_);
        } else {
          batch.assign(std::make_move_iterator(queue_.begin()),
                       std::make_move_iterator(queue_.begin() + n));
          queue_.erase(queue_.begin(), queue_.begin() + n);
        }
      }
      Commit(batch);
    }
    // Every batch was synced when it was written; nothing is left to lose.
    if (file_ != nullptr) file_->Close().IgnoreError();
  }

  // Adaptive group commit. Records are queued; hold the batch (at most
  // group_commit_wait) while more are known to be on their way, rather than
  // sync now and again a moment later: records announced by BeginAppend and
  // not yet appended, and, when the last batch held several records (calls
  // arrive concurrently), as many as that batch held. A lone caller is never
  // held: its batches hold one record and it announces nothing else.
  bool HoldIsOver() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closing_ || queue_.size() >= options_.max_batch ||
           (announced_ == 0 && queue_.size() >= expected_batch_);
  }

  void HoldForAnnouncedRecords() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (options_.group_commit_wait <= absl::ZeroDuration()) return;
    if (HoldIsOver()) return;
    holding_ = true;
    const absl::Time deadline = absl::Now() + options_.group_commit_wait;
    while (!HoldIsOver()) {
      if (AnnotatedWaitWithDeadline(&work_, &mu_, deadline)) break;
    }
    holding_ = false;
    holds_ += 1;
  }

  // Writes the batch's records, makes them durable with one fdatasync (two
  // if the segment rotates in between), then answers every caller.
  void Commit(std::vector<Pending>& batch) {
    const double cpu_start = ThreadCpuSeconds();
    std::vector<uint64_t> seqs(batch.size(), 0);
    size_t valid = 0;
    for (const Pending& p : batch) valid += p.rejected.ok() ? 1 : 0;

    absl::Status status = failure_;
    if (status.ok() && valid > 0) {
      // Records of one batch share their time (docs §2): format it once.
      const std::string time = FormatRecordTime(options_.now());
      uint64_t seq = seq_;
      std::string& hash = batch_hash_;
      hash = hash_;
      // Every line of the batch goes into one buffer, written with one
      // write(); the buffer keeps its capacity from batch to batch.
      std::string& buffer = buffer_;
      buffer.clear();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!batch[i].rejected.ok()) continue;
        const size_t start = buffer.size();
        AppendRecordLine(seq + 1, batch[i].kind, time, batch[i].members(), hash,
                         &buffer, &line_hash_);
        const uint64_t before = segment_size_ + start;
        if (before > 0 &&
            before + (buffer.size() - start) > options_.segment_bytes) {
          // This line would take the segment past its size: the lines
          // before it end the segment, it starts the next.
          if (start > 0) {
            status = WriteAndSync(absl::string_view(buffer).substr(0, start));
          }
          buffer.erase(0, start);
          if (status.ok()) status = Rotate();
          if (!status.ok()) break;
        }
        seq += 1;
        hash.swap(line_hash_);
        seqs[i] = seq;
      }
      if (status.ok() && !buffer.empty()) status = WriteAndSync(buffer);
      if (buffer.capacity() > kMaxKeptBuffer) std::string().swap(buffer);
      if (status.ok()) {
        seq_ = seq;
        hash_ = hash;
      } else {
        // Fail closed, for good: a log that lost a write cannot promise the
        // next one, and the chain on disk must stay a clean prefix.
        failure_ = absl::UnavailableError(
            absl::StrCat("audit log write failed: ", status.message()));
        status = failure_;
      }
    }

    // Read before taking the lock the callers' appends wait on.
    const double cpu_seconds = ThreadCpuSeconds() - cpu_start;
    {
      AnnotatedMutexLock lock(&mu_);
      if (status.ok()) {
        if (valid > 0) {
          // What the next batch waits for (HoldIsOver): as many records as
          // this one, a burst of which taught nothing about the next.
          expected_batch_ = std::min<size_t>(valid, kMaxExpectedBatch);
          stats_.records += valid;
          stats_.batches += 1;
          batch_sizes_.Observe(static_cast<double>(valid));
        }
      } else {
        stats_.failures += valid;
        failed_ = true;
      }
      stats_.rejected += batch.size() - valid;
      stats_.writer_cpu_seconds += cpu_seconds;
      for (double seconds : sync_latencies_) sync_seconds_.Observe(seconds);
      stats_.syncs += sync_latencies_.size();
      stats_.last_seq = seq_;
      stats_.head_hash = hash_;
      stats_.segment = segment_number_;
      stats_.holds = holds_;
    }
    sync_latencies_.clear();

    for (size_t i = 0; i < batch.size(); ++i) {
      Pending& p = batch[i];
      if (!p.rejected.ok()) {
        p.done(p.rejected, 0);
      } else if (!status.ok()) {
        p.done(status, 0);
      } else {
        p.done(absl::OkStatus(), seqs[i]);
      }
    }
  }

  // The calling thread's CPU time so far (user + system), in seconds.
  static double ThreadCpuSeconds() {
    timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return static_cast<double>(ts.tv_sec) +
           1e-9 * static_cast<double>(ts.tv_nsec);
  }

  std::string SegmentPath() const {
    return JoinPath(options_.dir, SegmentFileName(segment_number_));
  }

  absl::Status WriteAndSync(absl::string_view bytes) {
    if (absl::Status status = file_->Append(bytes); !status.ok()) {
      // Cut a partly written batch back so the file stays a verifiable
      // prefix; if that fails too, start-up recovery quarantines the tail.
      if (fs_->Truncate(SegmentPath(), segment_size_).ok()) {
        file_->Sync().IgnoreError();
      }
      return status;
    }
    segment_size_ += bytes.size();
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = file_->Sync();
    sync_latencies_.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
    // After a failed fdatasync the page cache cannot be trusted to reach the
    // disk; the lines written are whole, so the file stays verifiable either
    // way, and none of them is acknowledged.
    return status;
  }

  absl::Status Rotate() {
    absl::Status status = file_->Close();
    file_.reset();
    if (!status.ok()) return status;
    STEPWISE_ASSIGN_OR_RETURN(
        file_, fs_->CreateExclusive(JoinPath(
                   options_.dir, SegmentFileName(segment_number_ + 1))));
    segment_number_ += 1;
    segment_size_ = 0;
    // The new name must be durable before records in it are acknowledged.
    return fs_->SyncDir(options_.dir);
  }

  // The folder is ours until Close() has stopped the writer (then reset).
  std::unique_ptr<DirLock> lock_;
  const AuditLogOptions options_;
  FileSystem* const fs_;
  const std::string recovered_;

  // The writer thread's own state, touched by nobody else once it runs.
  std::unique_ptr<WritableFile> file_;
  uint64_t segment_number_;
  uint64_t segment_size_;
  uint64_t seq_;          // last record written and synced
  std::string hash_;      // its hash
  absl::Status failure_;  // the first write or sync failure, for good
  std::vector<double> sync_latencies_;  // of the batch being committed
  std::string buffer_;                  // the lines of the batch
  std::string batch_hash_;              // the hash of its last line so far
  std::string line_hash_;               // the hash of the line just built

  mutable absl::Mutex mu_;
  // Signalled when queue_ or closing_ changes, and (while holding_) when the
  // announced records have arrived or the batch is full.
  absl::CondVar work_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  // Calls between BeginAppend and EndAppend.
  int64_t announced_ ABSL_GUARDED_BY(mu_) = 0;
  // True while the writer waits for announced records.
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t holds_ ABSL_GUARDED_BY(mu_) = 0;
  // Records the last batch held, which the next one waits for.
  size_t expected_batch_ ABSL_GUARDED_BY(mu_) = 1;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  AuditStats stats_ ABSL_GUARDED_BY(mu_);
  HistogramRecorder batch_sizes_ ABSL_GUARDED_BY(mu_);
  HistogramRecorder sync_seconds_ ABSL_GUARDED_BY(mu_);

  std::once_flag close_once_;
  std::thread writer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(
    AuditLogOptions options) {
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("the audit log needs a folder (dir)");
  }
  if (options.segment_bytes == 0 || options.max_batch == 0) {
    return absl::InvalidArgumentError(
        "segment_bytes and max_batch must be positive");
  }
  FileSystem* fs = options.fs != nullptr ? options.fs : DefaultFileSystem();
  if (!options.now) options.now = [] { return absl::Now(); };
  STEPWISE_ASSIGN_OR_RETURN(WriterState state, Recover(*fs, options.dir));
  return std::make_unique<AuditLogImpl>(std::move(options), fs,
                                        std::move(state));
}

}  // namespace stepwise::service::audit
