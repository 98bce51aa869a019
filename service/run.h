// The server's process life, shared by the stepwise-server binary and
// `stepwise serve`: start, announce the ports on stdout, wait for signals on
// a dedicated signal thread (SIGHUP: reload the bundle; SIGTERM, SIGINT:
// drain and exit).
//
// Thread-safety: call once per process, from the main thread, before any
// other thread is started (the signal mask is inherited by every thread).
#ifndef STEPWISE_SERVICE_RUN_H_
#define STEPWISE_SERVICE_RUN_H_

#include "service/config.h"

namespace stepwise::service {

// Blocks SIGTERM, SIGINT and SIGHUP, starts the server, prints
//   stepwise-server listening on 127.0.0.1:50051 (metrics on 127.0.0.1:9464)
// once it is SERVING. Each SIGHUP queues a reload of the bundle folder
// (docs/service.md, "Reloading the ruleset"). On the first SIGTERM or SIGINT:
// health NOT_SERVING, stop accepting, finish in-flight calls within
// shutdown_grace, close the audit log. Returns the process exit code: 0 after a
// clean shutdown, 1 when the server could not start (the reason is printed on
// stderr).
int RunServer(const ServerOptions& options);

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_RUN_H_
