#include "service/decision_service.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "google/protobuf/util/time_util.h"
#include "service/audit/format.h"
#include "service/audit/record.h"
#include "service/status_mapping.h"

namespace stepwise::service {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kEvaluate = kEvaluateMethod;
constexpr const char* kGetRuleset = kGetRulesetMethod;

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t nanos = absl::ToUnixNanos(t);
  ts.set_seconds(nanos / 1000000000);
  ts.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  if (ts.nanos() < 0) {
    ts.set_seconds(ts.seconds() - 1);
    ts.set_nanos(ts.nanos() + 1000000000);
  }
  return ts;
}

}  // namespace

namespace {

// Who is calling `method`, if they may. Fails closed when the service was
// built without an authorizer.
absl::StatusOr<auth::Principal> CallerOf(
    const auth::Authorizer* authorizer,
    const grpc::CallbackServerContext& context, const char* method) {
  if (authorizer == nullptr) {
    return absl::InternalError("the server has no authorizer");
  }
  return authorizer->Authorize(context, method);
}

}  // namespace

// One call's reactor: finishes exactly once, counts the call in the metrics,
// deletes itself when gRPC is done with it.
class DecisionService::Call final : public grpc::ServerUnaryReactor {
 public:
  Call(DecisionService* service, const char* method)
      : service_(service), method_(method), start_(Clock::now()) {}

  // This call holds one of the max_inflight slots until it finishes.
  void MarkAdmitted() { admitted_ = true; }

  void Respond(const absl::Status& status) {
    const grpc::Status grpc_status = ToGrpcStatus(status);
    ServiceMetrics& m = *service_->deps_.metrics;
    m.rpc(method_, grpc_status.error_code()).Increment();
    const std::chrono::duration<double> took = Clock::now() - start_;
    m.rpc_duration(method_).Observe(took.count());
    if (admitted_) {
      service_->inflight_.fetch_sub(1, std::memory_order_relaxed);
      m.inflight.Add(-1);
    }
    Finish(grpc_status);
  }

  void OnDone() override { delete this; }

  // OnDone only deletes the reactor and OnCancel is gRPC's no-op, so gRPC
  // may run them on the thread that completes the call instead of
  // scheduling them on its executor: without this, every answer costs a
  // thread hop (and the executor re-arms the server for the next call).
  // gRPC marks this hook "not API"; it is what its own default reactor
  // uses, and `override` makes a gRPC without it fail to compile rather
  // than silently lose it.
  bool InternalInlineable() override { return true; }

 private:
  DecisionService* const service_;
  const char* const method_;
  const Clock::time_point start_;
  bool admitted_ = false;
};

// Evaluate's request and Decision live on a protobuf arena that starts with
// a block of its own: parsing the request and building the answer take
// their messages from it, and when gRPC is done with the call the arena is
// reset (its first block kept) and goes back to a pool for the next call,
// so a call's messages cost no malloc and no free of their own. (Strings
// longer than the small-string buffer still come from the heap with
// protobuf 3.21.) Thread-safe: gRPC allocates and releases on any thread.
class DecisionService::CallArenas final
    : public grpc::MessageAllocator<v1::EvaluateRequest, v1::Decision> {
 public:
  ~CallArenas() override {
    for (Holder* holder : free_) delete holder;
  }

  grpc::MessageHolder<v1::EvaluateRequest, v1::Decision>* AllocateMessages()
      override {
    Holder* holder = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        holder = free_.back();
        free_.pop_back();
      }
    }
    if (holder == nullptr) holder = new Holder(this);
    holder->Start();
    return holder;
  }

 private:
  // Enough for the request and the Decision of a typical call.
  static constexpr size_t kBlockBytes = 16 << 10;
  // Arenas kept for reuse; more than this many calls at once allocate anew.
  static constexpr size_t kMaxPooled = 1024;

  class Holder final
      : public grpc::MessageHolder<v1::EvaluateRequest, v1::Decision> {
   public:
    explicit Holder(CallArenas* owner)
        : owner_(owner), block_(new char[kBlockBytes]), arena_([this] {
            google::protobuf::ArenaOptions options;
            options.initial_block = block_.get();
            options.initial_block_size = kBlockBytes;
            options.start_block_size = kBlockBytes;
            return options;
          }()) {}

    void Start() {
      set_request(
          google::protobuf::Arena::CreateMessage<v1::EvaluateRequest>(&arena_));
      set_response(
          google::protobuf::Arena::CreateMessage<v1::Decision>(&arena_));
    }

    void Release() override {
      arena_.Reset();
      owner_->Recycle(this);
    }

   private:
    CallArenas* const owner_;
    const std::unique_ptr<char[]> block_;
    google::protobuf::Arena arena_;
  };

  void Recycle(Holder* holder) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_.size() < kMaxPooled) {
        free_.push_back(holder);
        return;
      }
    }
    delete holder;
  }

  std::mutex mu_;
  std::vector<Holder*> free_;
};

