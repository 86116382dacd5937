#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <string>
#include <unordered_map>

#include "app/sessions/session_store.hpp"

namespace tandem {

// Sessions in this process's memory, bounded by count and by bytes, expired after an idle TTL
// (lazily on access and by sweep()), lost when the process ends.
//
// When full it drops sessions in a segmented LRU order: a session used once sits in a
// "probation" segment; its second request promotes it to a "protected" one (at most
// kProtectedShare of the store). Room is made from probation first. A flood of one-request
// sessions, from however many addresses, therefore churns probation and leaves the sessions of
// clients that came back alone, where plain LRU would drop them all.
class MemorySessionStore final : public SessionStore {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  struct Limits {
    std::size_t max_sessions = 100000;
    std::size_t max_bytes = 64 * 1024 * 1024;
  };

  // The protected segment's share of either limit.
  static constexpr double kProtectedShare = 0.8;

  // `clock` is injectable so tests can move time; it defaults to steady_clock::now.
  MemorySessionStore(Limits limits, std::chrono::seconds ttl, Clock clock = {});

  void record_request(const std::string& session_id, const std::string& client_id, bool create,
                      Callback done) override;
  SessionStoreStats stats() const override;
  std::string kind() const override { return "memory"; }
  std::string state() const override { return "ok"; }

  // Drops every session idle past the TTL; the server calls it periodically. Returns how many.
  std::size_t sweep();

  // The bytes one session is accounted for: its id and client id plus the store's own overhead.
  static std::size_t entry_bytes(const std::string& id, const std::string& client_id);

 private:
  struct Entry;
  using Order = std::list<Entry*>;  // Most recently used at the front.
  struct Entry {
    const std::string* id = nullptr;  // The map's key.
    std::string client_id;
    int64_t request_count = 0;
    std::chrono::steady_clock::time_point last_seen;
    std::size_t bytes = 0;
    bool is_protected = false;
    Order::iterator by_time;     // In time_, for expiry.
    Order::iterator by_segment;  // In probation_ or protected_, for eviction.
  };

  Order& segment(const Entry& entry) { return entry.is_protected ? protected_ : probation_; }
  void touch(Entry& entry);
  void make_room(std::size_t bytes);
  // Forgets `entry` (the caller counts why).
  void remove(Entry& entry);

  Limits limits_;
  std::chrono::seconds ttl_;
  Clock clock_;
  std::unordered_map<std::string, Entry> sessions_;
  Order time_;       // Every session, by last use: expired ones gather at the back.
  Order probation_;  // Sessions used once.
  Order protected_;  // Sessions used twice or more.
  std::size_t protected_bytes_ = 0;
  SessionStoreStats stats_;
};

}  // namespace tandem
