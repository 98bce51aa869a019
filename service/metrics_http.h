// Serves a metrics Registry as Prometheus text on GET /metrics, on its own
// port (libmicrohttpd, one internal polling thread), so that scrapes never
// compete with gRPC traffic for the gRPC port's threads.
//
// Thread-safety: Start and Stop from one thread; the HTTP thread only reads
// the registry.
#ifndef STEPWISE_SERVICE_METRICS_HTTP_H_
#define STEPWISE_SERVICE_METRICS_HTTP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "service/metrics.h"

struct MHD_Daemon;

namespace stepwise::service::metrics {

class MetricsHttpServer {
 public:
  // Listens on `address`:`port` (0: a free port). `registry` must outlive
  // the server. UNAVAILABLE when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, int port, const Registry* registry);

  ~MetricsHttpServer();  // Stop()
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }
  // Closes the socket and joins the HTTP thread. Idempotent.
  void Stop();

 private:
  MetricsHttpServer(const Registry* registry) : registry_(registry) {}

  const Registry* registry_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;

  friend struct MetricsHttpHandler;
};

}  // namespace stepwise::service::metrics

#endif  // STEPWISE_SERVICE_METRICS_HTTP_H_
