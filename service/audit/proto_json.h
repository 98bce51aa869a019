// The protobuf JSON mapping of the messages a decision record embeds
// (docs/audit-log.md §3), written straight into a buffer.
//
// Record bodies used to go through google::protobuf::util::MessageToJsonString,
// which serializes the message to the wire format, re-parses it through a
// type resolver and allocates on every field: about a fifth of the server's
// CPU per decision. The writers here produce the same bytes that printer
// writes with preserve_proto_field_names (protobuf 3.21): fields in field
// number order, defaults left out, a proto3 `optional` field written when set,
// enums by name, timestamps in RFC 3339 with 0, 3, 6 or 9 fraction digits,
// doubles as its SimpleDtoa writes them, and its string escaping (`<`, `>`,
// controls, C1 controls and the invisible format characters as \uXXXX). Map
// entries come in the map's iteration order, as they do from the printer.
// Tests hold them to the printer byte for byte.
//
// Where the printer's output is not worth reproducing — a string that is not
// valid UTF-8 (the printer silently drops bytes), a timestamp outside
// 0001..9999, a non-finite double, an enum value without a name, an empty map
// key — a writer returns false and the caller uses the printer instead.
//
// Thread-safety: free functions without state.
#ifndef STEPWISE_SERVICE_AUDIT_PROTO_JSON_H_
#define STEPWISE_SERVICE_AUDIT_PROTO_JSON_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/timestamp.pb.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::service::audit {

// `s` as a JSON string literal, quotes included, escaped as protobuf's JSON
// printer escapes it. False (and `out` partly written) if `s` is not UTF-8.
bool AppendProtoJsonString(absl::string_view s, std::string* out);

// `t` as protobuf's printer writes a google.protobuf.Timestamp, quotes
// included. False outside 0001-01-01..9999-12-31 or for nanos outside
// 0..999999999 (the printer refuses those).
bool AppendProtoJsonTimestamp(const google::protobuf::Timestamp& t,
                              std::string* out);

// A finite double as protobuf's printer writes it (SimpleDtoa: the shortest
// of %.15g and %.17g that reads back the same). False for NaN and infinities.
bool AppendProtoJsonDouble(double value, std::string* out);

// The `request` member of a decision or shadow record: `request` without
// subject_id and request_id, with `as_of` in place of its own.
bool AppendRecordedRequestJson(const stepwise::v1::EvaluateRequest& request,
                               const google::protobuf::Timestamp& as_of,
                               std::string* out);

// The `decision` member: `decision` without audit_seq and trace, and without
// the bundle's own texts in matched_rules (title, rationale, follow_up,
// source) and unevaluated_rules (title, explanation).
bool AppendRecordedDecisionJson(const stepwise::v1::Decision& decision,
                                std::string* out);

// A RulesetRef, as the `ruleset` member of decision and shadow records.
bool AppendRulesetRefJson(const stepwise::v1::RulesetRef& ruleset,
                          std::string* out);

}  // namespace stepwise::service::audit

#endif  // STEPWISE_SERVICE_AUDIT_PROTO_JSON_H_
