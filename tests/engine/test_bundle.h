// Test support: the small test bundle under tests/engine/testdata/base, with
// files overridden or removed per test, and requests built from JSON.
#ifndef STEPWISE_TESTS_ENGINE_TEST_BUNDLE_H_
#define STEPWISE_TESTS_ENGINE_TEST_BUNDLE_H_

#include <map>
#include <memory>
#include <string>

#include "engine/bundle.h"
#include "stepwise/v1/decision.pb.h"

namespace stepwise::engine::testing {

// The base test bundle's files.
BundleFiles BaseFiles();

// Base files with `overrides` applied: a path mapped to "(deleted)" removes
// the file; any other content replaces or adds it.
BundleFiles WithFiles(const std::map<std::string, std::string>& overrides);

// Compiles `files`; fails the test (and returns null) if they do not load.
std::shared_ptr<const Bundle> MustLoad(const BundleFiles& files);

// Base bundle with `ruleset` as its ruleset.yaml.
std::shared_ptr<const Bundle> MustLoadRuleset(const std::string& ruleset);

// Parses an EvaluateRequest from JSON; fails the test on a parse error.
v1::EvaluateRequest Request(const std::string& json);

// Folder of a test data set, e.g. TestData("lint").
std::string TestData(const std::string& name);

}  // namespace stepwise::engine::testing

#endif  // STEPWISE_TESTS_ENGINE_TEST_BUNDLE_H_