DecisionService::DecisionService(DecisionServiceDeps deps)
    : deps_(std::move(deps)), arenas_(std::make_unique<CallArenas>()) {
  if (!deps_.clock) deps_.clock = [] { return absl::Now(); };
  SetMessageAllocatorFor_Evaluate(arenas_.get());
}

DecisionService::~DecisionService() = default;

v1::RulesetInfo DecisionService::Describe(const engine::Bundle& bundle,
                                          absl::Time loaded_at) {
  v1::RulesetInfo info;
  info.set_name(bundle.name());
  info.set_version(bundle.version());
  info.set_sha256(bundle.sha256());
  for (const engine::RuleSummary& rule : bundle.rules()) {
    v1::RuleInfo* r = info.add_rules();
    r->set_rule_id(rule.id);
    r->set_title(rule.title);
    r->set_action(rule.action);
  }
  *info.mutable_loaded_at() = ToProto(loaded_at);
  info.set_approved_by(bundle.approved_by());
  if (bundle.effective_from().has_value()) {
    *info.mutable_effective_from() = ToProto(*bundle.effective_from());
  }
  return info;
}

grpc::ServerUnaryReactor* DecisionService::GetRuleset(
    grpc::CallbackServerContext* context, const v1::GetRulesetRequest* request,
    v1::RulesetInfo* response) {
  auto* call = new Call(this, kGetRuleset);
  absl::StatusOr<auth::Principal> caller =
      CallerOf(deps_.authorizer, *context, auth::kGetRulesetMethod);
  if (!caller.ok()) {
    call->Respond(caller.status());
    return call;
  }
  std::shared_ptr<const ActiveBundle::Snapshot> active = deps_.bundle->Get();
  if (active == nullptr) {
    call->Respond(absl::UnavailableError("no ruleset is active"));
    return call;
  }
  *response = Describe(*active->bundle, active->loaded_at);
  call->Respond(absl::OkStatus());
  return call;
}

grpc::ServerUnaryReactor* DecisionService::Evaluate(
    grpc::CallbackServerContext* context, const v1::EvaluateRequest* request,
    v1::Decision* response) {
  const absl::Time received_at = deps_.clock();
  auto* call = new Call(this, kEvaluate);

  // Who is calling, first: a caller who may not evaluate learns nothing
  // about the server's state.
  absl::StatusOr<auth::Principal> caller =
      CallerOf(deps_.authorizer, *context, auth::kEvaluateMethod);
  if (!caller.ok()) {
    call->Respond(caller.status());
    return call;
  }

  // Cheap refusals first: a call that cannot be answered costs nothing more.
  if (context->IsCancelled()) {
    call->Respond(absl::CancelledError("the call was cancelled"));
    return call;
  }
  if (!accepting_.load()) {
    call->Respond(absl::UnavailableError(
        "the server is shutting down; retry on another instance"));
    return call;
  }
  if (!deps_.audit->healthy()) {
    call->Respond(absl::UnavailableError(
        "the audit log cannot be written, so no recommendation can be made"));
    return call;
  }
  if (inflight_.fetch_add(1, std::memory_order_relaxed) >= deps_.max_inflight) {
    inflight_.fetch_sub(1, std::memory_order_relaxed);
    call->Respond(absl::ResourceExhaustedError(
        absl::StrCat("more than ", deps_.max_inflight,
                     " evaluations in flight; retry with backoff")));
    return call;
  }
  call->MarkAdmitted();
  deps_.metrics->inflight.Add(1);

  const std::string& principal = caller->name;
  std::string key;
  if (deps_.idempotency != nullptr && !request->request_id().empty()) {
    key = IdempotencyCache::Key(principal, request->request_id());
    IdempotencyCache::AdmitResult admitted = deps_.idempotency->Admit(
        key, IdempotencyCache::Fingerprint(*request), received_at,
        [call, request, response](absl::StatusOr<FirstAnswer> first) {
          // On the audit writer thread, for the rare concurrent duplicate.
          call->Respond(first.ok() ? AnswerAgain(*first, *request, response)
                                   : first.status());
        });
    switch (admitted.admission) {
      case IdempotencyCache::Admission::kOwner:
        break;
      case IdempotencyCache::Admission::kReplay:
        deps_.metrics->idempotent_replays.Increment();
        call->Respond(AnswerAgain(admitted.first, *request, response));
        return call;
      case IdempotencyCache::Admission::kWaiting:
        deps_.metrics->idempotent_replays.Increment();
        return call;  // the owner's outcome finishes this call
      case IdempotencyCache::Admission::kConflict:
        call->Respond(absl::AlreadyExistsError(absl::StrCat(
            "request_id '", request->request_id(),
            "' was already used for a request with different content")));
        return call;
    }
  }
  EvaluateAdmitted(call, *context, *request, response, received_at, principal,
                   key);
  return call;
}

