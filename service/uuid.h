// Decision ids: UUIDv7 (RFC 9562) — 48 bits of Unix milliseconds, then random
// bits — so ids sort by time and an auditor can tell when a decision was made
// from its id alone.
//
// Within one millisecond the 12-bit rand_a field is a counter started at a
// random value (RFC 9562 §6.2 method 1), so the ids one generator returns are
// strictly increasing even when the clock stands still or steps back.
//
// The clock and the random source are injected: tests get the same ids for
// the same seed. Thread-safety: Next() may be called from any thread.
#ifndef STEPWISE_SERVICE_UUID_H_
#define STEPWISE_SERVICE_UUID_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stepwise::service {

class UuidV7Generator {
 public:
  using Clock = std::function<absl::Time()>;
  // Fills `size` bytes at `out` with random bytes.
  using RandomSource = std::function<void(uint8_t* out, size_t size)>;

  // Defaults: absl::Now and OpenSSL's RAND_bytes.
  UuidV7Generator();
  UuidV7Generator(Clock clock, RandomSource random);

  // "01890a5d-ac96-774b-bcce-b302099a8057": lowercase, 36 characters.
  std::string Next();

  // A RandomSource from a seeded PRNG (tests).
  static RandomSource SeededRandom(uint64_t seed);

 private:
  Clock clock_;
  RandomSource random_;
  absl::Mutex mu_;
  int64_t last_ms_ ABSL_GUARDED_BY(mu_) = -1;
  uint16_t counter_ ABSL_GUARDED_BY(mu_) = 0;  // 12 bits used
};

// True if `id` is a well-formed lowercase UUID of version 7, variant 10.
bool IsUuidV7(const std::string& id);

}  // namespace stepwise::service

#endif  // STEPWISE_SERVICE_UUID_H_
