#include "app/sessions/memory_session_store.hpp"

#include <algorithm>
#include <utility>

namespace tandem {
namespace {

// What one session costs besides its strings: the map node (key string, entry, hash, link), the
// bucket pointer, and three list nodes' worth of links. An estimate, but one that grows with
// what clients send, which is what the byte bound is for.
constexpr std::size_t kEntryOverhead = sizeof(std::string) + 160 + 3 * 3 * sizeof(void*);

// Heap bytes of a string's buffer (nothing while it fits in the string itself), counted from its
// length so the same text is always accounted the same.
std::size_t heap_bytes(const std::string& text) { return text.size() > 15 ? text.size() + 1 : 0; }

}  // namespace

MemorySessionStore::MemorySessionStore(Limits limits, std::chrono::seconds ttl, Clock clock)
    // A store that holds nothing could not count a single request, so it holds at least one.
    : limits_{std::max<std::size_t>(limits.max_sessions, 1), limits.max_bytes},
      ttl_(ttl),
      clock_(clock ? std::move(clock) : Clock{[] { return std::chrono::steady_clock::now(); }}) {}

std::size_t MemorySessionStore::entry_bytes(const std::string& id, const std::string& client_id) {
  return kEntryOverhead + heap_bytes(id) + heap_bytes(client_id);
}

void MemorySessionStore::record_request(const std::string& session_id, const std::string& client_id,
                                        bool create, Callback done) {
  const auto now = clock_();
  auto found = sessions_.find(session_id);
  if (found != sessions_.end() && found->second.last_seen + ttl_ <= now) {
    // An expired session is gone even if sweep() has not come by yet: the client starts afresh.
    remove(found->second);
    ++stats_.expired;
    found = sessions_.end();
  }

  if (found == sessions_.end()) {
    if (!create) {
      ++stats_.rejected;
      if (done) done(SessionUpdate::unknown());
      return;
    }
    make_room(entry_bytes(session_id, client_id));
    found = sessions_.emplace(session_id, Entry{}).first;
    Entry& entry = found->second;
    entry.id = &found->first;
    entry.is_protected = false;
    entry.by_time = time_.insert(time_.begin(), &entry);
    entry.by_segment = probation_.insert(probation_.begin(), &entry);
    ++stats_.created;
  } else {
    touch(found->second);
  }

  Entry& entry = found->second;
  std::size_t old_bytes = entry.bytes;
  entry.client_id = client_id;
  entry.bytes = entry_bytes(*entry.id, entry.client_id);
  stats_.bytes = stats_.bytes - old_bytes + entry.bytes;
  if (entry.is_protected) protected_bytes_ = protected_bytes_ - old_bytes + entry.bytes;
  entry.last_seen = now;
  ++entry.request_count;
  const int64_t count = entry.request_count;

  // Called last, with no iterator held, so a callback that re-enters the store is safe.
  if (done) done(SessionUpdate::counted(count));
}

void MemorySessionStore::touch(Entry& entry) {
  time_.splice(time_.begin(), time_, entry.by_time);
  if (entry.is_protected) {
    protected_.splice(protected_.begin(), protected_, entry.by_segment);
    return;
  }
  // A second request: the client came back, so the session moves to the protected segment.
  probation_.erase(entry.by_segment);
  entry.is_protected = true;
  entry.by_segment = protected_.insert(protected_.begin(), &entry);
  protected_bytes_ += entry.bytes;
  // The protected segment keeps to its share; what it sheds goes to the front of probation, so
  // it still outlives sessions nobody came back for.
  const auto max_count = static_cast<std::size_t>(kProtectedShare * limits_.max_sessions);
  const auto max_bytes = static_cast<std::size_t>(kProtectedShare * limits_.max_bytes);
  while (protected_.size() > 1 && (protected_.size() > max_count || protected_bytes_ > max_bytes)) {
    Entry* oldest = protected_.back();
    protected_.pop_back();
    protected_bytes_ -= oldest->bytes;
    oldest->is_protected = false;
    oldest->by_segment = probation_.insert(probation_.begin(), oldest);
  }
}

void MemorySessionStore::make_room(std::size_t bytes) {
  // Sessions idle past the TTL go first, and are counted as expired: that is what happened.
  sweep();
  while (!sessions_.empty() &&
         (sessions_.size() >= limits_.max_sessions || stats_.bytes + bytes > limits_.max_bytes)) {
    Order& victims = probation_.empty() ? protected_ : probation_;
    remove(*victims.back());
    ++stats_.evicted;
  }
}

void MemorySessionStore::remove(Entry& entry) {
  time_.erase(entry.by_time);
  segment(entry).erase(entry.by_segment);
  stats_.bytes -= entry.bytes;
  if (entry.is_protected) protected_bytes_ -= entry.bytes;
  // Erased by iterator: erase(key) would compare against the key it destroys.
  sessions_.erase(sessions_.find(*entry.id));
}

SessionStoreStats MemorySessionStore::stats() const {
  SessionStoreStats stats = stats_;
  stats.active = sessions_.size();
  return stats;
}

std::size_t MemorySessionStore::sweep() {
  const auto now = clock_();
  std::size_t removed = 0;
  // time_ is ordered by last use, so the expired sessions are all at its back.
  while (!time_.empty() && time_.back()->last_seen + ttl_ <= now) {
    remove(*time_.back());
    ++removed;
  }
  stats_.expired += removed;
  return removed;
}

}  // namespace tandem
