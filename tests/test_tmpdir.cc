// Linked into every test binary (tests/CMakeLists.txt, stepwise_gtest): a
// binary run by hand rather than by CTest keeps its scratch files in the
// build tree too, not in the machine's /tmp. gtest's TempDir() reads
// TEST_TMPDIR when it is called; one set by the caller (CTest, a developer)
// wins.
#include <stdlib.h>

namespace {

const bool kTestTmpDirSet = [] {
  setenv("TEST_TMPDIR", STEPWISE_TEST_TMPDIR, /*overwrite=*/0);
  return true;
}();

}  // namespace
