#include "service/uuid.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

namespace stepwise::service {
namespace {

void OpenSslRandomBytes(uint8_t* out, size_t size) {
  // RAND_bytes fails only when the system's entropy source is broken; an id
  // generator without randomness must not limp on.
  if (RAND_bytes(out, static_cast<int>(size)) != 1) {
    std::fputs("fatal: RAND_bytes failed: no entropy for decision ids\n",
               stderr);
    std::abort();
  }
}

constexpr size_t kBufferBytes = 4096;

struct RandomBuffer {
  std::array<uint8_t, kBufferBytes> bytes;
  size_t used = kBufferBytes;
  ~RandomBuffer() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

RandomBuffer& ThreadRandomBuffer() {
  thread_local RandomBuffer buffer;
  return buffer;
}

// RAND_bytes through a per-thread buffer refilled 4 KiB at a time: one
// RAND_bytes call per id cost more than building the id (the DRBG's locks and
// per-call checks), and the bytes are the same DRBG output either way. Each
// byte is handed out once and wiped from the buffer.
void OpenSslRandom(uint8_t* out, size_t size) {
  // A forked child must not hand out the bytes its parent will: the child's
  // one thread (the one that forked) drops what it inherited.
  static const int registered = pthread_atfork(
      nullptr, nullptr, [] { ThreadRandomBuffer().used = kBufferBytes; });
  (void)registered;
  RandomBuffer& buffer = ThreadRandomBuffer();
  if (size > kBufferBytes) {
    OpenSslRandomBytes(out, size);
    return;
  }
  while (size > 0) {
    if (buffer.used == kBufferBytes) {
      OpenSslRandomBytes(buffer.bytes.data(), kBufferBytes);
      buffer.used = 0;
    }
    const size_t n = std::min(size, kBufferBytes - buffer.used);
    std::memcpy(out, buffer.bytes.data() + buffer.used, n);
    OPENSSL_cleanse(buffer.bytes.data() + buffer.used, n);
    buffer.used += n;
    out += n;
    size -= n;
  }
}

}  // namespace

UuidV7Generator::UuidV7Generator()
    : UuidV7Generator([] { return absl::Now(); }, &OpenSslRandom) {}

UuidV7Generator::UuidV7Generator(Clock clock, RandomSource random)
    : clock_(std::move(clock)), random_(std::move(random)) {}

UuidV7Generator::RandomSource UuidV7Generator::SeededRandom(uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  auto mu = std::make_shared<absl::Mutex>();
  return [engine, mu](uint8_t* out, size_t size) {
    absl::MutexLock lock(mu.get());
    for (size_t i = 0; i < size; ++i)
      out[i] = static_cast<uint8_t>((*engine)());
  };
}

std::string UuidV7Generator::Next() {
  std::array<uint8_t, 10> random{};  // 2 bytes counter seed + 8 bytes rand_b
  random_(random.data(), random.size());
  int64_t ms = absl::ToUnixMillis(clock_());
  if (ms < 0) ms = 0;
  uint16_t counter;
  {
    absl::MutexLock lock(&mu_);
    if (ms > last_ms_) {
      last_ms_ = ms;
      // Start low in the 12-bit space so many ids fit in one millisecond.
      counter_ = static_cast<uint16_t>((random[0] << 8 | random[1]) & 0x7ff);
    } else if (counter_ < 0xfff) {
      ++counter_;  // same (or earlier) millisecond: stay monotonic
    } else {
      ++last_ms_;  // counter exhausted: borrow the next millisecond
      counter_ = 0;
    }
    ms = last_ms_;
    counter = counter_;
  }

  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) {
    b[i] = static_cast<uint8_t>(static_cast<uint64_t>(ms) >> (40 - 8 * i));
  }
  b[6] = static_cast<uint8_t>(0x70 | (counter >> 8));
  b[7] = static_cast<uint8_t>(counter & 0xff);
  for (int i = 0; i < 8; ++i) b[8 + i] = random[2 + i];
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));

  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xf]);
  }
  return out;
}

bool IsUuidV7(const std::string& id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  if (id[14] != '7') return false;
  const char variant = id[19];
  return variant == '8' || variant == '9' || variant == 'a' || variant == 'b';
}

}  // namespace stepwise::service
