#include "service/config.h"

#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "yaml-cpp/yaml.h"

namespace stepwise::service {
namespace {

// Every option, once: YAML key (the flag is the key with dashes), member,
// help. Hidden options are flags only and never read from a file.
template <typename Visitor>
void VisitServerOptions(Visitor& v) {
  v("address", &ServerOptions::address, "IP address to listen on", false);
  v("port", &ServerOptions::port, "gRPC port; 0 picks a free one", false);
  v("bundle", &ServerOptions::bundle, "Rule bundle folder to serve", false);
  v("watch_bundle", &ServerOptions::watch_bundle,
    "Reload the bundle when its folder changes (as SIGHUP does)", false);
  v("shadow_bundle", &ServerOptions::shadow_bundle,
    "Candidate bundle evaluated beside the active one; differences are "
    "counted and audited, answers never change",
    false);
  v("audit_dir", &ServerOptions::audit_dir,
    "Audit log folder (created if missing)", false);
  v("subject_key", &ServerOptions::subject_key,
    "Key file for subject hashes (default: <audit_dir>.subject.key, beside "
    "the audit folder)",
    false);
  v("metrics_address", &ServerOptions::metrics_address,
    "IP address of the Prometheus /metrics endpoint", false);
  v("metrics_port", &ServerOptions::metrics_port,
    "Port of /metrics; 0 picks a free one, -1 turns it off", false);
  v("shutdown_grace", &ServerOptions::shutdown_grace,
    "Time in-flight calls get to finish after SIGTERM (e.g. 10s)", false);
  v("max_receive_message_bytes", &ServerOptions::max_receive_message_bytes,
    "Largest request accepted, in bytes", false);
  v("max_send_message_bytes", &ServerOptions::max_send_message_bytes,
    "Largest response sent, in bytes", false);
  v("max_concurrent_streams", &ServerOptions::max_concurrent_streams,
    "Concurrent streams per HTTP/2 connection", false);
  v("max_inflight", &ServerOptions::max_inflight,
    "Evaluate calls admitted at once; beyond: RESOURCE_EXHAUSTED", false);
  v("keepalive_time", &ServerOptions::keepalive_time,
    "Ping an idle connection this often", false);
  v("keepalive_timeout", &ServerOptions::keepalive_timeout,
    "Close a connection whose ping is unanswered this long", false);
  v("keepalive_min_client_interval",
    &ServerOptions::keepalive_min_client_interval,
    "Shortest interval between client pings tolerated", false);
  v("idempotency_capacity", &ServerOptions::idempotency_capacity,
    "Request ids remembered for idempotency; 0 turns it off", false);
  v("idempotency_window", &ServerOptions::idempotency_window,
    "How long a request id is remembered after its decision", false);
  v("audit_segment_bytes", &ServerOptions::audit_segment_bytes,
    "Start a new audit segment past this size", false);
  v("audit_max_batch", &ServerOptions::audit_max_batch,
    "Most records in one audit group commit", false);
  v("tokens_file", &ServerOptions::tokens_file,
    "YAML file of bearer-token hashes -> principal, roles (chmod 600)", false);
  v("client_certs_file", &ServerOptions::client_certs_file,
    "YAML file of client certificates (CN or SAN) -> principal, roles", false);
  v("tls_cert", &ServerOptions::tls_cert,
    "PEM certificate chain of the server (turns TLS on with tls_key)", false);
  v("tls_key", &ServerOptions::tls_key,
    "PEM private key of tls_cert (chmod 600)", false);
  v("tls_client_ca", &ServerOptions::tls_client_ca,
    "PEM CA of client certificates (requested and verified)", false);
  v("require_client_cert", &ServerOptions::require_client_cert,
    "Refuse TLS clients without a valid certificate", false);
  v("audit_fault_after", &ServerOptions::audit_fault_after,
    "Test only: fail every audit write after this many", true);
}

std::string FlagName(const char* key) {
  return absl::StrCat("--", absl::StrReplaceAll(key, {{"_", "-"}}));
}

class FlagRegistrar {
 public:
  FlagRegistrar(CLI::App* app, ServerOptions* values,
                std::deque<std::string>* duration_text,
                std::vector<std::function<absl::Status(ServerOptions*)>>* apply)
      : app_(app),
        values_(values),
        duration_text_(duration_text),
        apply_(apply) {}

