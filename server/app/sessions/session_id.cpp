#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "app/sessions/session_store.hpp"

namespace tandem {
namespace {

constexpr std::size_t kSessionIdBytes = 16;
constexpr std::size_t kMaxSessionIdLength = 128;

// Fills `buffer` from the kernel's CSPRNG. getrandom(2) blocks only until the pool is first
// initialised at boot, and may return fewer bytes or EINTR, so it is called until done.
void fill_random(unsigned char* buffer, std::size_t size) {
  std::size_t filled = 0;
  while (filled < size) {
    const ssize_t got = getrandom(buffer + filled, size - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      // Without a CSPRNG, session ids would be guessable; refusing to run is the safe answer.
      std::fprintf(stderr, "tandem-server: getrandom(2) failed: %s; cannot make session ids\n",
                   std::strerror(errno));
      std::abort();
    }
    filled += static_cast<std::size_t>(got);
  }
}

}  // namespace

std::string new_session_id() {
  std::array<unsigned char, kSessionIdBytes> bytes{};
  fill_random(bytes.data(), bytes.size());
  constexpr const char* kHex = "0123456789abcdef";
  std::string id;
  id.reserve(bytes.size() * 2);
  for (unsigned char byte : bytes) {
    id += kHex[byte >> 4];
    id += kHex[byte & 0xf];
  }
  return id;
}

bool is_valid_session_id(const std::string& id) {
  if (id.empty() || id.size() > kMaxSessionIdLength) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace tandem
