#include "tests/engine/test_bundle.h"

#include "engine/diagnostic.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace stepwise::engine::testing {

std::string TestData(const std::string& name) {
  return std::string(STEPWISE_TEST_DATA_DIR) + "/" + name;
}

BundleFiles BaseFiles() {
  absl::StatusOr<BundleFiles> files = ReadBundleFiles(TestData("base"));
  EXPECT_TRUE(files.ok()) << files.status();
  return files.ok() ? *files : BundleFiles{};
}

BundleFiles WithFiles(const std::map<std::string, std::string>& overrides) {
  BundleFiles files = BaseFiles();
  for (const auto& [path, content] : overrides) {
    if (content == "(deleted)") {
      files.erase(path);
    } else {
      files[path] = content;
    }
  }
  return files;
}

std::shared_ptr<const Bundle> MustLoad(const BundleFiles& files) {
  LoadResult result = CompileBundle(files);
  EXPECT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics);
  return result.bundle;
}

std::shared_ptr<const Bundle> MustLoadRuleset(const std::string& ruleset) {
  return MustLoad(WithFiles({{"ruleset.yaml", ruleset}}));
}

v1::EvaluateRequest Request(const std::string& json) {
  v1::EvaluateRequest request;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &request);
  EXPECT_TRUE(status.ok()) << status.message() << "\n" << json;
  return request;
}

}  // namespace stepwise::engine::testing
