#include "service/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"

namespace stepwise::service::metrics {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Whole numbers (counts, most counters) as integers: the shortest form
  // would write a million as "1e+06".
  if (std::fabs(v) < 1e15 && v == std::trunc(v)) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

namespace {
// Help text escapes only backslash and newline.
std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}
}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  // Buckets hold plain (not cumulative) counts so that one observation is one
  // increment; Snapshot sums them.
  const size_t i = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> Histogram::ExponentialBounds(double start, double factor,
                                                 int count) {
  std::vector<double> bounds;
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) bounds.push_back(b);
  return bounds;
}

FamilyBase::FamilyBase(std::string name, std::string help, std::string type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(std::move(type)),
      label_names_(std::move(label_names)) {}

std::string FamilyBase::LabelText(const LabelValues& values,
                                  const std::string& extra) const {
  if (label_names_.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < label_names_.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, label_names_[i], "=\"",
                    EscapeLabelValue(i < values.size() ? values[i] : ""), "\"");
  }
  if (!extra.empty()) {
    if (!label_names_.empty()) out += ",";
    out += extra;
  }
  out += "}";
  return out;
}

void FamilyBase::Header(std::string* out) const {
  absl::StrAppend(out, "# HELP ", name_, " ", EscapeHelp(help_), "\n",
                  "# TYPE ", name_, " ", type_, "\n");
}

template <>
void Family<Counter>::Serialize(std::string* out) const {
  Header(out);
  absl::MutexLock lock(&mu_);
  for (const auto& [values, counter] : children_) {
    absl::StrAppend(out, name_, LabelText(values), " ", counter->value(), "\n");
  }
}

template <>
void Family<Gauge>::Serialize(std::string* out) const {
  Header(out);
  absl::MutexLock lock(&mu_);
  for (const auto& [values, gauge] : children_) {
    absl::StrAppend(out, name_, LabelText(values), " ",
                    FormatValue(gauge->value()), "\n");
  }
}

void FamilyBase::AppendHistogramLines(const LabelValues& values,
                                      const Histogram::Snapshot& s,
                                      std::string* out) const {
  for (size_t i = 0; i <= s.bounds.size(); ++i) {
    const std::string le =
        i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf";
    const uint64_t n = i < s.cumulative.size() ? s.cumulative[i] : s.count;
    absl::StrAppend(out, name_, "_bucket",
                    LabelText(values, absl::StrCat("le=\"", le, "\"")), " ", n,
                    "\n");
  }
  absl::StrAppend(out, name_, "_sum", LabelText(values), " ",
                  FormatValue(s.sum), "\n");
  absl::StrAppend(out, name_, "_count", LabelText(values), " ", s.count, "\n");
}

template <>
void Family<Histogram>::Serialize(std::string* out) const {
  Header(out);
  absl::MutexLock lock(&mu_);
  for (const auto& [values, histogram] : children_) {
    AppendHistogramLines(values, histogram->snapshot(), out);
  }
}

void CallbackFamily::AppendHistogram(const Histogram::Snapshot& s,
                                     std::string* out) const {
  AppendHistogramLines({}, s, out);
}

void Registry::AddCallbackCounter(std::string name, std::string help,
                                  std::function<double()> read) {
  auto family = std::make_unique<CallbackFamily>(
      std::move(name), std::move(help), "counter",
      [read = std::move(read)](const CallbackFamily& f, std::string* out) {
        absl::StrAppend(out, f.name(), " ", FormatValue(read()), "\n");
      });
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
}

void Registry::AddCallbackGauge(std::string name, std::string help,
                                std::function<double()> read) {
  auto family = std::make_unique<CallbackFamily>(
      std::move(name), std::move(help), "gauge",
      [read = std::move(read)](const CallbackFamily& f, std::string* out) {
        absl::StrAppend(out, f.name(), " ", FormatValue(read()), "\n");
      });
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
}

void Registry::AddCallbackHistogram(std::string name, std::string help,
                                    std::function<Histogram::Snapshot()> read) {
  auto family = std::make_unique<CallbackFamily>(
      std::move(name), std::move(help), "histogram",
      [read = std::move(read)](const CallbackFamily& f, std::string* out) {
        f.AppendHistogram(read(), out);
      });
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  auto family = std::make_unique<Family<Counter>>(
      std::move(name), std::move(help), "counter", std::move(label_names));
  Family<Counter>& ref = *family;
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
  return ref;
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  auto family = std::make_unique<Family<Gauge>>(
      std::move(name), std::move(help), "gauge", std::move(label_names));
  Family<Gauge>& ref = *family;
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
  return ref;
}

Family<Histogram>& Registry::AddHistogram(
    std::string name, std::string help, std::vector<double> bounds,
    std::vector<std::string> label_names) {
  auto family = std::make_unique<Family<Histogram>>(
      std::move(name), std::move(help), "histogram", std::move(label_names),
      std::move(bounds));
  Family<Histogram>& ref = *family;
  absl::MutexLock lock(&mu_);
  families_.push_back(std::move(family));
  return ref;
}

std::string Registry::Serialize() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& family : families_) family->Serialize(&out);
  return out;
}

}  // namespace stepwise::service::metrics
