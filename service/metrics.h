// A small Prometheus registry: counters, gauges and fixed-bucket histograms,
// optionally with labels, rendered in the text exposition format 0.0.4.
//
// Why not prometheus-cpp: Debian 12 does not package it, and the service
// needs only these three metric kinds. docs/service.md ("Metrics") says more.
//
// Hot path: Counter, Gauge and Histogram updates are lock-free (relaxed
// atomics). A labelled child is looked up once under its family's mutex and
// then kept by reference; the reference stays valid for the registry's life
// unless Remove() is called for those labels.
//
// Thread-safety: everything may be used from any thread. Lock order:
// Registry::mu_ before Family::mu_ (Serialize only).
#ifndef STEPWISE_SERVICE_METRICS_H_
#define STEPWISE_SERVICE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace stepwise::service::metrics {

class Counter {
 public:
  void Increment(uint64_t n = 1) {
    value_.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, strictly increasing; +Inf is added.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (= count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

  // Common bucket layouts.
  static std::vector<double> ExponentialBounds(double start, double factor,
                                               int count);

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// Label values in the order of the family's label names.
using LabelValues = std::vector<std::string>;

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, std::string type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  // Appends this family's # HELP, # TYPE and samples to `out`.
  virtual void Serialize(std::string* out) const = 0;

 protected:
  // `{a="x",b="y"}`, or "" without labels; `extra` is appended as is.
  std::string LabelText(const LabelValues& values,
                        const std::string& extra = "") const;
  void Header(std::string* out) const;
  void AppendHistogramLines(const LabelValues& values,
                            const Histogram::Snapshot& s,
                            std::string* out) const;

  const std::string name_;
  const std::string help_;
  const std::string type_;
  const std::vector<std::string> label_names_;
};

template <typename M>
class Family final : public FamilyBase {
 public:
  template <typename... Args>
  Family(std::string name, std::string help, std::string type,
         std::vector<std::string> label_names, Args... metric_args)
      : FamilyBase(std::move(name), std::move(help), std::move(type),
                   std::move(label_names)),
        factory_(
            [metric_args...] { return std::make_unique<M>(metric_args...); }) {}

  // The child for `values` (as many as the family has label names), created
  // on first use.
  M& WithLabels(const LabelValues& values) {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<M>& slot = children_[values];
    if (slot == nullptr) slot = factory_();
    return *slot;
  }
  // Drops a child (e.g. the previous ruleset's info gauge). References to it
  // must no longer be used.
  void Remove(const LabelValues& values) {
    absl::MutexLock lock(&mu_);
    children_.erase(values);
  }

  void Serialize(std::string* out) const override;

 private:
  std::function<std::unique_ptr<M>()> factory_;
  mutable absl::Mutex mu_;
  std::map<LabelValues, std::unique_ptr<M>> children_ ABSL_GUARDED_BY(mu_);
};

template <>
void Family<Counter>::Serialize(std::string* out) const;
template <>
void Family<Gauge>::Serialize(std::string* out) const;
template <>
void Family<Histogram>::Serialize(std::string* out) const;

// A metric whose value is read from elsewhere when scraped (e.g. the audit
// log's own statistics), so the owner needs no metrics hooks.
class CallbackFamily final : public FamilyBase {
 public:
  using Collect =
      std::function<void(const CallbackFamily& family, std::string* out)>;
  CallbackFamily(std::string name, std::string help, std::string type,
                 Collect collect)
      : FamilyBase(std::move(name), std::move(help), std::move(type), {}),
        collect_(std::move(collect)) {}
  void Serialize(std::string* out) const override {
    Header(out);
    collect_(*this, out);
  }
  // Sample lines of a histogram snapshot under this family's name.
  void AppendHistogram(const Histogram::Snapshot& s, std::string* out) const;

 private:
  Collect collect_;
};

class Registry {
 public:
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<double> bounds,
                                  std::vector<std::string> label_names = {});

  // Metrics read at scrape time; `read` must be callable from the HTTP
  // thread. A counter's value may be fractional (seconds of CPU, say);
  // whole numbers print without a fraction.
  void AddCallbackCounter(std::string name, std::string help,
                          std::function<double()> read);
  void AddCallbackGauge(std::string name, std::string help,
                        std::function<double()> read);
  void AddCallbackHistogram(std::string name, std::string help,
                            std::function<Histogram::Snapshot()> read);

  // The text exposition format, families in registration order.
  std::string Serialize() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
};

// A double as Prometheus reads it: whole numbers below 1e15 as integers,
// others in their shortest round-trip form, "+Inf", "-Inf", "NaN".
std::string FormatValue(double v);
// A label value with \, " and newline escaped.
std::string EscapeLabelValue(const std::string& v);

}  // namespace stepwise::service::metrics

#endif  // STEPWISE_SERVICE_METRICS_H_
