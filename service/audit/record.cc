#include "service/audit/record.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "service/audit/format.h"
#include "service/audit/json.h"
#include "service/audit/proto_json.h"

namespace stepwise::service::audit {
namespace {

namespace v1 = ::stepwise::v1;
using ::google::protobuf::Message;

absl::StatusOr<std::string> ToJson(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  // Defaults (zeros, empty lists) are left out, as the JSON mapping does by
  // default: they parse back to the same message, and a cleared subject_id
  // does not even appear as a name. proto3 `optional` fields keep presence.
  options.preserve_proto_field_names = true;
  std::string out;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write ", message.GetTypeName(),
                     " as JSON: ", std::string(status.message())));
  }
  return out;
}

absl::Status FromJson(absl::string_view json, Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // later versions may add fields
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message,
      options);
  if (!status.ok()) {
    return absl::DataLossError(absl::StrCat("cannot read ",
                                            message->GetTypeName(), ": ",
                                            std::string(status.message())));
  }
  return absl::OkStatus();
}

bool IsSubjectHash(absl::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The request as recorded: everything a replay needs, nothing that names the
// patient or the caller's transaction.
absl::StatusOr<v1::EvaluateRequest> RecordedRequest(
    const v1::EvaluateRequest& request, const v1::Decision& decision) {
  v1::EvaluateRequest recorded = request;
  recorded.clear_subject_id();
  recorded.clear_request_id();
  if (!recorded.has_as_of()) {
    if (!decision.has_as_of()) {
      return absl::InvalidArgumentError(
          "neither the request nor the decision has as_of; a replay could "
          "not derive the same facts");
    }
    *recorded.mutable_as_of() = decision.as_of();
  }
  return recorded;
}

// The outcome as recorded: the bundle's own texts (title, rationale, ...) are
// fixed by its sha256 and left out; the explanation with the values seen is
// kept.
v1::Decision RecordedDecision(const v1::Decision& decision) {
  v1::Decision recorded = decision;
  recorded.clear_audit_seq();
  recorded.clear_trace();
  for (v1::MatchedRule& rule : *recorded.mutable_matched_rules()) {
    rule.clear_title();
    rule.clear_rationale();
    rule.clear_follow_up();
    rule.clear_source();
  }
  for (v1::UnevaluatedRule& rule : *recorded.mutable_unevaluated_rules()) {
    rule.clear_title();
    rule.clear_explanation();
  }
  return recorded;
}

// The body through protobuf's JSON printer: the reference the direct writer
// (proto_json.h) reproduces, and what it falls back to for the inputs it
// leaves to the printer.
absl::StatusOr<std::string> PrintedEvaluationBody(
    const v1::EvaluateRequest& request, const v1::Decision& decision,
    absl::string_view principal, absl::string_view subject_hash,
    absl::string_view decision_id) {
  absl::StatusOr<v1::EvaluateRequest> recorded =
      RecordedRequest(request, decision);
  if (!recorded.ok()) return recorded.status();
  absl::StatusOr<std::string> request_json = ToJson(*recorded);
  if (!request_json.ok()) return request_json.status();
  absl::StatusOr<std::string> ruleset_json = ToJson(decision.ruleset());
  if (!ruleset_json.ok()) return ruleset_json.status();
  absl::StatusOr<std::string> decision_json =
      ToJson(RecordedDecision(decision));
  if (!decision_json.ok()) return decision_json.status();
  return absl::StrCat(
      "{\"decision_id\":", JsonQuote(decision_id),
      ",\"principal\":", JsonQuote(principal),
      ",\"subject\":", JsonQuote(subject_hash), ",\"request\":", *request_json,
      ",\"ruleset\":", *ruleset_json, ",\"decision\":", *decision_json, "}");
}

// A decision record body is about 1.5 KB; one allocation covers most.
constexpr size_t kBodyReserve = 2048;

absl::StatusOr<std::string> EvaluationBody(const v1::EvaluateRequest& request,
                                           const v1::Decision& decision,
                                           absl::string_view principal,
                                           absl::string_view subject_hash,
                                           absl::string_view decision_id) {
  if (!IsSubjectHash(subject_hash)) {
    return absl::InvalidArgumentError(
        "subject must be the subject's keyed hash (64 lowercase hex digits), "
        "never the subject_id");
  }
  const google::protobuf::Timestamp* as_of =
      request.has_as_of()    ? &request.as_of()
      : decision.has_as_of() ? &decision.as_of()
                             : nullptr;
  if (as_of == nullptr) {
    return absl::InvalidArgumentError(
        "neither the request nor the decision has as_of; a replay could "
        "not derive the same facts");
  }
  std::string body;
  body.reserve(kBodyReserve);
  body.append("{\"decision_id\":");
  AppendJsonQuoted(decision_id, &body);
  body.append(",\"principal\":");
  AppendJsonQuoted(principal, &body);
  body.append(",\"subject\":\"");
  body.append(subject_hash.data(), subject_hash.size());
  body.append("\",\"request\":");
  if (!AppendRecordedRequestJson(request, *as_of, &body)) {
    return PrintedEvaluationBody(request, decision, principal, subject_hash,
                                 decision_id);
  }
  body.append(",\"ruleset\":");
  if (!AppendRulesetRefJson(decision.ruleset(), &body)) {
    return PrintedEvaluationBody(request, decision, principal, subject_hash,
                                 decision_id);
  }
  body.append(",\"decision\":");
  if (!AppendRecordedDecisionJson(decision, &body)) {
    return PrintedEvaluationBody(request, decision, principal, subject_hash,
                                 decision_id);
  }
  body.push_back('}');
  return body;
}

}  // namespace

