#include "service/run.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/server.h"

namespace stepwise::service {

int RunServer(const ServerOptions& options) {
#ifdef NDEBUG
  // Debian's Abseil is built with Mutex deadlock detection on; it costs a
  // graph update per lock on the hot path. Debug builds keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  // Blocked in every thread (threads inherit the mask), so only the signal
  // thread's sigwait sees them and no handler runs in the middle of gRPC.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<Server>> started = Server::Start(options);
  if (!started.ok()) {
    std::cerr << "stepwise-server: cannot start: " << started.status().message()
              << std::endl;
    return 1;
  }
  Server& server = **started;
  const std::string recovered = server.audit_recovered();
  if (!recovered.empty()) {
    std::cerr << "stepwise-server: audit log recovery: " << recovered
              << std::endl;
  }
  std::string metrics = "metrics off";
  if (server.metrics_port() >= 0) {
    metrics = absl::StrCat("metrics on ", options.metrics_address, ":",
                           server.metrics_port());
  }
  std::cout << "stepwise-server listening on " << options.address << ":"
            << server.port() << " (" << metrics << ")" << std::endl;

  std::thread signal_thread(
      [&server, &signals, grace = options.shutdown_grace] {
        int signal_number = 0;
        for (;;) {
          if (sigwait(&signals, &signal_number) != 0) continue;
          if (signal_number != SIGHUP) break;
          // Queued, so a slow reload never delays a SIGTERM behind it.
          std::cerr << "stepwise-server: SIGHUP: reloading the bundle from "
                    << server.options().bundle << std::endl;
          server.RequestReload(ReloadTrigger::kSignal);
        }
        std::cerr << "stepwise-server: " << strsignal(signal_number)
                  << ": draining (grace " << absl::FormatDuration(grace) << ")"
                  << std::endl;
        server.Shutdown(absl::Now() + grace);
      });
  server.Wait();
  signal_thread.join();
  const auto stats_line = "stepwise-server: stopped";
  std::cerr << stats_line << std::endl;
  return 0;
}

}  // namespace stepwise::service
