#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace tandem {

// The outcome of counting one request against a session.
struct SessionUpdate {
  bool ok = false;            // false: the store could not be reached or refused the update.
  int64_t request_count = 0;  // The session's count after this request, when ok.
  std::string error;          // Why it failed, in words a client can act on, when !ok.
};

// Counters a store keeps about itself, for /metrics and /api/metrics.
struct SessionStoreStats {
  uint64_t active = 0;   // Sessions currently held.
  uint64_t created = 0;  // Sessions created since start.
  uint64_t evicted = 0;  // Dropped because the store was full (least recently used first).
  uint64_t expired = 0;  // Dropped because they were idle past the TTL.
  uint64_t errors = 0;   // Operations that failed (a store that is unreachable, for instance).
};

// Where sessions live. Operations complete through a callback so that a store on the network
// (Redis) never blocks the event loop; the in-memory store calls back before returning.
class SessionStore {
 public:
  using Callback = std::function<void(SessionUpdate)>;

  virtual ~SessionStore() = default;

  // Counts one request against `session_id`, creating the session if unknown and refreshing its
  // idle deadline. `client_id` is remembered as the session's last client.
  virtual void record_request(const std::string& session_id, const std::string& client_id,
                              Callback done) = 0;
  // Current counters.
  virtual SessionStoreStats stats() const = 0;
  // "memory" or "redis".
  virtual std::string kind() const = 0;
  // "ok", or a word saying why the store cannot be used right now ("unavailable", ...).
  virtual std::string state() const = 0;
  // Ends the store's work on the loop (connections, timers); later requests fail. Server shutdown.
  virtual void close() {}
};

// A new session id: 128 bits from the kernel's CSPRNG, as 32 lowercase hex digits.
std::string new_session_id();

// Whether a client-supplied session id is acceptable: 1 to 128 characters of [A-Za-z0-9_-].
bool is_valid_session_id(const std::string& id);

}  // namespace tandem
