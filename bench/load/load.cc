// stepwise-load: requests/s and p50/p99 latency of Evaluate at 1, 16 and 64
// concurrent streams against (a) stepwise-server with its durable audit log
// and (b) stepwise-bare-server (an empty handler, the same messages), in one
// run, with the ratios; plus records per fdatasync and the audit's share of
// the server's CPU. Loopback only; every phase is bounded in time.
//
//   stepwise-load [--duration 5s] [--warmup 1s] [--streams 1,16,64]
//                 [--repetitions 3] [--bundle DIR] [--request FILE.json]
//                 [--work-dir DIR] [--server-binary PATH] [--bare-binary PATH]
//                 [--server-arg=--flag=value ...]
//
// stepwise-server runs as configured by default (idempotency on). Each
// stream count is measured `repetitions` times, stepwise and bare
// alternating which goes first, and the medians of the ratios are printed:
// on a shared machine one pair of runs moves by tens of percent.
//
// The client is a closed loop on gRPC's callback API: each stream keeps one
// call outstanding and starts the next from the completion callback. Every
// call has a fresh request_id, so stepwise evaluates and audits each one.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "stepwise/v1/service.grpc.pb.h"

namespace stepwise::bench {
namespace {

using Clock = std::chrono::steady_clock;

// A child server process that announced its port on stdout.
struct Child {
  pid_t pid = -1;
  int port = 0;
  int metrics_port = -1;
};

bool SpawnServer(const std::string& binary,
                 const std::vector<std::string>& args, Child* child) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  std::vector<std::string> storage = {binary};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  child->pid = pid;
  std::string line;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (line.find('\n') == std::string::npos) {
    pollfd pfd{fds[0], POLLIN, 0};
    const int ms = static_cast<int>(std::max<int64_t>(
        0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    char buf[256];
    ssize_t n = 0;
    if (poll(&pfd, 1, ms) <= 0 || (n = read(fds[0], buf, sizeof(buf))) <= 0) {
      close(fds[0]);
      return false;
    }
    line.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  std::smatch m;
  if (!std::regex_search(line, m, std::regex(R"(listening on [^ ]+:(\d+))"))) {
    return false;
  }
  child->port = std::stoi(m[1]);
  if (std::regex_search(line, m, std::regex(R"(metrics on [^ ]+:(\d+))"))) {
    child->metrics_port = std::stoi(m[1]);
  }
  return true;
}

void StopServer(Child& child) {
  if (child.pid <= 0) return;
  kill(child.pid, SIGTERM);
  int status = 0;
  waitpid(child.pid, &status, 0);
  child.pid = -1;
}

std::string HttpGet(int port, const std::string& path) {
  // Plain HTTP/1.0 over loopback, as a Prometheus scraper would.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
    if (write(fd, request.data(), request.size()) ==
        static_cast<ssize_t>(request.size())) {
      char buf[8192];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) {
        response.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return response;
}

double MetricValue(const std::string& text, const std::string& name) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex("\n" + name + " ([0-9.e+-]+)\n"))) {
    double v = 0;
    if (absl::SimpleAtod(m[1].str(), &v)) return v;
  }
  return 0;
}

// CPU seconds (user + system) of one /proc stat file; comm in *name.
double ReadCpu(const std::string& stat_path, std::string* name = nullptr) {
  std::ifstream in(stat_path);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return 0;
  if (name != nullptr) *name = text.substr(open + 1, close - open - 1);
  std::vector<std::string> fields =
      absl::StrSplit(text.substr(close + 2), ' ', absl::SkipEmpty());
  // After "(comm) ": field 3 (state) is index 0; utime is 14, stime 15.
  if (fields.size() < 13) return 0;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

// CPU per thread of `pid`: tid -> {comm, seconds}.
std::map<int, std::pair<std::string, double>> ThreadCpu(pid_t pid) {
  std::map<int, std::pair<std::string, double>> out;
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    int tid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &tid)) continue;
    std::string name;
    const double cpu = ReadCpu(entry.path().string() + "/stat", &name);
    out[tid] = {name, cpu};
  }
  return out;
}

