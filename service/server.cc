#include "service/server.h"

#include <cerrno>
#include <chrono>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "engine/bundle.h"
#include "engine/testing.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "service/audit/fault_fs.h"
#include "service/audit/format.h"
#include "service/audit/record.h"
#include "service/auth/server_security.h"

namespace stepwise::service {
namespace {

using grpc::health::v1::HealthCheckResponse;

std::string HostPort(const std::string& address, int port) {
  const bool ipv6 = address.find(':') != std::string::npos;
  return ipv6 ? absl::StrCat("[", address, "]:", port)
              : absl::StrCat(address, ":", port);
}

int Millis(absl::Duration d) {
  return static_cast<int>(absl::ToInt64Milliseconds(d));
}

}  // namespace

Server::Server(ServerOptions options, ServerEnv env)
    : options_(std::move(options)),
      env_(std::move(env)),
      metrics_(&registry_, [this] {
        return audit_ != nullptr ? audit_->stats() : audit::AuditStats{};
      }) {
  if (!env_.clock) env_.clock = [] { return absl::Now(); };
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options,
                                                      ServerEnv env) {
  absl::Status status = ValidateServerOptions(options);
  if (!status.ok()) return status;
  std::unique_ptr<Server> server(
      new Server(std::move(options), std::move(env)));
  for (absl::Status (Server::*step)() :
       {&Server::SetUpSecurity, &Server::LoadBundle, &Server::LoadShadow,
        &Server::OpenAudit, &Server::RecordActivation, &Server::StartMetrics,
        &Server::StartGrpc, &Server::StartWatch}) {
    status = (server.get()->*step)();
    if (!status.ok()) {
      server->Shutdown(absl::Now());
      return status;
    }
  }
  server->SetServing(true);
  return server;
}

Server::~Server() { Shutdown(absl::Now()); }

absl::Status Server::SetUpSecurity() {
  auth::SecurityOptions security;
  security.address = options_.address;
  security.tokens_file = options_.tokens_file;
  security.client_certs_file = options_.client_certs_file;
  security.tls.cert_chain = options_.tls_cert;
  security.tls.private_key = options_.tls_key;
  security.tls.client_ca = options_.tls_client_ca;
  security.tls.require_client_cert = options_.require_client_cert;
  absl::StatusOr<auth::ServerSecurity> set_up =
      auth::SetUpServerSecurity(security, &registry_);
  if (!set_up.ok()) return set_up.status();
  authorizer_ = std::move(set_up->authorizer);
  credentials_ = std::move(set_up->credentials);
  return absl::OkStatus();
}

absl::Status Server::LoadBundle() {
  // The same checks as a reload (service/reloader.h): it must lint, pass its
  // own test cases (a failing case means the rules do not do what their
  // authors wrote down) and be in effect.
  CheckedCandidate candidate = CheckBundleDir(options_.bundle);
  if (candidate.bundle == nullptr) {
    const v1::ValidateRulesetResponse& v = candidate.validation;
    if (v.diagnostics_size() == 1 && v.diagnostics(0).file().empty()) {
      return absl::FailedPreconditionError(v.diagnostics(0).message());
    }
    std::vector<engine::Diagnostic> diagnostics;
    for (const v1::Diagnostic& d : v.diagnostics()) {
      diagnostics.push_back({d.file(), d.line(), d.column(), d.message()});
    }
    return absl::FailedPreconditionError(
        absl::StrCat("the bundle ", options_.bundle, " does not lint:\n",
                     engine::FormatDiagnostics(std::move(diagnostics))));
  }
  const engine::TestReport& report = candidate.tests;
  if (!report.ok()) {
    std::vector<std::string> failed;
    for (const engine::CaseResult& c : report.cases) {
      if (!c.passed) {
        failed.push_back(
            absl::StrCat(c.file, ":", c.line, ": ", c.name, "\n", c.diff));
      }
    }
    return absl::FailedPreconditionError(
        absl::StrCat("the bundle ", options_.bundle, " fails ", report.failed,
                     " of its own test cases:\n", absl::StrJoin(failed, "\n")));
  }
  const std::optional<absl::Time> from = candidate.bundle->effective_from();
  const absl::Time now = env_.clock();
  if (from.has_value() && *from > now) {
    return absl::FailedPreconditionError(
        absl::StrCat("the bundle ", options_.bundle,
                     " is not in effect yet: effective_from ", FormatUtc(*from),
                     " is in the future (server time ", FormatUtc(now), ")"));
  }
  startup_bundle_ = std::move(candidate);
  return absl::OkStatus();
}

absl::Status Server::LoadShadow() {
  if (options_.shadow_bundle.empty()) return absl::OkStatus();
  // It must compile; its tests are run and reported but do not block, and
  // its effective_from may lie ahead: a shadow bundle never answers, and
  // trying a candidate before it is finished or in effect is the point.
  CheckedCandidate candidate = CheckBundleDir(options_.shadow_bundle);
  if (candidate.bundle == nullptr) {
    std::vector<std::string> lines;
    for (const v1::Diagnostic& d : candidate.validation.diagnostics()) {
      lines.push_back(d.file().empty()
                          ? d.message()
                          : absl::StrCat(d.file(), ":", d.line(), ":",
                                         d.column(), ": ", d.message()));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("the shadow bundle ", options_.shadow_bundle,
                     " does not lint:\n", absl::StrJoin(lines, "\n")));
  }
  const engine::Bundle& b = *candidate.bundle;
  std::cerr << "stepwise-server: shadow: " << b.name() << " " << b.version()
            << " (sha256 " << b.sha256() << ") from " << options_.shadow_bundle
            << ": " << candidate.tests.passed << " of "
            << candidate.tests.cases.size()
            << " test cases pass; evaluated beside the active bundle, answers "
               "unchanged"
            << std::endl;
  metrics_.shadow_ruleset_info.WithLabels({b.name(), b.version(), b.sha256()})
      .Set(1);
  shadow_ = std::move(candidate.bundle);
  return absl::OkStatus();
}

namespace {

absl::StatusOr<std::string> DefaultSubjectKeyPath(const std::string& audit_dir,
                                                  audit::FileSystem& fs) {
  // Beside the folder, not in it: a copy of the audit folder (for replay,
  // verification or an auditor) must not carry the key that lets anyone
  // test guessed patient references against it.
  absl::string_view dir = audit_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  if (dir.empty() || dir == "/") {
    return absl::InvalidArgumentError(
        "the audit folder is the file-system root; set subject_key");
  }
  std::string beside = absl::StrCat(dir, ".subject.key");
  // Logs started before the key moved keep their key (and so their subject
  // hashes) until an operator moves it.
  const std::string legacy = audit::JoinPath(audit_dir, "subject.key");
  absl::StatusOr<bool> beside_exists = fs.FileExists(beside);
  absl::StatusOr<bool> legacy_exists = fs.FileExists(legacy);
  if (beside_exists.ok() && !*beside_exists && legacy_exists.ok() &&
      *legacy_exists) {
    std::cerr << "stepwise-server: warning: using the subject key " << legacy
              << " inside the audit folder; move it to " << beside
              << " (or name it with --subject-key) so that copies of the "
                 "audit folder do not carry it"
              << std::endl;
    return legacy;
  }
  return beside;
}

}  // namespace

absl::Status Server::OpenAudit() {
  audit::FileSystem* base =
      env_.fs != nullptr ? env_.fs : audit::DefaultFileSystem();
  audit::FileSystem* write_fs = base;
  if (options_.audit_fault_after >= 0) {
    auto fault = std::make_unique<audit::FaultInjectingFileSystem>(base);
    write_fs = fault.get();
    fault_fs_ = std::move(fault);
  }

  audit::AuditLogOptions audit_options;
  audit_options.dir = options_.audit_dir;
  audit_options.segment_bytes =
      static_cast<uint64_t>(options_.audit_segment_bytes);
  audit_options.max_batch = static_cast<size_t>(options_.audit_max_batch);
  audit_options.fs = write_fs;
  audit_options.now = env_.clock;
  absl::StatusOr<std::unique_ptr<audit::AuditLog>> log =
      audit::AuditLog::Open(std::move(audit_options));
  if (!log.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the audit log in ", options_.audit_dir, ": ",
                     log.status().message()));
  }
  audit_ = *std::move(log);

  std::string key_path = options_.subject_key;
  if (key_path.empty()) {
    absl::StatusOr<std::string> chosen =
        DefaultSubjectKeyPath(options_.audit_dir, *base);
    if (!chosen.ok()) return chosen.status();
    key_path = *std::move(chosen);
  }
  absl::StatusOr<audit::SubjectKey> key =
      audit::SubjectKey::LoadOrCreate(key_path, *base);
  if (!key.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load the subject key ", key_path, ": ",
                     key.status().message()));
  }
  subject_key_.emplace(*std::move(key));
  return absl::OkStatus();
}

