// Replay benchmark (docs/replay.md, docs/BENCHMARKS.md): `stepwise replay`
// over an audit log of 200,000 decision records, written once into a temp
// folder the way the server writes them (the default bundle decides varied
// requests; record bodies, hashes and the chain as the audit log makes
// them).
//
//  - Baseline: mapping the segments and splitting them into lines, one
//    thread, as replay reads them: what any replay must pay at least; and
//    the former baseline, reading them into strings.
//  - Replay with 1 and 2 worker threads against the default bundle.
//    Goal: >= 500 k records/s with 2 threads (this machine has 2 cores).
//  - Per record, one thread: the fast line reader, the exact parser
//    (ParseRecord) it falls back to, and EvaluateOutcome, to show where the
//    time goes.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "engine/bundle.h"
#include "engine/engine.h"
#include "service/audit/file_system.h"
#include "service/audit/format.h"
#include "service/audit/record.h"
#include "tools/replay_reader.h"

namespace stepwise::bench {
namespace {

namespace audit = ::stepwise::service::audit;

// Records in the log: 200,000 unless --records=N is given (a small log
// keeps an instruction count under callgrind affordable).
int g_records = 200000;
constexpr int64_t kSegmentBytes = int64_t{64} << 20;  // the server's default
const std::string kRules = STEPWISE_SOURCE_DIR "/rules";

const engine::Bundle& DefaultBundle() {
  static auto* bundle = new std::shared_ptr<const engine::Bundle>([] {
    absl::StatusOr<engine::LoadResult> r = engine::LoadBundle(kRules);
    if (!r.ok() || !r->ok()) std::abort();
    return r->bundle;
  }());
  return **bundle;
}

// One administration of `instrument` with `items` answers around `level`
// (0..max), at `when`.
void AddAssessment(std::mt19937& rng, v1::EvaluateRequest* request,
                   const char* instrument, int items, int max, int level,
                   absl::Time when) {
  v1::Assessment* a = request->add_assessments();
  a->set_instrument(instrument);
  for (int i = 1; i <= items; ++i) {
    const int v = std::clamp(level + static_cast<int>(rng() % 3) - 1, 0, max);
    (*a->mutable_items())[absl::StrCat("item", i)] = v;
  }
  a->mutable_administered_at()->set_seconds(absl::ToUnixSeconds(when));
}

// A primary-care review as the server sees it: PHQ-9 and GAD-7 now and at
// one or two earlier contacts, often PHQ-15, sometimes a C-SSRS or a flag.
v1::EvaluateRequest RealisticRequest(std::mt19937& rng) {
  v1::EvaluateRequest request;
  request.set_subject_id(
      absl::StrCat("patient-", rng() % 100000));  // not recorded
  const absl::Time as_of =
      absl::FromUnixSeconds(1795176000 + static_cast<int64_t>(rng() % 86400));
  request.set_current_step(1 + static_cast<int>(rng() % 4));
  request.set_weeks_at_step(static_cast<double>(rng() % 200) / 10.0);
  const int contacts = 1 + static_cast<int>(rng() % 3);
  for (int c = contacts - 1; c >= 0; --c) {
    const absl::Time when = as_of - absl::Hours(3) - absl::Hours(24 * 14 * c);
    const int level = static_cast<int>(rng() % 4);
    AddAssessment(rng, &request, "phq9", 9, 3, level, when);
    if (c == 0) {
      // item 9 positive in one review in eight
      (*request.mutable_assessments(request.assessments_size() - 1)
            ->mutable_items())["item9"] = rng() % 8 == 0 ? 1 : 0;
    }
    AddAssessment(rng, &request, "gad7", 7, 3, static_cast<int>(rng() % 4),
                  when);
    if (rng() % 3 == 0)
      AddAssessment(rng, &request, "phq15", 15, 2, static_cast<int>(rng() % 3),
                    when);
  }
  if (rng() % 10 == 0) {
    v1::Assessment* a = request.add_assessments();
    a->set_instrument("cssrs");
    const int q2 = static_cast<int>(rng() % 2);
    (*a->mutable_items())["q1"] = q2;
    (*a->mutable_items())["q2"] = q2;
    if (q2 == 1) {
      for (const char* q : {"q3", "q4", "q5"})
        (*a->mutable_items())[q] = rng() % 4 == 0 ? 1 : 0;
    }
    (*a->mutable_items())["q6"] = 0;
    a->mutable_administered_at()->set_seconds(
        absl::ToUnixSeconds(as_of - absl::Hours(2)));
  }
  if (rng() % 20 == 0) request.add_flags("new_or_changed_physical_symptoms");
  request.mutable_as_of()->set_seconds(absl::ToUnixSeconds(as_of));
  return request;
}

struct Log {
  std::filesystem::path dir;
  std::vector<std::string> sample_lines;  // the first 4096 decision lines
  std::vector<v1::EvaluateRequest> sample_requests;
  uint64_t bytes = 0;
};

// Set once the log has been written, so that main() removes only what was
// made.
const Log* g_log = nullptr;

const Log& TheLog() {
  static const Log* log = [] {
    auto* out = new Log();
    out->dir = std::filesystem::temp_directory_path() /
               absl::StrCat("stepwise-replay-bench-", getpid());
    std::filesystem::create_directories(out->dir);
    const engine::Bundle& bundle = DefaultBundle();
    std::mt19937 rng(20261120);
    std::string prev(audit::kZeroHash);
    std::string hash;
    uint64_t segment = 1;
    std::string contents;
    const auto flush = [&] {
      std::ofstream(out->dir / audit::SegmentFileName(segment++),
                    std::ios::binary)
          << contents;
      out->bytes += contents.size();
      contents.clear();
    };
    const absl::Time time = absl::FromUnixSeconds(1795176000);
    for (int seq = 1; seq <= g_records; ++seq) {
      v1::EvaluateRequest request = RealisticRequest(rng);
      engine::EvaluationResult result = engine::Evaluate(bundle, request, time);
      if (!result.ok()) {
        std::fprintf(stderr, "generated request %d is bad input: %s\n", seq,
                     result.violations[0].description.c_str());
        std::abort();
      }
      result.decision.set_decision_id(
          absl::StrFormat("0193a5c2-%04x-7000-8000-%012x", seq % 65536, seq));
      absl::StatusOr<std::string> body = audit::DecisionRecordBody(
          request, result.decision, "ehr-north", std::string(64, 'a'));
      if (!body.ok()) std::abort();
      const std::string line = audit::BuildRecordLine(
          static_cast<uint64_t>(seq), audit::kKindDecision, time,
          absl::string_view(*body).substr(1, body->size() - 2), prev, &hash);
      prev = hash;
      if (!contents.empty() &&
          static_cast<int64_t>(contents.size() + line.size()) > kSegmentBytes) {
        flush();
      }
      contents += line;
      if (out->sample_lines.size() < 4096) {
        out->sample_lines.push_back(line.substr(0, line.size() - 1));
        request.set_subject_id(
            std::string(64, 'a'));  // as the reader fills it in
        out->sample_requests.push_back(std::move(request));
      }
    }
    flush();
    g_log = out;
    return out;
  }();
  return *log;
}

// Splits `size` bytes into lines as replay does (memchr for each line feed)
// and returns how many complete lines there were.
uint64_t SplitLines(const char* p, size_t size) {
  const char* const end = p + size;
  uint64_t lines = 0;
  while (const char* feed = static_cast<const char*>(
             std::memchr(p, '\n', static_cast<size_t>(end - p)))) {
    benchmark::DoNotOptimize(
        absl::string_view(p, static_cast<size_t>(feed - p)));
    ++lines;
    p = feed + 1;
  }
  return lines;
}

// The former baseline: every segment read into a string (through the
// audit FileSystem) and split into lines.
void BM_ReadAndSplitLines(benchmark::State& state) {
  const Log& log = TheLog();
  audit::FileSystem& fs = *audit::DefaultFileSystem();
  for (auto _ : state) {
    uint64_t lines = 0;
    absl::StatusOr<std::vector<audit::Segment>> segments =
        audit::ListSegments(fs, log.dir);
    for (const audit::Segment& segment : *segments) {
      absl::StatusOr<std::string> contents =
          fs.ReadFile(audit::JoinPath(log.dir.string(), segment.name));
      lines += SplitLines(contents->data(), contents->size());
    }
    if (lines != static_cast<uint64_t>(g_records))
      state.SkipWithError("wrong number of lines");
  }
  state.SetItemsProcessed(state.iterations() * g_records);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(log.bytes));
}
BENCHMARK(BM_ReadAndSplitLines)->Unit(benchmark::kMillisecond)->UseRealTime();

// Baseline as replay reads: every segment mapped (populated, no copy) and
// split into lines with memchr.
void BM_MapAndSplitLines(benchmark::State& state) {
  const Log& log = TheLog();
  audit::FileSystem& fs = *audit::DefaultFileSystem();
  for (auto _ : state) {
    uint64_t lines = 0;
    absl::StatusOr<std::vector<audit::Segment>> segments =
        audit::ListSegments(fs, log.dir);
    for (const audit::Segment& segment : *segments) {
      const std::string path = audit::JoinPath(log.dir.string(), segment.name);
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      struct stat st;
      if (fd < 0 || fstat(fd, &st) != 0) {
        state.SkipWithError("cannot open a segment");
        return;
      }
      const size_t size = static_cast<size_t>(st.st_size);
      void* mapped =
          mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      close(fd);
      if (mapped == MAP_FAILED) {
        state.SkipWithError("cannot map a segment");
        return;
      }
      lines += SplitLines(static_cast<const char*>(mapped), size);
      munmap(mapped, size);
    }
    if (lines != static_cast<uint64_t>(g_records))
      state.SkipWithError("wrong number of lines");
  }
  state.SetItemsProcessed(state.iterations() * g_records);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(log.bytes));
}
BENCHMARK(BM_MapAndSplitLines)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Replay(benchmark::State& state) {
  const Log& log = TheLog();
  tools::ReplayLogOptions options;
  options.threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    absl::StatusOr<engine::ReplayReport> report =
        tools::ReplayAuditLog(*audit::DefaultFileSystem(), log.dir.string(),
                              DefaultBundle(), options);
    if (!report.ok() ||
        report->decisions() != static_cast<uint64_t>(g_records) ||
        report->changed() != 0) {
      state.SkipWithError("replay failed or found changes");
      return;
    }
    state.SetLabel(absl::StrCat(report->exact_parser_records(),
                                " lines through the exact parser"));
  }
  state.SetItemsProcessed(state.iterations() * g_records);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(log.bytes));
}
BENCHMARK(BM_Replay)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Per record, one thread.
void BM_Line_FastReader(benchmark::State& state) {
  const Log& log = TheLog();
  tools::ReplayLine line;
  size_t k = 0;
  for (auto _ : state) {
    if (!tools::ReadReplayLineFast(log.sample_lines[k], &line)) {
      state.SkipWithError(
          "the fast reader did not recognise a line the server wrote");
      return;
    }
    k = k + 1 == log.sample_lines.size() ? 0 : k + 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Line_FastReader);

void BM_Line_ExactParser(benchmark::State& state) {
  const Log& log = TheLog();
  size_t k = 0;
  for (auto _ : state) {
    absl::StatusOr<audit::ParsedRecord> record =
        audit::ParseRecord(log.sample_lines[k]);
    benchmark::DoNotOptimize(record);
    k = k + 1 == log.sample_lines.size() ? 0 : k + 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Line_ExactParser);

void BM_Line_EvaluateOutcome(benchmark::State& state) {
  const Log& log = TheLog();
  const engine::Bundle& bundle = DefaultBundle();
  size_t k = 0;
  for (auto _ : state) {
    engine::Outcome outcome = engine::EvaluateOutcome(
        bundle, log.sample_requests[k], absl::UnixEpoch());
    benchmark::DoNotOptimize(outcome);
    k = k + 1 == log.sample_lines.size() ? 0 : k + 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Line_EvaluateOutcome);

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration && !run.error_occurred) {
        const double unit =
            run.time_unit == benchmark::kMillisecond ? 1e6 : 1.0;
        ns_per_op_[run.benchmark_name()] = run.GetAdjustedRealTime() * unit;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void PrintSummary() const {
    auto ns = [&](const std::string& name) {
      const auto it = ns_per_op_.find(name);
      return it == ns_per_op_.end() ? 0.0 : it->second;
    };
    if (g_log == nullptr) return;
    const Log& log = *g_log;
    std::printf(
        "\nSummary (%d records, %.0f bytes each on average; ratios against the "
        "baseline "
        "measured in this run):\n",
        g_records, static_cast<double>(log.bytes) / g_records);
    const double read_split = ns("BM_ReadAndSplitLines/real_time");
    const double split = ns("BM_MapAndSplitLines/real_time");
    const double one = ns("BM_Replay/threads:1/real_time");
    const double two = ns("BM_Replay/threads:2/real_time");
    const auto rate = [](double ns_per_run) {
      return g_records / (ns_per_run / 1e9) / 1e3;
    };
    if (read_split > 0) {
      std::printf("  read into strings + split lines: %.0f k records/s\n",
                  rate(read_split));
    }
    if (split > 0) {
      std::printf("  map + split lines (the baseline): %.0f k records/s\n",
                  rate(split));
    }
    if (one > 0 && split > 0) {
      std::printf(
          "  replay, 1 thread:   %.0f k records/s, %.1fx the baseline's time\n",
          rate(one), one / split);
    }
    if (two > 0 && split > 0) {
      std::printf(
          "  replay, 2 threads:  %.0f k records/s (goal >= 500), %.1fx the "
          "baseline's "
          "time, %.2fx the 1-thread rate\n",
          rate(two), two / split, one > 0 ? one / two : 0.0);
    }
    const double fast = ns("BM_Line_FastReader");
    const double exact = ns("BM_Line_ExactParser");
    const double eval = ns("BM_Line_EvaluateOutcome");
    if (fast > 0 && exact > 0 && eval > 0) {
      std::printf(
          "  per record, 1 thread: fast reader %.2f us (exact parser %.2f us, "
          "%.1fx), "
          "EvaluateOutcome %.2f us\n",
          fast / 1e3, exact / 1e3, exact / fast, eval / 1e3);
    }
  }

 private:
  std::map<std::string, double> ns_per_op_;
};

}  // namespace
}  // namespace stepwise::bench

int main(int argc, char** argv) {
  // --records=N is ours; the rest are Google Benchmark's.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--records=", 10) == 0) {
      stepwise::bench::g_records = std::max(1, std::atoi(argv[i] + 10));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  stepwise::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  if (stepwise::bench::g_log != nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(stepwise::bench::g_log->dir, ec);
  }
  benchmark::Shutdown();
  return 0;
}