struct Result {
  double rps = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int64_t errors = 0;
  int64_t calls = 0;         // answered calls, warm-up included
  double server_cpu_us = 0;  // server CPU per answered call
  double client_cpu_us = 0;  // this process's CPU per answered call
};

// CPU seconds (user + system) this process has used.
double SelfCpu() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) /
             1e6;
}

// A closed loop of `streams` outstanding calls for warmup + duration.
class LoadRun {
 public:
  // `run` tells this run's request ids from every other run's.
  LoadRun(const std::string& target, int run, int streams,
          const v1::EvaluateRequest& request, absl::Duration warmup,
          absl::Duration duration)
      : request_(request), streams_(streams) {
    // Up to 4 connections, so one HTTP/2 connection is not the bottleneck.
    const int channels = std::min(streams, 4);
    for (int c = 0; c < channels; ++c) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("stepwise.bench.channel", c);  // distinct connections
      stubs_.push_back(v1::DecisionService::NewStub(grpc::CreateCustomChannel(
          target, grpc::InsecureChannelCredentials(), args)));
    }
    const Clock::time_point now = Clock::now();
    measure_from_ = now + absl::ToChronoNanoseconds(warmup);
    stop_at_ = measure_from_ + absl::ToChronoNanoseconds(duration);
    latencies_.resize(static_cast<size_t>(streams));
    for (int s = 0; s < streams; ++s) {
      auto call = std::make_unique<Call>();
      call->request = request_;
      call->id_prefix = absl::StrCat("load-", run, "-", s, "-");
      // A stream's calls never overlap: one slot per stream, reused.
      latencies_[static_cast<size_t>(s)].reserve(1 << 16);
      calls_.push_back(std::move(call));
    }
    absl::MutexLock lock(&mu_);
    active_streams_ = streams;
  }

  Result Run() {
    for (int s = 0; s < streams_; ++s) StartCall(s);
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](int* active) { return *active == 0; }, &active_streams_));
    }
    std::vector<double> all;
    for (auto& v : latencies_) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    Result r;
    const double seconds =
        std::chrono::duration<double>(stop_at_ - measure_from_).count();
    r.rps = static_cast<double>(all.size()) / seconds;
    if (!all.empty()) {
      r.p50_ms = all[all.size() / 2] * 1e3;
      r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)] * 1e3;
    }
    r.errors = errors_.load();
    r.calls = answered_.load();
    return r;
  }

 private:
  // The state of one stream's call in flight. The client must cost as
  // little CPU per call as it can (it shares the cores with the server it
  // measures): nothing is allocated per call but gRPC's own context.
  struct Call {
    std::optional<grpc::ClientContext> context;
    v1::EvaluateRequest request;
    v1::Decision response;
    std::string id_prefix;
    Clock::time_point start;
  };

  void StartCall(int stream) {
    if (Clock::now() >= stop_at_) {
      absl::MutexLock lock(&mu_);
      --active_streams_;
      return;
    }
    Call& call = *calls_[static_cast<size_t>(stream)];
    // Every call a fresh request_id, never used in any run, so that
    // stepwise evaluates and audits each one (no idempotent replays).
    std::string* id = call.request.mutable_request_id();
    id->assign(call.id_prefix);
    absl::StrAppend(id, next_id_.fetch_add(1, std::memory_order_relaxed));
    call.context.emplace();
    call.context->set_deadline(std::chrono::system_clock::now() +
                               std::chrono::seconds(30));
    call.start = Clock::now();
    v1::DecisionService::Stub& stub =
        *stubs_[static_cast<size_t>(stream) % stubs_.size()];
    stub.async()->Evaluate(
        &*call.context, &call.request, &call.response,
        [this, stream, &call](grpc::Status status) {
          const Clock::time_point end = Clock::now();
          if (!status.ok()) {
            errors_.fetch_add(1, std::memory_order_relaxed);
          } else {
            answered_.fetch_add(1, std::memory_order_relaxed);
            if (call.start >= measure_from_ && end <= stop_at_) {
              latencies_[static_cast<size_t>(stream)].push_back(
                  std::chrono::duration<double>(end - call.start).count());
            }
          }
          StartCall(stream);
        });
  }

  const v1::EvaluateRequest request_;
  const int streams_;
  std::vector<std::unique_ptr<v1::DecisionService::Stub>> stubs_;
  Clock::time_point measure_from_;
  Clock::time_point stop_at_;
  std::vector<std::unique_ptr<Call>> calls_;  // one per stream
  // One vector per stream: a stream's calls never overlap, so no lock.
  std::vector<std::vector<double>> latencies_;
  std::atomic<int64_t> next_id_{0};
  std::atomic<int64_t> errors_{0};
  std::atomic<int64_t> answered_{0};
  absl::Mutex mu_;
  int active_streams_ ABSL_GUARDED_BY(mu_) = 0;
};

