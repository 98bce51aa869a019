// The one place where an error becomes a gRPC status.
//
// Inside the service every failure is an absl::Status whose code was chosen
// where the failure was understood (bad input → INVALID_ARGUMENT, audit log
// cannot write → UNAVAILABLE, same request_id with other content →
// ALREADY_EXISTS, ...; docs/service.md lists them). ToGrpcStatus() turns it
// into the grpc::Status a client sees, carrying any google.rpc detail attached
// as a payload (BadRequest for field violations) in grpc-status-details-bin.
//
// Thread-safety: free functions, no state.
#ifndef STEPWISE_SERVICE_STATUS_MAPPING_H_
#define STEPWISE_SERVICE_STATUS_MAPPING_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/engine.h"
#include "google/rpc/error_details.pb.h"
#include "grpcpp/support/status.h"

namespace stepwise::service {

// The payload type URL (and Any type URL) of a google.rpc.BadRequest.
inline constexpr char kBadRequestTypeUrl[] =
    "type.googleapis.com/google.rpc.BadRequest";

// INVALID_ARGUMENT listing every violation, with a BadRequest payload.
absl::Status BadRequestStatus(
    const std::vector<engine::FieldViolation>& violations);

// absl::Status → grpc::Status. Codes map one to one (both follow
// google.rpc.Code); payloads under a type.googleapis.com/ URL become
// google.rpc.Status details.
grpc::Status ToGrpcStatus(const absl::Status& status);

// "OK", "INVALID_ARGUMENT", ... as gRPC spells them.
std::string StatusCodeName(grpc::StatusCode code);

// The BadRequest carried by a status from a stepwise server, if any (for
// clients: `stepwise call` and the tests).
bool ExtractBadRequest(const grpc::Status& status,
                       google::rpc::BadRequest* bad_request);

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_STATUS_MAPPING_H_