  template <typename T>
  void operator()(const char* key, T ServerOptions::*field, const char* help,
                  bool hidden) {
    const std::string flag = FlagName(key);
    CLI::Option* option = nullptr;
    if constexpr (std::is_same_v<T, absl::Duration>) {
      duration_text_->push_back(absl::FormatDuration(values_->*field));
      std::string* text = &duration_text_->back();
      option = app_->add_option(flag, *text, help)->capture_default_str();
      apply_->push_back([option, text, field,
                         flag](ServerOptions* out) -> absl::Status {
        if (option->count() == 0) return absl::OkStatus();
        absl::Duration d;
        if (!absl::ParseDuration(*text, &d)) {
          return absl::InvalidArgumentError(absl::StrCat(
              flag, ": '", *text, "' is not a duration (e.g. 500ms, 10s, 2m)"));
        }
        out->*field = d;
        return absl::OkStatus();
      });
    } else {
      // A bool is a flag: `--require-client-cert` (or `...=false`).
      if constexpr (std::is_same_v<T, bool>) {
        option = app_->add_flag(flag, values_->*field, help);
      } else {
        option = app_->add_option(flag, values_->*field, help)
                     ->capture_default_str();
      }
      const ServerOptions* values = values_;
      apply_->push_back(
          [option, values, field](ServerOptions* out) -> absl::Status {
            if (option->count() > 0) out->*field = values->*field;
            return absl::OkStatus();
          });
    }
    if (hidden) option->group("");
  }

 private:
  CLI::App* app_;
  ServerOptions* values_;
  std::deque<std::string>* duration_text_;
  std::vector<std::function<absl::Status(ServerOptions*)>>* apply_;
};

std::string Where(const std::string& name, const YAML::Mark& mark) {
  if (mark.is_null()) return name;
  return absl::StrCat(name, ":", mark.line + 1, ":", mark.column + 1);
}

class YamlReader {
 public:
  YamlReader(const YAML::Node& root, const std::string& name,
             ServerOptions* out)
      : root_(root), name_(name), out_(out) {}

  template <typename T>
  void operator()(const char* key, T ServerOptions::*field, const char* help,
                  bool hidden) {
    if (hidden) return;
    known_.insert(key);
    const YAML::Node node = root_[key];
    if (!node) return;
    try {
      if constexpr (std::is_same_v<T, absl::Duration>) {
        const std::string text = node.as<std::string>();
        absl::Duration d;
        if (!absl::ParseDuration(text, &d)) {
          errors_.push_back(
              absl::StrCat(Where(name_, node.Mark()), ": ", key, ": '", text,
                           "' is not a duration (e.g. 500ms, 10s, 2m)"));
          return;
        }
        out_->*field = d;
      } else {
        if (!node.IsScalar()) throw YAML::BadConversion(node.Mark());
        out_->*field = node.as<T>();
      }
    } catch (const YAML::Exception&) {
      const char* expected = std::is_same_v<T, std::string>      ? "a string"
                             : std::is_same_v<T, absl::Duration> ? "a duration"
                             : std::is_same_v<T, bool> ? "true or false"
                                                       : "an integer";
      errors_.push_back(absl::StrCat(Where(name_, node.Mark()), ": ", key,
                                     ": expected ", expected));
    }
  }

  std::vector<std::string> Finish() {
    for (const auto& entry : root_) {
      const std::string key = entry.first.as<std::string>();
      if (known_.count(key) == 0) {
        errors_.push_back(absl::StrCat(Where(name_, entry.first.Mark()),
                                       ": unknown option '", key, "'"));
      }
    }
    return std::move(errors_);
  }