// One closed-loop run against the server `pid` at `target`, with the CPU
// the server and this client spent per answered call.
Result Measure(pid_t pid, const std::string& target, int run, int streams,
               const v1::EvaluateRequest& request, absl::Duration warmup,
               absl::Duration duration) {
  const std::string stat = absl::StrCat("/proc/", pid, "/stat");
  const double server_before = ReadCpu(stat);
  const double client_before = SelfCpu();
  Result r;
  {
    LoadRun load(target, run, streams, request, warmup, duration);
    r = load.Run();
  }
  if (r.calls > 0) {
    const double calls = static_cast<double>(r.calls);
    r.server_cpu_us = 1e6 * (ReadCpu(stat) - server_before) / calls;
    r.client_cpu_us = 1e6 * (SelfCpu() - client_before) / calls;
  }
  return r;
}

int Main(int argc, char** argv) {
#ifdef NDEBUG
  // The client shares the two cores with the server it measures: no Abseil
  // deadlock graph under gRPC's locks here either (as in both servers).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  CLI::App app{"stepwise-load: stepwise-server vs a bare gRPC server"};
  std::string duration_text = "5s", warmup_text = "1s",
              streams_text = "1,16,64";
  int repetitions = 3;
  std::string bundle = absl::StrCat(STEPWISE_SOURCE_DIR, "/rules");
  std::string request_path =
      absl::StrCat(STEPWISE_SOURCE_DIR, "/bench/load/request.json");
  std::string work_dir;
  std::string server_binary = STEPWISE_SERVER_BIN;
  std::string bare_binary = STEPWISE_BARE_SERVER_BIN;
  app.add_option("--duration", duration_text, "measured time per run")
      ->capture_default_str();
  app.add_option("--warmup", warmup_text, "unmeasured time before each run")
      ->capture_default_str();
  app.add_option("--streams", streams_text,
                 "concurrent streams, comma-separated")
      ->capture_default_str();
  app.add_option("--repetitions", repetitions,
                 "pairs of runs per stream count (medians are printed)")
      ->capture_default_str()
      ->check(CLI::Range(1, 99));
  app.add_option("--bundle", bundle, "bundle served by stepwise-server")
      ->capture_default_str();
  app.add_option("--request", request_path, "EvaluateRequest as JSON")
      ->capture_default_str();
  app.add_option("--work-dir", work_dir,
                 "folder for the audit log, kept afterwards (default: a fresh "
                 "temp folder, removed at the end)");
  app.add_option("--server-binary", server_binary,
                 "the stepwise-server to measure (e.g. another build of it)")
      ->capture_default_str();
  app.add_option("--bare-binary", bare_binary, "the bare server")
      ->capture_default_str();
  std::vector<std::string> server_args;
  app.add_option("--server-arg", server_args,
                 "an extra flag for stepwise-server (repeatable), e.g. "
                 "--server-arg=--idempotency-capacity=0");
  CLI11_PARSE(app, argc, argv);

  absl::Duration duration, warmup;
  if (!absl::ParseDuration(duration_text, &duration) ||
      !absl::ParseDuration(warmup_text, &warmup)) {
    std::cerr << "stepwise-load: bad duration\n";
    return 2;
  }
  std::vector<int> stream_counts;
  for (absl::string_view s : absl::StrSplit(streams_text, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(s, &n) || n < 1) {
      std::cerr << "stepwise-load: bad --streams\n";
      return 2;
    }
    stream_counts.push_back(n);
  }
  std::ifstream request_file(request_path);
  std::string json((std::istreambuf_iterator<char>(request_file)),
                   std::istreambuf_iterator<char>());
  v1::EvaluateRequest request;
  if (!google::protobuf::util::JsonStringToMessage(json, &request).ok()) {
    std::cerr << "stepwise-load: cannot read " << request_path << "\n";
    return 2;
  }
  // A folder this run made is removed when it ends (the audit log of a run
  // grows to hundreds of megabytes); one given with --work-dir is kept.
  struct RemoveOnExit {
    std::string dir;
    ~RemoveOnExit() {
      if (dir.empty()) return;
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } made;
  if (work_dir.empty()) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "stepwise-load-XXXXXX")
            .string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::cerr << "stepwise-load: cannot make a folder in "
                << std::filesystem::temp_directory_path() << "\n";
      return 1;
    }
    work_dir = made.dir = tmpl;
  }
  const std::string audit_dir = work_dir + "/audit";

  Child stepwise, bare;
  std::vector<std::string> stepwise_args = {
      "--bundle", bundle, "--audit-dir",    audit_dir,
      "--port",   "0",    "--metrics-port", "0"};
  stepwise_args.insert(stepwise_args.end(), server_args.begin(),
                       server_args.end());
  if (!SpawnServer(server_binary, stepwise_args, &stepwise)) {
    std::cerr << "stepwise-load: stepwise-server did not start\n";
    return 1;
  }
  const std::string stepwise_target = absl::StrCat("127.0.0.1:", stepwise.port);

  // One real answer: the bare server sends back exactly these bytes.
  v1::Decision sample;
  {
    auto stub = v1::DecisionService::NewStub(grpc::CreateChannel(
        stepwise_target, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    v1::EvaluateRequest first = request;
    first.set_request_id("load-sample");
    const grpc::Status status = stub->Evaluate(&context, first, &sample);
    if (!status.ok()) {
      std::cerr << "stepwise-load: sample call failed: "
                << status.error_message() << "\n";
      StopServer(stepwise);
      return 1;
    }
  }
  const std::string response_path = work_dir + "/decision.bin";
  std::ofstream(response_path, std::ios::binary) << sample.SerializeAsString();
  if (!SpawnServer(bare_binary, {"--port", "0", "--response", response_path},
                   &bare)) {
    std::cerr << "stepwise-load: stepwise-bare-server did not start\n";
    StopServer(stepwise);
    return 1;
  }
  const std::string bare_target = absl::StrCat("127.0.0.1:", bare.port);

  std::cout << absl::StrFormat(
      "stepwise-load: request %d bytes, decision %d bytes; %s per run after "
      "%s warm-up; %d cores\n\n",
      request.ByteSizeLong(), sample.ByteSizeLong(),
      absl::FormatDuration(duration), absl::FormatDuration(warmup),
      static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  std::cout << absl::StrFormat(
      "%7s %3s | %-8s %10s %9s %9s %6s | %-8s %10s %9s %9s | %9s %9s\n",
      "streams", "rep", "server", "req/s", "p50 ms", "p99 ms", "errors",
      "server", "req/s", "p50 ms", "p99 ms", "rps ratio", "p99 ratio");

  // The writer thread's CPU (which includes gRPC work it runs inline while
  // answering), the log's own work on it (the server's metric), and the
  // server's CPU, over the measured runs.
  double audit_cpu = 0, audit_work_cpu = 0, server_cpu = 0;
  // Per run: records and fdatasyncs of the audit log, and sync seconds.
  struct AuditRun {
    double records = 0, syncs = 0, sync_seconds = 0, work_cpu = 0;
  };
  const auto audit_now = [&] {
    const std::string text = HttpGet(stepwise.metrics_port, "/metrics");
    return AuditRun{
        MetricValue(text, "stepwise_audit_batch_records_sum"),
        MetricValue(text, "stepwise_audit_sync_seconds_count"),
        MetricValue(text, "stepwise_audit_sync_seconds_sum"),
        MetricValue(text, "stepwise_audit_writer_cpu_seconds_total")};
  };
  struct Pair {
    int streams = 0;
    int rep = 0;
    Result s, b;
    AuditRun audit;
  };
  std::vector<Pair> pairs;
  int run = 0;
  const auto measure_stepwise = [&](int streams, Pair& pair) {
    const AuditRun audit_before = audit_now();
    const double cpu_before =
        ReadCpu(absl::StrCat("/proc/", stepwise.pid, "/stat"));
    const auto threads_before = ThreadCpu(stepwise.pid);
    pair.s = Measure(stepwise.pid, stepwise_target, run++, streams, request,
                     warmup, duration);
    const auto threads_after = ThreadCpu(stepwise.pid);
    server_cpu +=
        ReadCpu(absl::StrCat("/proc/", stepwise.pid, "/stat")) - cpu_before;
    // The audit log names its writer thread.
    for (const auto& [tid, after] : threads_after) {
      if (after.first != "audit-writer") continue;
      auto before = threads_before.find(tid);
      audit_cpu += after.second -
                   (before != threads_before.end() ? before->second.second : 0);
    }
    const AuditRun audit_after = audit_now();
    audit_work_cpu += audit_after.work_cpu - audit_before.work_cpu;
    pair.audit = {audit_after.records - audit_before.records,
                  audit_after.syncs - audit_before.syncs,
                  audit_after.sync_seconds - audit_before.sync_seconds};
  };
  const auto ratio = [](double num, double den) {
    return den > 0 ? num / den : 0;
  };
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0
                     : (v.size() % 2 == 1
                            ? v[v.size() / 2]
                            : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2);
  };
  struct Summary {
    int streams;
    double s_rps, b_rps, s_p99, b_p99, rps_ratio, p99_ratio;
  };
  std::vector<Summary> summaries;
  for (int streams : stream_counts) {
    std::vector<double> s_rps, b_rps, s_p99, b_p99, rps_ratios, p99_ratios;
    for (int rep = 1; rep <= repetitions; ++rep) {
      Pair pair{streams, rep, {}, {}, {}};
      // Alternate which server goes first, so a drift in the machine's
      // load does not always favour the same one.
      if (rep % 2 == 1) measure_stepwise(streams, pair);
      pair.b = Measure(bare.pid, bare_target, run++, streams, request, warmup,
                       duration);
      if (rep % 2 == 0) measure_stepwise(streams, pair);
      const Result& s = pair.s;
      const Result& b = pair.b;
      std::cout << absl::StrFormat(
          "%7d %3d | %-8s %10.0f %9.3f %9.3f %6d | %-8s %10.0f %9.3f %9.3f | "
          "%8.0f%% %8.2fx\n",
          streams, rep, "stepwise", s.rps, s.p50_ms, s.p99_ms, s.errors, "bare",
          b.rps, b.p50_ms, b.p99_ms, 100 * ratio(s.rps, b.rps),
          ratio(s.p99_ms, b.p99_ms));
      s_rps.push_back(s.rps);
      b_rps.push_back(b.rps);
      s_p99.push_back(s.p99_ms);
      b_p99.push_back(b.p99_ms);
      rps_ratios.push_back(ratio(s.rps, b.rps));
      p99_ratios.push_back(ratio(s.p99_ms, b.p99_ms));
      pairs.push_back(pair);
    }
    summaries.push_back({streams, median(s_rps), median(b_rps), median(s_p99),
                         median(b_p99), median(rps_ratios),
                         median(p99_ratios)});
  }

  std::cout << absl::StrFormat(
      "\nMedians of %d repetitions (each ratio is of one pair of runs; the "
      "median of the ratios is the figure to quote)\n%7s | %10s %9s | %10s "
      "%9s | %9s %9s\n",
      repetitions, "streams", "stepwise", "p99 ms", "bare", "p99 ms",
      "rps ratio", "p99 ratio");
  for (const Summary& m : summaries) {
    std::cout << absl::StrFormat(
        "%7d | %10.0f %9.3f | %10.0f %9.3f | %8.0f%% %8.2fx\n", m.streams,
        m.s_rps, m.s_p99, m.b_rps, m.b_p99, 100 * m.rps_ratio, m.p99_ratio);
  }

  // Where the CPU went: on a machine whose cores the client and the server
  // share, req/s follows the CPU a call costs both of them.
  std::cout << absl::StrFormat(
      "\nCPU per call (us, user + system)\n%7s %3s | %-8s %8s %8s %8s | %-8s "
      "%8s %8s %8s | %9s | %9s %9s\n",
      "streams", "rep", "server", "server", "client", "total", "server",
      "server", "client", "total", "extra", "rec/sync", "sync ms");
  for (const Pair& pair : pairs) {
    const Result& s = pair.s;
    const Result& b = pair.b;
    std::cout << absl::StrFormat(
        "%7d %3d | %-8s %8.0f %8.0f %8.0f | %-8s %8.0f %8.0f %8.0f | %9.0f | "
        "%9.1f %9.3f\n",
        pair.streams, pair.rep, "stepwise", s.server_cpu_us, s.client_cpu_us,
        s.server_cpu_us + s.client_cpu_us, "bare", b.server_cpu_us,
        b.client_cpu_us, b.server_cpu_us + b.client_cpu_us,
        s.server_cpu_us - b.server_cpu_us,
        ratio(pair.audit.records, pair.audit.syncs),
        1e3 * ratio(pair.audit.sync_seconds, pair.audit.syncs));
  }

  const std::string metrics = HttpGet(stepwise.metrics_port, "/metrics");
  const double batches =
      MetricValue(metrics, "stepwise_audit_batch_records_count");
  const double records =
      MetricValue(metrics, "stepwise_audit_batch_records_sum");
  const double syncs =
      MetricValue(metrics, "stepwise_audit_sync_seconds_count");
  const double sync_sum =
      MetricValue(metrics, "stepwise_audit_sync_seconds_sum");
  std::cout << absl::StrFormat(
      "\naudit: %.0f records in %.0f group commits = %.1f records per "
      "fdatasync; mean fdatasync %.3f ms\n",
      records, batches, batches > 0 ? records / batches : 0,
      syncs > 0 ? 1e3 * sync_sum / syncs : 0);
  // Per record of the measured runs (warm-ups left out, as for the CPU).
  double measured_records = 0;
  for (const Pair& pair : pairs) measured_records += pair.audit.records;
  std::cout << absl::StrFormat(
      "audit writer thread: %.2f s of %.2f s server CPU (%.0f%%), %.1f us per "
      "record (with the gRPC work it runs while answering)\n",
      audit_cpu, server_cpu, server_cpu > 0 ? 100 * audit_cpu / server_cpu : 0,
      measured_records > 0 ? 1e6 * audit_cpu / measured_records : 0);
  std::cout << absl::StrFormat(
      "audit's own work (record lines, chain hash, write, fdatasync): %.2f s "
      "(%.0f%% of the server's CPU), %.1f us per record\n",
      audit_work_cpu, server_cpu > 0 ? 100 * audit_work_cpu / server_cpu : 0,
      measured_records > 0 ? 1e6 * audit_work_cpu / measured_records : 0);

  StopServer(bare);
  StopServer(stepwise);
  return 0;
}

}  // namespace
}  // namespace stepwise::bench

int main(int argc, char** argv) { return stepwise::bench::Main(argc, argv); }
