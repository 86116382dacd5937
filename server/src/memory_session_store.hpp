#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <string>
#include <unordered_map>

#include "session_store.hpp"

namespace tandem {

// Sessions in this process's memory: bounded by count (least recently used evicted first) and by
// idle time (expired lazily on access and by sweep()). Lost when the process ends.
class MemorySessionStore final : public SessionStore {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `clock` is injectable so tests can move time; it defaults to steady_clock::now.
  MemorySessionStore(std::size_t max_sessions, std::chrono::seconds ttl, Clock clock = {});

  void record_request(const std::string& session_id, const std::string& client_id,
                      Callback done) override;
  SessionStoreStats stats() const override;
  std::string kind() const override { return "memory"; }
  std::string state() const override { return "ok"; }

  // Drops every session idle past the TTL; the server calls it periodically. Returns how many.
  std::size_t sweep();

 private:
  struct Entry {
    std::string id;
    std::string client_id;
    int64_t request_count = 0;
    std::chrono::steady_clock::time_point last_seen;
  };
  using Lru = std::list<Entry>;  // Most recently used at the front.

  std::size_t max_sessions_;
  std::chrono::seconds ttl_;
  Clock clock_;
  Lru lru_;
  std::unordered_map<std::string, Lru::iterator> index_;
  SessionStoreStats stats_;
};

}  // namespace tandem
