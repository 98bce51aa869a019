// grpc.health.v1.Health on the callback API, with Watch.
//
// Statuses are kept per service name: "" (the whole server) and
// "stepwise.v1.DecisionService". The server sets them: NOT_SERVING until a
// bundle is active and the audit log is writable, SERVING then, NOT_SERVING
// again while draining or after an audit failure. Check on an unknown name is
// NOT_FOUND; Watch on one sends SERVICE_UNKNOWN and waits (the name may become
// known), as the protocol asks.
//
// Shutdown() sets every status NOT_SERVING, sends that to every watcher and
// ends their streams, so that long-lived Watch calls do not hold up a
// graceful server shutdown.
//
// Thread-safety: all members may be called from any thread. Lock order:
// HealthService::mu_ before Watcher::mu_.
#ifndef STEPWISE_SERVICE_HEALTH_H_
#define STEPWISE_SERVICE_HEALTH_H_

#include <map>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace stepwise::service {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

  HealthService();
  ~HealthService() override;

  void SetStatus(const std::string& service, ServingStatus status);
  // Every known service at once.
  void SetAll(ServingStatus status);
  ServingStatus status(const std::string& service) const;
  void Shutdown();

  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  class Watcher;
  // UNKNOWN-free view: SERVICE_UNKNOWN for a name never set.
  ServingStatus StatusLocked(const std::string& service) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyLocked(const std::string& service)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unregister(Watcher* watcher);

  mutable absl::Mutex mu_;
  std::map<std::string, ServingStatus> statuses_ ABSL_GUARDED_BY(mu_);
  std::set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_HEALTH_H_