void DecisionService::EvaluateAdmitted(
    Call* call, const grpc::CallbackServerContext& context,
    const v1::EvaluateRequest& request, v1::Decision* response,
    absl::Time received_at, const std::string& principal,
    const std::string& key) {
  IdempotencyCache* idempotency = key.empty() ? nullptr : deps_.idempotency;
  auto fail = [&](const absl::Status& status) {
    if (idempotency != nullptr) idempotency->Fail(key, status);
    call->Respond(status);
  };

  std::shared_ptr<const ActiveBundle::Snapshot> active = deps_.bundle->Get();
  if (active == nullptr) {
    fail(absl::UnavailableError("no ruleset is active"));
    return;
  }

  // Straight into the answer, which lives on the call's arena.
  const Clock::time_point eval_start = Clock::now();
  const std::vector<engine::FieldViolation> violations =
      engine::EvaluateInto(*active->bundle, request, received_at, {}, response);
  const std::chrono::duration<double> eval_took = Clock::now() - eval_start;
  deps_.metrics->evaluation_seconds.Observe(eval_took.count());
  if (!violations.empty()) {
    fail(BadRequestStatus(violations));
    return;
  }

  v1::Decision& decision = *response;
  FirstAnswer first;
  if (idempotency != nullptr) {
    first.bundle = active->bundle;
    first.received_at = received_at;
  }
  first.decision_id = deps_.ids->Next();
  first.evaluated_at = deps_.clock();
  Stamp(request, received_at, first, &decision);

  if (context.IsCancelled()) {
    response->Clear();
    // Gone before anything was recorded: skip the record and the fdatasync.
    // A duplicate parked on this call retries rather than inherit the
    // cancellation.
    if (idempotency != nullptr) {
      idempotency->Fail(
          key, absl::AbortedError("a concurrent call with the same request_id "
                                  "was cancelled before its decision was "
                                  "recorded; retry"));
    }
    call->Respond(absl::CancelledError("the call was cancelled"));
    return;
  }

  const std::string subject_hash =
      deps_.subject_key->Hash(request.subject_id());
  // A body from record.h's builder: the audit log appends it without
  // checking it again (about 5 µs a call).
  absl::StatusOr<audit::RecordBody> body =
      audit::DecisionRecord(request, decision, principal, subject_hash);
  if (!body.ok()) {
    response->Clear();
    fail(absl::InternalError(absl::StrCat("cannot build the audit record: ",
                                          body.status().message())));
    return;
  }
  // Built now: `request` is gone once the decision's callback has answered.
  std::string shadow_body;
  if (deps_.shadow != nullptr) {
    shadow_body =
        ShadowRecord(request, decision, principal, subject_hash, received_at);
  }

  const v1::Action action = response->action();

  deps_.audit->AppendBody(
      *std::move(body),
      [this, call, response, action, key, idempotency,
       first = std::move(first)](absl::Status status, uint64_t seq) mutable {
        // On the audit writer thread: keep it short.
        if (!status.ok()) {
          response->Clear();
          // UNAVAILABLE: the log failed closed. Anything else means the
          // record itself was refused — our bug, not the disk's.
          const bool log_failed =
              status.code() == absl::StatusCode::kUnavailable;
          if (log_failed && deps_.on_audit_failure) {
            deps_.on_audit_failure(status);
          }
          const absl::Status answer =
              log_failed ? absl::UnavailableError(absl::StrCat(
                               "the audit record could not be written, so no "
                               "recommendation was made: ",
                               status.message()))
                         : absl::InternalError(absl::StrCat(
                               "the audit log refused the record: ",
                               status.message()));
          if (idempotency != nullptr) idempotency->Fail(key, answer);
          call->Respond(answer);
          return;
        }
        response->set_audit_seq(seq);
        deps_.metrics->decision(action).Increment();
        if (idempotency != nullptr) {
          first.audit_seq = seq;
          idempotency->Complete(key, std::move(first), deps_.clock());
        }
        call->Respond(absl::OkStatus());
      });
  if (!shadow_body.empty()) {
    // After the decision's record, so a shadow record always follows the
    // decision it accompanies.
    deps_.audit->Append(std::string(audit::kKindShadow), std::move(shadow_body),
                        [this](absl::Status status, uint64_t) {
                          if (!status.ok()) {
                            deps_.metrics->shadow_error.Increment();
                          }
                        });
  }
}

