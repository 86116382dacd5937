#include "memory_session_store.hpp"

#include <algorithm>
#include <utility>

namespace tandem {

MemorySessionStore::MemorySessionStore(std::size_t max_sessions, std::chrono::seconds ttl,
                                       Clock clock)
    // A store that holds nothing could not count a single request, so it holds at least one.
    : max_sessions_(std::max<std::size_t>(max_sessions, 1)),
      ttl_(ttl),
      clock_(clock ? std::move(clock) : Clock{[] { return std::chrono::steady_clock::now(); }}) {}

void MemorySessionStore::record_request(const std::string& session_id, const std::string& client_id,
                                        Callback done) {
  const auto now = clock_();
  auto found = index_.find(session_id);
  if (found != index_.end() && found->second->last_seen + ttl_ <= now) {
    // An expired session is gone even if sweep() has not come by yet: the client starts afresh.
    lru_.erase(found->second);
    index_.erase(found);
    found = index_.end();
    ++stats_.expired;
  }

  Entry* entry = nullptr;
  if (found != index_.end()) {
    lru_.splice(lru_.begin(), lru_, found->second);
    entry = &lru_.front();
  } else {
    // Room is made from the least recently used end; sessions there that are already idle past
    // the TTL are counted as expired, not evicted, because that is what happened to them.
    sweep();
    while (!lru_.empty() && lru_.size() >= max_sessions_) {
      index_.erase(lru_.back().id);
      lru_.pop_back();
      ++stats_.evicted;
    }
    lru_.push_front(Entry{session_id, {}, 0, now});
    index_.emplace(session_id, lru_.begin());
    ++stats_.created;
    entry = &lru_.front();
  }

  entry->client_id = client_id;
  entry->last_seen = now;
  ++entry->request_count;
  const int64_t count = entry->request_count;

  // Called last, with no iterator held, so a callback that re-enters the store is safe.
  if (done) done(SessionUpdate{true, count, {}});
}

SessionStoreStats MemorySessionStore::stats() const {
  SessionStoreStats stats = stats_;
  stats.active = lru_.size();
  return stats;
}

std::size_t MemorySessionStore::sweep() {
  const auto now = clock_();
  std::size_t removed = 0;
  // The list is ordered by last use, so the expired sessions are all at the back.
  while (!lru_.empty() && lru_.back().last_seen + ttl_ <= now) {
    index_.erase(lru_.back().id);
    lru_.pop_back();
    ++removed;
  }
  stats_.expired += removed;
  return removed;
}

}  // namespace tandem
