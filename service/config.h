// The server's configuration: one options struct whose every field states its
// default, filled from an optional YAML file and from command-line flags
// (precedence: flag > file > default). docs/service.md lists every option.
//
// Each option is declared once, in VisitServerOptions() (config.cc), with its
// YAML key, its flag and its help text; the flag parser, the YAML reader and
// the documentation all walk that one table.
//
// Thread-safety: plain values; ServerFlags is used by one thread.
#ifndef STEPWISE_SERVICE_CONFIG_H_
#define STEPWISE_SERVICE_CONFIG_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/audit/format.h"

namespace stepwise::service {

struct ServerOptions {
  // IP address the gRPC server listens on. Default: 127.0.0.1 (loopback only;
  // use 0.0.0.0 in a container).
  std::string address = "127.0.0.1";
  // gRPC port; 0 picks a free one (printed at start-up). Default: 50051.
  int port = 50051;
  // The rule bundle folder served. Default: "rules".
  std::string bundle = "rules";
  // Reload the bundle when a file in its folder changes (inotify), as SIGHUP
  // does. Default: false.
  bool watch_bundle = false;
  // A candidate bundle evaluated beside the active one on live traffic;
  // differences are counted and written as shadow records, answers never
  // change. Fixed at start-up. Default: empty (no shadow).
  std::string shadow_bundle;
  // The audit log folder; created if missing. Default: "stepwise-audit".
  std::string audit_dir = std::string(audit::kDefaultAuditDir);
  // The key file for subject hashes; created if missing. Default: empty,
  // meaning "<audit_dir>.subject.key" beside the folder (or, for a log
  // started before the key moved, "subject.key" inside it, with a warning).
  std::string subject_key;
  // Address of the Prometheus /metrics endpoint. Default: 127.0.0.1.
  std::string metrics_address = "127.0.0.1";
  // Port of /metrics; 0 picks a free one, -1 turns it off. Default: 9464.
  int metrics_port = 9464;
  // How long in-flight calls may take to finish after SIGTERM before they are
  // cancelled. Default: 10s.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Largest request accepted, in bytes. Default: 1 MiB.
  int64_t max_receive_message_bytes = 1 << 20;
  // Largest response sent, in bytes. Default: 4 MiB.
  int64_t max_send_message_bytes = 4 << 20;
  // Concurrent streams per HTTP/2 connection. Default: 256.
  int64_t max_concurrent_streams = 256;
  // Evaluate calls admitted at once (beyond: RESOURCE_EXHAUSTED). Default:
  // 4096.
  int64_t max_inflight = 4096;
  // The server pings an idle connection this often. Default: 60s.
  absl::Duration keepalive_time = absl::Seconds(60);
  // A ping unanswered this long closes the connection. Default: 20s.
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Clients may ping no more often than this. Default: 10s.
  absl::Duration keepalive_min_client_interval = absl::Seconds(10);
  // Request ids remembered for idempotency; 0 turns it off. Default: 50000.
  int64_t idempotency_capacity = 50000;
  // How long a request id is remembered after its decision. Default: 24h.
  absl::Duration idempotency_window = absl::Hours(24);
  // A new audit segment is started past this size. Default: 64 MiB.
  int64_t audit_segment_bytes = int64_t{64} << 20;
  // Most records in one audit group commit. Default: 4096.
  int64_t audit_max_batch = 4096;

  // Security (docs/security.md). With neither tokens_file nor
  // client_certs_file the server accepts a loopback address only, and every
  // caller is "anonymous" with every role.
  // YAML file of bearer-token hashes, each with a principal and roles; must
  // be chmod 600. Default: empty (no tokens).
  std::string tokens_file;
  // YAML file mapping client certificates (subject CN or SAN) to principals
  // and roles; needs tls_client_ca. Default: empty (none).
  std::string client_certs_file;
  // PEM certificate chain of the server; with tls_key turns TLS on.
  // Default: empty (plaintext).
  std::string tls_cert;
  // PEM private key of tls_cert; must be chmod 600. Default: empty.
  std::string tls_key;
  // PEM CA that signs client certificates: they are requested and verified.
  // Default: empty (not requested).
  std::string tls_client_ca;
  // Refuse a TLS handshake without a valid client certificate. Default:
  // false (a certificate is verified if sent; a token may be used instead).
  bool require_client_cert = false;

  // Test only (hidden flag, never read from a file): after this many audit
  // writes succeed, every later one fails with EIO. -1: off.
  int64_t audit_fault_after = -1;
};

// Checks ranges and combinations; INVALID_ARGUMENT naming the option.
absl::Status ValidateServerOptions(const ServerOptions& options);

// Applies the YAML file at `path` over `options`. Unknown keys, wrong types
// and unreadable files are INVALID_ARGUMENT with file:line:column.
absl::Status ApplyConfigFile(const std::string& path, ServerOptions* options);
// The same for YAML text already read (`name` is used in messages).
absl::Status ApplyConfigText(const std::string& text, const std::string& name,
                             ServerOptions* options);

// The server's flags on a CLI11 app (stepwise-server or `stepwise serve`).
class ServerFlags {
 public:
  // Adds --config and one flag per option to `app`; `app` must outlive this.
  void Register(CLI::App* app);
  // After parsing: defaults, then the --config file, then the flags given.
  absl::StatusOr<ServerOptions> Resolve() const;

 private:
  std::string config_file_;
  ServerOptions flag_values_;
  // Copies one flag that was given on the command line into the result.
  std::vector<std::function<absl::Status(ServerOptions*)>> apply_;
  std::deque<std::string> duration_text_;  // stable addresses for CLI11
};

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_CONFIG_H_