absl::Status Server::RecordActivation() {
  ReloaderDeps deps;
  deps.bundle_dir = options_.bundle;
  deps.active = &bundle_;
  deps.audit = audit_.get();
  deps.metrics = &metrics_;
  deps.clock = env_.clock;
  deps.on_audit_failure = [this](const absl::Status& status) {
    OnAuditFailure(status);
  };
  reloader_ = std::make_unique<Reloader>(std::move(deps));
  const absl::Status activated = reloader_->Activate(
      startup_bundle_, ReloadTrigger::kStartup, kSystemPrincipal);
  startup_bundle_ = CheckedCandidate();
  if (!activated.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write to the audit log in ", options_.audit_dir,
                     ": ", activated.message()));
  }
  if (fault_fs_ != nullptr) {
    // Test hook: the next audit_fault_after writes succeed, the one after
    // fails, and the log fails closed from then on.
    static_cast<audit::FaultInjectingFileSystem*>(fault_fs_.get())
        ->FailAppend(static_cast<int>(options_.audit_fault_after) + 1, EIO);
  }
  return absl::OkStatus();
}

absl::Status Server::StartMetrics() {
  if (options_.metrics_port < 0) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<metrics::MetricsHttpServer>> http =
      metrics::MetricsHttpServer::Start(options_.metrics_address,
                                        options_.metrics_port, &registry_);
  if (!http.ok()) return http.status();
  metrics_http_ = *std::move(http);
  return absl::OkStatus();
}

