// Test support shared by the audit log tests: a fresh folder per test, a fixed
// clock, and a collector that waits for Append callbacks without sleeping.
#ifndef STEPWISE_TESTS_SERVICE_AUDIT_TEST_UTIL_H_
#define STEPWISE_TESTS_SERVICE_AUDIT_TEST_UTIL_H_

#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "service/audit/audit_log.h"

namespace stepwise::service::audit::testing {

// An empty folder named after the running test.
inline std::string FreshDir(absl::string_view tag = "") {
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrCat(info->test_suite_name(), ".", info->name(),
                                  tag, ".", ::getpid());
  for (char& c : name) {
    if (c == '/') c = '_';
  }
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "audit" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline void WriteAll(const std::string& path, absl::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline void AppendTo(const std::string& path, absl::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << data;
}

inline std::vector<std::string> Lines(const std::string& contents) {
  std::vector<std::string> lines;
  std::stringstream in(contents);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) absl::StrAppend(&out, line, "\n");
  return out;
}

inline absl::Time FixedTime() { return absl::FromUnixSeconds(1795167000); }

inline AuditLogOptions Options(const std::string& dir,
                               FileSystem* fs = nullptr) {
  AuditLogOptions options;
  options.dir = dir;
  options.fs = fs;
  options.now = FixedTime;
  return options;
}

// A minimal valid body.
inline std::string Body(int i) {
  return absl::StrCat("{\"decision_id\":\"d", i, "\",\"n\":", i, "}");
}

// Collects Append callbacks; Wait blocks (without sleeping) until n arrived.
// Uses std::mutex, which ThreadSanitizer sees (see annotated_mutex.h).
class Collector {
 public:
  struct Result {
    absl::Status status;
    uint64_t seq;
  };

  AuditLog::Done Callback(size_t index) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (results_.size() <= index) results_.resize(index + 1);
    }
    return [this, index](absl::Status status, uint64_t seq) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_[index];
      results_[index] = {std::move(status), seq};
      ++count_;
      arrived_.notify_all();
    };
  }

  void Wait(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    arrived_.wait(lock, [&] { return count_ >= n; });
  }
  // Wait with a bound: false if fewer than n arrived within `timeout`.
  bool WaitFor(size_t n, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return arrived_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                             [&] { return count_ >= n; });
  }

  std::vector<Result> results() const {
    std::lock_guard<std::mutex> lock(mu_);
    return results_;
  }
  // How often each index's callback ran.
  int calls(size_t index) const {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = calls_.find(index);
    return it == calls_.end() ? 0 : it->second;
  }
  size_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<Result> results_;
  std::map<size_t, int> calls_;
  size_t count_ = 0;
};

}  // namespace stepwise::service::audit::testing

#endif  // STEPWISE_TESTS_SERVICE_AUDIT_TEST_UTIL_H_
