// Golden tests for the loader's diagnostics: each testdata/lint/NAME.bundle
// holds files that override the base test bundle ("=== path" starts a file;
// a body of "(deleted)" removes it), and NAME.expected the exact diagnostics.
// Set STEPWISE_UPDATE_GOLDENS=1 to rewrite the .expected files after a
// deliberate change in wording, then review the diff.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "engine/bundle.h"
#include "gtest/gtest.h"
#include "tests/engine/test_bundle.h"

namespace stepwise::engine {
namespace {

using testing::TestData;
using testing::WithFiles;

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::map<std::string, std::string> ParseSections(const std::string& text) {
  std::map<std::string, std::string> sections;
  std::string* current = nullptr;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "=== ")) {
      current = &sections[std::string(line.substr(4))];
      continue;
    }
    if (current != nullptr) {
      current->append(line.data(), line.size());
      current->push_back('\n');
    }
  }
  for (auto& [path, body] : sections) {
    if (body == "(deleted)\n") body = "(deleted)";
  }
  return sections;
}

class LintGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LintGoldenTest, DiagnosticsMatch) {
  const std::filesystem::path dir = TestData("lint");
  const std::string name = GetParam();
  const BundleFiles files = WithFiles(ParseSections(Slurp(dir / (name + ".bundle"))));
  const LoadResult result = CompileBundle(files);
  ASSERT_FALSE(result.ok()) << name << " should not load";
  const std::string actual = FormatDiagnostics(result.diagnostics);
  const std::filesystem::path expected_path = dir / (name + ".expected");
  if (const char* update = std::getenv("STEPWISE_UPDATE_GOLDENS"); update && *update == '1') {
    std::ofstream(expected_path, std::ios::binary) << actual;
  }
  EXPECT_EQ(actual, Slurp(expected_path)) << "golden: " << expected_path;
}

std::vector<std::string> Cases() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(TestData("lint"))) {
    if (entry.path().extension() == ".bundle") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Lint, LintGoldenTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param; });

TEST(LintTest, BaseBundleLoadsWithAHashOverItsFiles) {
  LoadResult result = CompileBundle(testing::BaseFiles());
  ASSERT_TRUE(result.ok()) << FormatDiagnostics(result.diagnostics);
  EXPECT_EQ(result.bundle->name(), "test-rules");
  EXPECT_EQ(result.bundle->sha256().size(), 64u);
  EXPECT_EQ(result.bundle->sha256(), BundleSha256(result.bundle->files()));

  // One changed byte anywhere changes the hash.
  BundleFiles changed = testing::BaseFiles();
  changed["ruleset.yaml"] += "\n";
  EXPECT_NE(BundleSha256(changed), result.bundle->sha256());
  // So does moving bytes between a path and its content.
  EXPECT_NE(BundleSha256({{"a", "bc"}}), BundleSha256({{"ab", "c"}}));
}

TEST(LintTest, HashIsTheDocumentedConstruction) {
  // Computed outside the engine (sha256sum) over: path, 0x00, length as 8
  // bytes big-endian, content; files in sorted path order.
  EXPECT_EQ(BundleSha256({{"a", "b"}}),
            "ab3dd935e62c212e7c5af37eaf5393cd2f9e6b22a368c039c773d41f633af49d");
  EXPECT_EQ(BundleSha256({{"c", "xy"}, {"a", "b"}}),
            "ea6047a47131c6f06c0abb3b607af5cad7a6ffd3575d01d09bfed9e07e004dd7");
}

TEST(LintTest, MissingFolderIsNotFound) {
  absl::StatusOr<LoadResult> result = LoadBundle(TestData("no-such-bundle"));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace stepwise::engine
