#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace tandem {

// The outcome of counting one request against a session.
struct SessionUpdate {
  bool ok = false;            // false: the store could not be reached or refused the update.
  bool found = true;          // false: no such session (never issued, or expired); nothing counted.
  int64_t request_count = 0;  // The session's count after this request, when ok and found.
  std::string error;          // Why it failed, in words a client can act on, when !ok.

  static SessionUpdate counted(int64_t count) { return SessionUpdate{true, true, count, {}}; }
  static SessionUpdate unknown() { return SessionUpdate{true, false, 0, {}}; }
  static SessionUpdate failure(std::string why) {
    return SessionUpdate{false, true, 0, std::move(why)};
  }
};

// Counters a store keeps about itself, for /metrics and /api/metrics.
struct SessionStoreStats {
  uint64_t active = 0;    // Sessions currently held.
  uint64_t created = 0;   // Sessions created since start.
  uint64_t evicted = 0;   // Dropped because the store was full (least recently used first).
  uint64_t expired = 0;   // Dropped because they were idle past the TTL.
  uint64_t errors = 0;    // Operations that failed (a store that is unreachable, for instance).
  uint64_t rejected = 0;  // Ids presented that the store did not know: not adopted.
  uint64_t bytes = 0;     // Memory the store accounts for its sessions (memory store only).
};

// Where sessions live. Operations complete through a callback so that a store on the network
// (Redis) never blocks the event loop; the in-memory store calls back before returning.
class SessionStore {
 public:
  using Callback = std::function<void(SessionUpdate)>;

  virtual ~SessionStore() = default;

  // Counts one request against `session_id` and refreshes its idle deadline; `client_id` is
  // remembered as the session's last client. With `create` the session is made first: only for
  // an id the server just drew (new_session_id). Without it an unknown id is not adopted: the
  // update comes back with found == false, nothing stored, and the rejection counted.
  virtual void record_request(const std::string& session_id, const std::string& client_id,
                              bool create, Callback done) = 0;
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