absl::Status Server::StartGrpc() {
  if (options_.idempotency_capacity > 0) {
    idempotency_ = std::make_unique<IdempotencyCache>(
        IdempotencyOptions{static_cast<size_t>(options_.idempotency_capacity),
                           options_.idempotency_window});
  }
  ids_ = env_.random
             ? std::make_unique<UuidV7Generator>(env_.clock, env_.random)
             : std::make_unique<UuidV7Generator>();
  health_ = std::make_unique<HealthService>();
  health_->SetStatus(kDecisionServiceName, HealthCheckResponse::NOT_SERVING);
  health_->SetStatus(kGovernanceServiceName, HealthCheckResponse::NOT_SERVING);

  DecisionServiceDeps deps;
  deps.bundle = &bundle_;
  deps.audit = audit_.get();
  deps.subject_key = &*subject_key_;
  deps.idempotency = idempotency_.get();
  deps.metrics = &metrics_;
  deps.ids = ids_.get();
  deps.clock = env_.clock;
  deps.max_inflight = options_.max_inflight;
  deps.authorizer = authorizer_.get();
  deps.shadow = shadow_;
  deps.on_audit_failure = [this](const absl::Status& status) {
    OnAuditFailure(status);
  };
  decisions_ = std::make_unique<DecisionService>(std::move(deps));

  // Two threads: a long VerifyAudit does not hold up a reload. Reloads are
  // serialised by the Reloader itself.
  work_ = std::make_unique<WorkQueue>(2);
  GovernanceServiceDeps governance;
  governance.authorizer = authorizer_.get();
  governance.reloader = reloader_.get();
  governance.work = work_.get();
  governance.audit = audit_.get();
  governance.audit_fs =
      env_.fs != nullptr ? env_.fs : audit::DefaultFileSystem();
  governance.audit_dir = options_.audit_dir;
  governance.metrics = &metrics_;
  governance_ = std::make_unique<GovernanceService>(std::move(governance));

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string target = HostPort(options_.address, options_.port);
  builder.AddListeningPort(target, credentials_, &port_);
  builder.RegisterService(decisions_.get());
  builder.RegisterService(governance_.get());
  builder.RegisterService(health_.get());
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(options_.max_receive_message_bytes));
  builder.SetMaxSendMessageSize(
      static_cast<int>(options_.max_send_message_bytes));
  // Without this gRPC sets SO_REUSEPORT and a second server on a busy port
  // would start and silently share it instead of failing.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(options_.max_concurrent_streams));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             Millis(options_.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             Millis(options_.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      Millis(options_.keepalive_min_client_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  grpc_ = builder.BuildAndStart();
  if (grpc_ == nullptr || port_ == 0) {
    grpc_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", target,
                     " (port in use or address not available)"));
  }
  return absl::OkStatus();
}

