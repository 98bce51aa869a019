#include "service/metrics.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http_get.h"
#include "service/metrics_http.h"

namespace stepwise::service::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, CountersAndGaugesInTextFormat) {
  Registry registry;
  auto& decisions =
      registry.AddCounter("test_decisions_total", "Decisions.", {"action"});
  decisions.WithLabels({"STAY"}).Increment();
  decisions.WithLabels({"STAY"}).Increment(2);
  decisions.WithLabels({"REFER"}).Increment();
  registry.AddGauge("test_temperature", "A gauge.").WithLabels({}).Set(-1.5);
  EXPECT_EQ(registry.Serialize(),
            "# HELP test_decisions_total Decisions.\n"
            "# TYPE test_decisions_total counter\n"
            "test_decisions_total{action=\"REFER\"} 1\n"
            "test_decisions_total{action=\"STAY\"} 3\n"
            "# HELP test_temperature A gauge.\n"
            "# TYPE test_temperature gauge\n"
            "test_temperature -1.5\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry registry;
  Histogram& h = registry.AddHistogram("test_seconds", "Latency.", {0.1, 1, 10})
                     .WithLabels({});
  for (double v : {0.05, 0.1, 0.5, 5.0, 50.0}) h.Observe(v);
  EXPECT_EQ(registry.Serialize(),
            "# HELP test_seconds Latency.\n"
            "# TYPE test_seconds histogram\n"
            "test_seconds_bucket{le=\"0.1\"} 2\n"
            "test_seconds_bucket{le=\"1\"} 3\n"
            "test_seconds_bucket{le=\"10\"} 4\n"
            "test_seconds_bucket{le=\"+Inf\"} 5\n"
            "test_seconds_sum 55.65\n"
            "test_seconds_count 5\n");
}

TEST(MetricsTest, LabelledHistogramAndRemove) {
  Registry registry;
  auto& family = registry.AddHistogram("test_h", "H.", {1}, {"method"});
  family.WithLabels({"Evaluate"}).Observe(0.5);
  EXPECT_THAT(registry.Serialize(),
              HasSubstr("test_h_bucket{method=\"Evaluate\",le=\"1\"} 1\n"));
  EXPECT_THAT(registry.Serialize(),
              HasSubstr("test_h_count{method=\"Evaluate\"} 1\n"));
  family.Remove({"Evaluate"});
  EXPECT_EQ(registry.Serialize(),
            "# HELP test_h H.\n# TYPE test_h histogram\n");
}

TEST(MetricsTest, CallbackMetricsAreReadAtScrape) {
  Registry registry;
  uint64_t records = 3;
  registry.AddCallbackCounter("test_records_total", "R.",
                              [&] { return records; });
  registry.AddCallbackCounter("test_cpu_seconds_total", "C.",
                              [] { return 0.25; });
  registry.AddCallbackHistogram("test_batch", "B.", [] {
    Histogram::Snapshot s;
    s.bounds = {1, 2};
    s.cumulative = {4, 6, 7};
    s.count = 7;
    s.sum = 11;
    return s;
  });
  records = 5;
  EXPECT_EQ(registry.Serialize(),
            "# HELP test_records_total R.\n"
            "# TYPE test_records_total counter\n"
            "test_records_total 5\n"
            "# HELP test_cpu_seconds_total C.\n"
            "# TYPE test_cpu_seconds_total counter\n"
            "test_cpu_seconds_total 0.25\n"
            "# HELP test_batch B.\n"
            "# TYPE test_batch histogram\n"
            "test_batch_bucket{le=\"1\"} 4\n"
            "test_batch_bucket{le=\"2\"} 6\n"
            "test_batch_bucket{le=\"+Inf\"} 7\n"
            "test_batch_sum 11\n"
            "test_batch_count 7\n");
}

TEST(MetricsTest, EscapingAndNumbers) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(1e6), "1000000");
  EXPECT_EQ(FormatValue(-250000), "-250000");
  EXPECT_EQ(FormatValue(1e15), "1e+15");
  EXPECT_EQ(FormatValue(2.5e6), "2500000");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1e-6), "1e-06");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  Registry registry;
  registry.AddGauge("test_info", "Help with \\ and\nnewline.", {"v"})
      .WithLabels({"x\"y"})
      .Set(1);
  EXPECT_EQ(registry.Serialize(),
            "# HELP test_info Help with \\\\ and\\nnewline.\n"
            "# TYPE test_info gauge\n"
            "test_info{v=\"x\\\"y\"} 1\n");
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  Registry registry;
  Counter& c = registry.AddCounter("test_c", "C.").WithLabels({});
  Histogram& h = registry.AddHistogram("test_h", "H.", {1}).WithLabels({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Increment();
        h.Observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_DOUBLE_EQ(s.sum, 20000);
}

TEST(MetricsHttpTest, ServesMetricsAndNothingElse) {
  Registry registry;
  registry.AddCounter("test_scraped_total", "S.").WithLabels({}).Increment();
  auto server = MetricsHttpServer::Start("127.0.0.1", 0, &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  const std::string ok =
      stepwise::testing::HttpGet((*server)->port(), "/metrics");
  EXPECT_THAT(ok, HasSubstr(" 200 OK\r\n"));
  EXPECT_THAT(ok, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(ok, HasSubstr("\r\n\r\n# HELP test_scraped_total S.\n"));
  EXPECT_THAT(ok, HasSubstr("test_scraped_total 1\n"));
  EXPECT_THAT(stepwise::testing::HttpGet((*server)->port(), "/"),
              HasSubstr("404"));

  // The port is taken: a second server fails with a clear status.
  auto second =
      MetricsHttpServer::Start("127.0.0.1", (*server)->port(), &registry);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("port in use"));

  (*server)->Stop();
  EXPECT_EQ(stepwise::testing::HttpGet((*server)->port(), "/metrics"), "");
}

TEST(MetricsHttpTest, RejectsANonIpAddress) {
  Registry registry;
  auto server = MetricsHttpServer::Start("localhost", 0, &registry);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace stepwise::service::metrics