 private:
  const YAML::Node& root_;
  const std::string& name_;
  ServerOptions* out_;
  std::set<std::string> known_;
  std::vector<std::string> errors_;
};

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& o) {
  std::vector<std::string> errors;
  auto check = [&](bool ok, const char* key, const std::string& why) {
    if (!ok) errors.push_back(absl::StrCat(key, ": ", why));
  };
  check(!o.address.empty(), "address", "must not be empty");
  check(o.port >= 0 && o.port <= 65535, "port", "must be in 0..65535");
  check(!o.bundle.empty(), "bundle", "must not be empty");
  check(!o.audit_dir.empty(), "audit_dir", "must not be empty");
  check(o.metrics_port >= -1 && o.metrics_port <= 65535, "metrics_port",
        "must be in -1..65535");
  check(o.shutdown_grace >= absl::ZeroDuration(), "shutdown_grace",
        "must not be negative");
  check(o.max_receive_message_bytes >= 1024 &&
            o.max_receive_message_bytes <= (int64_t{1} << 30),
        "max_receive_message_bytes", "must be in 1 KiB..1 GiB");
  check(o.max_send_message_bytes >= 1024 &&
            o.max_send_message_bytes <= (int64_t{1} << 30),
        "max_send_message_bytes", "must be in 1 KiB..1 GiB");
  check(o.max_concurrent_streams >= 1 && o.max_concurrent_streams <= 65536,
        "max_concurrent_streams", "must be in 1..65536");
  check(o.max_inflight >= 1, "max_inflight", "must be at least 1");
  check(o.keepalive_time >= absl::Seconds(1), "keepalive_time",
        "must be at least 1s");
  check(o.keepalive_timeout >= absl::Seconds(1), "keepalive_timeout",
        "must be at least 1s");
  check(o.keepalive_min_client_interval >= absl::ZeroDuration(),
        "keepalive_min_client_interval", "must not be negative");
  check(o.idempotency_capacity >= 0, "idempotency_capacity",
        "must not be negative");
  check(o.idempotency_window > absl::ZeroDuration(), "idempotency_window",
        "must be positive");
  check(o.audit_segment_bytes >= 4096, "audit_segment_bytes",
        "must be at least 4096");
  check(o.audit_max_batch >= 1, "audit_max_batch", "must be at least 1");
  check(o.tls_cert.empty() == o.tls_key.empty(), "tls_cert",
        "tls_cert and tls_key go together");
  check(o.tls_client_ca.empty() || !o.tls_cert.empty(), "tls_client_ca",
        "needs tls_cert and tls_key (client certificates need TLS)");
  check(!o.require_client_cert || !o.tls_client_ca.empty(),
        "require_client_cert", "needs tls_client_ca");
  check(o.client_certs_file.empty() || !o.tls_client_ca.empty(),
        "client_certs_file",
        "needs tls_client_ca (only verified certificates name a principal)");
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid configuration: ", absl::StrJoin(errors, "; ")));
}

absl::Status ApplyConfigText(const std::string& text, const std::string& name,
                             ServerOptions* options) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(name, e.mark), ": ", e.msg));
  }
  if (root.IsNull()) return absl::OkStatus();  // an empty file sets nothing
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(name, root.Mark()), ": expected a map of option: value"));
  }
  ServerOptions result = *options;
  YamlReader reader(root, name, &result);
  VisitServerOptions(reader);
  std::vector<std::string> errors = reader.Finish();
  if (!errors.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  }
  *options = std::move(result);
  return absl::OkStatus();
}

absl::Status ApplyConfigFile(const std::string& path, ServerOptions* options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read config file ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ApplyConfigText(text.str(), path, options);
}

void ServerFlags::Register(CLI::App* app) {
  app->add_option("--config", config_file_,
                  "YAML file of options (flags given here win)");
  FlagRegistrar registrar(app, &flag_values_, &duration_text_, &apply_);
  VisitServerOptions(registrar);
}

absl::StatusOr<ServerOptions> ServerFlags::Resolve() const {
  ServerOptions options;
  if (!config_file_.empty()) {
    absl::Status status = ApplyConfigFile(config_file_, &options);
    if (!status.ok()) return status;
  }
  for (const auto& apply : apply_) {
    absl::Status status = apply(&options);
    if (!status.ok()) return status;
  }
  absl::Status status = ValidateServerOptions(options);
  if (!status.ok()) return status;
  return options;
}

}  // namespace stepwise::service