absl::Status Server::StartWatch() {
  if (!options_.watch_bundle) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<BundleWatch>> watch = BundleWatch::Start(
      options_.bundle, [this] { RequestReload(ReloadTrigger::kWatch); });
  if (!watch.ok()) return watch.status();
  watch_ = *std::move(watch);
  return absl::OkStatus();
}

int Server::metrics_port() const {
  return metrics_http_ != nullptr ? metrics_http_->port() : -1;
}

std::string Server::audit_recovered() const {
  return audit_ != nullptr ? audit_->recovered() : "";
}

void Server::SetServing(bool serving) {
  const auto status =
      serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  health_->SetStatus("", status);
  health_->SetStatus(kDecisionServiceName, status);
  health_->SetStatus(kGovernanceServiceName, status);
  metrics_.serving.Set(serving ? 1 : 0);
}

void Server::OnAuditFailure(const absl::Status& status) {
  // Fail closed: nothing is answered without its record, so stop attracting
  // traffic; an operator must look at the disk and restart.
  health_->SetAll(HealthCheckResponse::NOT_SERVING);
  metrics_.serving.Set(0);
}

void Server::RequestReload(ReloadTrigger trigger) {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shutdown_started_ || work_ == nullptr || reloader_ == nullptr) return;
  }
  work_->Post([this, trigger] {
    // The outcome is logged and counted by the Reloader; an UNAVAILABLE here
    // (the record could not be written) has been logged too.
    reloader_->Reload(trigger, kSystemPrincipal).IgnoreError();
  });
}

void Server::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shutdown_started_) {
      shutdown_mu_.Await(absl::Condition(&shutdown_done_));
      return;
    }
    shutdown_started_ = true;
  }
  metrics_.serving.Set(0);
  if (watch_ != nullptr) watch_->Stop();
  if (health_ != nullptr) health_->Shutdown();
  if (decisions_ != nullptr) decisions_->SetAccepting(false);
  if (governance_ != nullptr) governance_->SetAccepting(false);
  if (grpc_ != nullptr) {
    // Waits for in-flight calls (each is released by its audit callback, so
    // the audit log must still be open), cancels those left at `deadline`.
    // Governance calls finish from the work queue, which is still running.
    grpc_->Shutdown(absl::ToChronoTime(deadline));
    grpc_->Wait();
  }
  // Runs what is queued (a reload asked for just before the signal), with
  // the audit log still open.
  if (work_ != nullptr) work_->Stop();
  if (audit_ != nullptr) audit_->Close();
  if (metrics_http_ != nullptr) metrics_http_->Stop();
  absl::MutexLock lock(&shutdown_mu_);
  shutdown_done_ = true;
}

void Server::Wait() {
  absl::MutexLock lock(&shutdown_mu_);
  shutdown_mu_.Await(absl::Condition(&shutdown_done_));
}

}  // namespace stepwise::service
