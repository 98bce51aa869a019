// The stepwise server: owns the active bundle, the audit log, the subject
// key, the idempotency cache, health, metrics and the gRPC server, and starts
// and stops them in order (docs/service.md, "Start-up" and "Shutdown").
//
//   auto server = Server::Start(options);   // SERVING when it returns
//   ...                                     // a signal arrives
//   server->Shutdown(absl::Now() + options.shutdown_grace);
//
// GovernanceService is registered in StartGrpc() beside DecisionService,
// sharing ActiveBundle (a reload swaps it, through the Reloader) and the
// audit log (activation records). Reloads asked for by SIGHUP or the bundle
// folder watch go through RequestReload().
//
// Thread-safety: Shutdown and Wait may be called from any thread; the
// accessors are safe after Start returns.
#ifndef STEPWISE_SERVICE_SERVER_H_
#define STEPWISE_SERVICE_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "service/active_bundle.h"
#include "service/audit/audit_log.h"
#include "service/audit/file_system.h"
#include "service/audit/subject_key.h"
#include "service/auth/authorizer.h"
#include "service/bundle_watch.h"
#include "service/config.h"
#include "service/decision_service.h"
#include "service/governance_service.h"
#include "service/health.h"
#include "service/idempotency.h"
#include "service/metrics.h"
#include "service/metrics_http.h"
#include "service/reloader.h"
#include "service/service_metrics.h"
#include "service/uuid.h"
#include "service/work_queue.h"

namespace stepwise::service {

// What the server takes from its surroundings; tests inject their own.
struct ServerEnv {
  // Default: absl::Now.
  std::function<absl::Time()> clock;
  // Randomness of decision ids. Default: RAND_bytes.
  UuidV7Generator::RandomSource random;
  // The audit log's file system. Default: the real one.
  audit::FileSystem* fs = nullptr;
};

class Server {
 public:
  // Validates the options, loads the bundle (it must lint and pass its own
  // tests), opens the audit log and the subject key, records the bundle's
  // activation, starts /metrics and the gRPC server, then reports SERVING.
  // Every failure is a status with a message for an operator:
  // FAILED_PRECONDITION (no authentication on a non-loopback address, a
  // credential or TLS file, bundle, audit folder, key file), UNAVAILABLE
  // (port in use), INVALID_ARGUMENT (options).
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options,
                                                       ServerEnv env = {});

  ~Server();  // Shutdown(now) if not done yet
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The gRPC port actually bound (useful with port 0).
  int port() const { return port_; }
  // The /metrics port, or -1 when metrics are off.
  int metrics_port() const;
  const ServerOptions& options() const { return options_; }
  // What audit start-up recovery did (a torn tail set aside); empty if
  // nothing.
  std::string audit_recovered() const;
  std::shared_ptr<const ActiveBundle::Snapshot> active() const {
    return bundle_.Get();
  }
  HealthService& health() { return *health_; }

  // Queues a reload of the configured bundle folder (SIGHUP, the folder
  // watch) and returns at once; the outcome is logged, counted and, when
  // activated, recorded. Ignored once shutdown has begun.
  void RequestReload(ReloadTrigger trigger);
  const metrics::Registry& metrics_registry() const { return registry_; }

  // Health NOT_SERVING, refuse new calls, let in-flight calls finish until
  // `deadline` (then cancel them), flush and close the audit log, stop
  // /metrics. Idempotent; later calls wait for the first to finish.
  void Shutdown(absl::Time deadline);
  // Blocks until Shutdown has completed.
  void Wait();

 private:
  Server(ServerOptions options, ServerEnv env);

  // First: the safe defaults on the address, the credential files and TLS
  // (service/auth/server_security.h), before anything is opened or bound.
  absl::Status SetUpSecurity();
  absl::Status LoadBundle();
  absl::Status LoadShadow();
  absl::Status OpenAudit();
  absl::Status RecordActivation();
  absl::Status StartMetrics();
  absl::Status StartGrpc();
  absl::Status StartWatch();
  void SetServing(bool serving);
  void OnAuditFailure(const absl::Status& status);

  const ServerOptions options_;
  ServerEnv env_;

  metrics::Registry registry_;
  ServiceMetrics metrics_;
  ActiveBundle bundle_;
  // The bundle checked by LoadBundle, until RecordActivation activates it.
  CheckedCandidate startup_bundle_;
  std::unique_ptr<Reloader> reloader_;
  // The shadow bundle (options.shadow_bundle), fixed at start-up; null: off.
  std::shared_ptr<const engine::Bundle> shadow_;
  // Governance work and queued reloads; stopped after gRPC, before the log.
  std::unique_ptr<WorkQueue> work_;
  std::unique_ptr<BundleWatch> watch_;           // options.watch_bundle only
  std::unique_ptr<audit::FileSystem> fault_fs_;  // --audit-fault-after only
  std::unique_ptr<audit::AuditLog> audit_;
  std::optional<audit::SubjectKey> subject_key_;
  std::unique_ptr<IdempotencyCache> idempotency_;
  std::unique_ptr<UuidV7Generator> ids_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<DecisionService> decisions_;
  std::unique_ptr<GovernanceService> governance_;
  std::unique_ptr<metrics::MetricsHttpServer> metrics_http_;
  std::unique_ptr<auth::Authorizer> authorizer_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  std::unique_ptr<grpc::Server> grpc_;
  int port_ = 0;

  absl::Mutex shutdown_mu_;
  bool shutdown_started_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  bool shutdown_done_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

// The service names health reports on: "" (the whole server) and these.
inline constexpr char kDecisionServiceName[] = "stepwise.v1.DecisionService";
inline constexpr char kGovernanceServiceName[] =
    "stepwise.v1.GovernanceService";

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_SERVER_H_