absl::StatusOr<std::string> DecisionRecordBody(
    const v1::EvaluateRequest& request, const v1::Decision& decision,
    absl::string_view principal, absl::string_view subject_hash) {
  if (decision.decision_id().empty()) {
    return absl::InvalidArgumentError("the decision has no decision_id");
  }
  return EvaluationBody(request, decision, principal, subject_hash,
                        decision.decision_id());
}

absl::StatusOr<std::string> ShadowRecordBody(const v1::EvaluateRequest& request,
                                             const v1::Decision& candidate,
                                             absl::string_view principal,
                                             absl::string_view subject_hash,
                                             absl::string_view decision_id) {
  return EvaluationBody(request, candidate, principal, subject_hash,
                        decision_id);
}

absl::StatusOr<std::string> ActivationRecordBody(
    const v1::RulesetInfo& activated, absl::string_view previous_sha256,
    absl::string_view principal) {
  v1::RulesetInfo recorded = activated;
  recorded.clear_rules();
  absl::StatusOr<std::string> ruleset_json = ToJson(recorded);
  if (!ruleset_json.ok()) return ruleset_json.status();
  return absl::StrCat("{\"principal\":", JsonQuote(principal),
                      ",\"ruleset\":", *ruleset_json,
                      ",\"previous_sha256\":", JsonQuote(previous_sha256), "}");
}

// Makes RecordBody (its constructor is private to keep bodies that were not
// built here out of AuditLog::AppendBody).
class RecordBodies {
 public:
  static absl::StatusOr<RecordBody> Make(absl::string_view kind,
                                         absl::StatusOr<std::string> json) {
    if (!json.ok()) return json.status();
    return RecordBody(kind, *std::move(json));
  }
};

absl::StatusOr<RecordBody> DecisionRecord(const v1::EvaluateRequest& request,
                                          const v1::Decision& decision,
                                          absl::string_view principal,
                                          absl::string_view subject_hash) {
  return RecordBodies::Make(
      kKindDecision,
      DecisionRecordBody(request, decision, principal, subject_hash));
}

absl::StatusOr<RecordBody> ShadowRecord(const v1::EvaluateRequest& request,
                                        const v1::Decision& candidate,
                                        absl::string_view principal,
                                        absl::string_view subject_hash,
                                        absl::string_view decision_id) {
  return RecordBodies::Make(
      kKindShadow, ShadowRecordBody(request, candidate, principal, subject_hash,
                                    decision_id));
}

absl::StatusOr<RecordBody> ActivationRecord(const v1::RulesetInfo& activated,
                                            absl::string_view previous_sha256,
                                            absl::string_view principal) {
  return RecordBodies::Make(
      kKindActivation,
      ActivationRecordBody(activated, previous_sha256, principal));
}

absl::StatusOr<ParsedRecord> ParseRecord(absl::string_view line) {
  absl::StatusOr<RecordLineFields> fields = CheckRecordLine(line);
  if (!fields.ok()) return fields.status();
  absl::StatusOr<std::vector<JsonMember>> members = SplitJsonObject(line);
  if (!members.ok()) return members.status();

  ParsedRecord record;
  record.seq = fields->seq;
  record.prev_hash = std::string(fields->prev_hash);
  record.hash = std::string(fields->hash);
  record.json = std::string(line);
  for (const JsonMember& member : *members) {
    const auto string_member = [&](std::string* out) -> absl::Status {
      absl::StatusOr<std::string> value = JsonUnquote(member.value);
      if (!value.ok()) {
        return absl::DataLossError(
            absl::StrCat("member \"", member.name, "\" is not a string"));
      }
      *out = *std::move(value);
      return absl::OkStatus();
    };
    absl::Status status;
    if (member.name == "kind") {
      status = string_member(&record.kind);
    } else if (member.name == "time") {
      std::string time;
      status = string_member(&time);
      std::string error;
      if (status.ok() &&
          !absl::ParseTime(absl::RFC3339_full, time, &record.time, &error)) {
        status = absl::DataLossError(absl::StrCat("time: ", error));
      }
    } else if (member.name == "decision_id") {
      status = string_member(&record.decision_id);
    } else if (member.name == "principal") {
      status = string_member(&record.principal);
    } else if (member.name == "subject") {
      status = string_member(&record.subject);
    } else if (member.name == "previous_sha256") {
      status = string_member(&record.previous_sha256);
    } else if (member.name == "request") {
      status = FromJson(member.value, &record.request);
    } else if (member.name == "decision") {
      status = FromJson(member.value, &record.decision);
    } else if (member.name == "ruleset") {
      // A RulesetRef, or (activation records) a RulesetInfo, whose name,
      // version and sha256 are the same fields.
      status = FromJson(member.value, &record.ruleset);
    }
    if (!status.ok()) return status;
  }
  return record;
}

}  // namespace stepwise::service::audit
