#include "server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace stepwise::testing {
namespace {

int PidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

int MillisUntil(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// fork + exec with stdout to `stdout_fd` (or a pipe the caller reads) and
// stderr to a file.
pid_t Spawn(const std::string& binary, const std::vector<std::string>& args,
            int stdout_fd, const std::string& stderr_path) {
  std::vector<std::string> argv_storage;
  argv_storage.push_back(binary);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int err =
        open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(stdout_fd, STDOUT_FILENO);
    if (err >= 0) dup2(err, STDERR_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    // The child must not inherit blocked signals from the test process.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

std::string UniqueName(const std::string& name) {
  static std::atomic<int> counter{0};
  return absl::StrCat(name, "-", getpid(), "-", counter.fetch_add(1));
}

// An idle client channel reads the server's GOAWAY only when its backup
// poller runs (every 5 s by default), and a draining server waits for its
// connections to close; poll often so that stopping a server is quick.
const bool kFastBackupPoll = [] {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50", 1);
  return true;
}();

}  // namespace

std::string NewTempDir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / UniqueName(name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string ReadAuditSegments(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 6 && name.substr(name.size() - 6) == ".jsonl") {
      names.push_back(entry.path().string());
    }
  }
  std::sort(names.begin(), names.end());
  std::string all;
  for (const std::string& path : names) all += ReadWhole(path);
  return all;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& binary, const std::vector<std::string>& args,
    absl::Duration timeout) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  std::unique_ptr<ServerProcess> process(new ServerProcess());
  process->stderr_path_ = (std::filesystem::path(::testing::TempDir()) /
                           (UniqueName("server") + ".stderr"))
                              .string();
  process->pid_ = Spawn(binary, args, pipe_fds[1], process->stderr_path_);
  close(pipe_fds[1]);
  process->stdout_fd_ = pipe_fds[0];
  process->pidfd_ = PidfdOpen(process->pid_);

  const absl::Time deadline = absl::Now() + timeout;
  std::string line;
  const std::regex listening(
      R"(stepwise-server listening on [^ ]+:(\d+) \((?:metrics on [^ ]+:(\d+)|metrics off)\))");
  while (true) {
    const size_t newline = line.find('\n');
    if (newline != std::string::npos) {
      std::smatch m;
      const std::string first = line.substr(0, newline);
      if (std::regex_search(first, m, listening)) {
        process->port_ = std::stoi(m[1]);
        if (m[2].matched) process->metrics_port_ = std::stoi(m[2]);
        return process;
      }
      line.erase(0, newline + 1);
      continue;
    }
    pollfd pfd{process->stdout_fd_, POLLIN, 0};
    const int ready = poll(&pfd, 1, MillisUntil(deadline));
    if (ready == 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no 'listening' line within ", absl::FormatDuration(timeout),
          "; stderr: ", process->Stderr()));
    }
    char buf[512];
    const ssize_t n = read(process->stdout_fd_, buf, sizeof(buf));
    if (n <= 0) {
      absl::StatusOr<int> status = process->Wait(absl::Seconds(30));
      return absl::FailedPreconditionError(absl::StrCat(
          "the server exited before serving (status ",
          status.ok() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1,
          "); stderr: ", process->Stderr()));
    }
    line.append(buf, static_cast<size_t>(n));
  }
}

ServerProcess::~ServerProcess() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    (void)Wait(absl::Seconds(30));
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (pidfd_ >= 0) close(pidfd_);
}

std::string ServerProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

void ServerProcess::Signal(int signal_number) { kill(pid_, signal_number); }

absl::StatusOr<int> ServerProcess::Wait(absl::Duration timeout) {
  if (reaped_) return absl::FailedPreconditionError("already reaped");
  pollfd pfd{pidfd_, POLLIN, 0};
  if (poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <=
      0) {
    return absl::DeadlineExceededError("the server did not exit in time");
  }
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
  return status;
}

std::string ServerProcess::Stderr() const { return ReadWhole(stderr_path_); }

CommandResult RunCommand(const std::string& binary,
                         const std::vector<std::string>& args,
                         absl::Duration timeout) {
  CommandResult result;
  int out_fds[2];
  if (pipe2(out_fds, O_CLOEXEC) != 0) return result;
  const std::string err_path = (std::filesystem::path(::testing::TempDir()) /
                                (UniqueName("command") + ".stderr"))
                                   .string();
  const pid_t pid = Spawn(binary, args, out_fds[1], err_path);
  close(out_fds[1]);
  const int pidfd = PidfdOpen(pid);
  const absl::Time deadline = absl::Now() + timeout;
  bool eof = false;
  while (!eof) {
    pollfd pfd{out_fds[0], POLLIN, 0};
    if (poll(&pfd, 1, MillisUntil(deadline)) <= 0) {
      kill(pid, SIGKILL);
      break;
    }
    char buf[4096];
    const ssize_t n = read(out_fds[0], buf, sizeof(buf));
    if (n <= 0) {
      eof = true;
    } else {
      result.out.append(buf, static_cast<size_t>(n));
    }
  }
  close(out_fds[0]);
  pollfd pfd{pidfd, POLLIN, 0};
  poll(&pfd, 1, MillisUntil(deadline + absl::Seconds(5)));
  int status = 0;
  waitpid(pid, &status, 0);
  close(pidfd);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.err = ReadWhole(err_path);
  return result;
}

v1::EvaluateRequest MoodRequest(const std::string& request_id, int item1,
                                int item2, int item3) {
  v1::EvaluateRequest request;
  request.set_request_id(request_id);
  request.set_subject_id("patient-" + request_id);
  request.set_current_step(1);
  request.set_weeks_at_step(2);
  v1::Assessment* a = request.add_assessments();
  a->set_instrument("mood");
  (*a->mutable_items())["item1"] = item1;
  (*a->mutable_items())["item2"] = item2;
  (*a->mutable_items())["item3"] = item3;
  a->mutable_administered_at()->set_seconds(1795165200);  // 2026-11-20
  request.mutable_as_of()->set_seconds(1795176000);
  return request;
}

}  // namespace stepwise::testing