void DecisionService::Stamp(const v1::EvaluateRequest& request,
                            absl::Time received_at, const FirstAnswer& answer,
                            v1::Decision* decision) {
  decision->set_decision_id(answer.decision_id);
  *decision->mutable_evaluated_at() = ToProto(answer.evaluated_at);
  if (!decision->has_as_of()) {
    // The engine echoes the as_of it used; keep the record replayable even
    // if it did not.
    *decision->mutable_as_of() =
        request.has_as_of() ? request.as_of() : ToProto(received_at);
  }
}

absl::Status DecisionService::AnswerAgain(const FirstAnswer& first,
                                          const v1::EvaluateRequest& request,
                                          v1::Decision* response) {
  // The same request (its fingerprint matched), the same bundle, the same
  // time: the same decision, byte for byte.
  response->Clear();
  if (first.bundle == nullptr ||
      !engine::EvaluateInto(*first.bundle, request, first.received_at, {},
                            response)
           .empty()) {
    response->Clear();
    return absl::InternalError(
        "the first answer to this request_id cannot be rebuilt");
  }
  Stamp(request, first.received_at, first, response);
  response->set_audit_seq(first.audit_seq);
  return absl::OkStatus();
}

std::string DecisionService::ShadowRecord(const v1::EvaluateRequest& request,
                                          const v1::Decision& decision,
                                          const std::string& principal,
                                          const std::string& subject_hash,
                                          absl::Time received_at) {
  const engine::Bundle& shadow = *deps_.shadow;
  ServiceMetrics& m = *deps_.metrics;
  // The cheap outcome first; the full decision (explanations) only for the
  // record of a difference.
  const engine::Outcome outcome =
      engine::EvaluateOutcome(shadow, request, received_at);
  v1::Decision candidate;
  if (!outcome.ok()) {
    m.shadow_rejected.Increment();
    *candidate.mutable_ruleset() = shadow.ref();
    for (const engine::FieldViolation& v : outcome.violations) {
      candidate.add_warnings(
          absl::StrCat("rejected: ", v.field, ": ", v.description));
    }
  } else {
    std::vector<std::string> matched;
    for (uint32_t i : outcome.matched) matched.push_back(shadow.rules()[i].id);
    std::vector<std::string> answered;
    for (const v1::MatchedRule& r : decision.matched_rules()) {
      answered.push_back(r.rule_id());
    }
    std::sort(matched.begin(), matched.end());
    std::sort(answered.begin(), answered.end());
    const std::vector<std::string> refer_to(decision.refer_to().begin(),
                                            decision.refer_to().end());
    if (outcome.action == decision.action() &&
        outcome.recommended_step == decision.recommended_step() &&
        outcome.refer_to == refer_to && matched == answered) {
      m.shadow_same.Increment();
      return "";
    }
    m.shadow_differs.Increment();
    candidate = engine::Evaluate(shadow, request, received_at).decision;
  }
  candidate.set_decision_id(decision.decision_id());
  *candidate.mutable_evaluated_at() = decision.evaluated_at();
  if (!candidate.has_as_of()) *candidate.mutable_as_of() = decision.as_of();
  absl::StatusOr<std::string> body = audit::ShadowRecordBody(
      request, candidate, principal, subject_hash, decision.decision_id());
  if (!body.ok()) {
    m.shadow_error.Increment();
    return "";
  }
  return *std::move(body);
}

}  // namespace stepwise::service
