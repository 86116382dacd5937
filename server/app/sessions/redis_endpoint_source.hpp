#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "app/sessions/redis_endpoint.hpp"

namespace tandem {

// Where RedisSessionStore finds the node to use, asked again before every connection: a fixed
// address (redis://) or the master the Sentinels name now (sentinel://, SentinelResolver).
class RedisEndpointSource {
 public:
  // The node to connect to, or nullopt and why not.
  using Resolved = std::function<void(std::optional<RedisEndpoint> node, std::string error)>;
  // The master moved to host:port (a Sentinel's +switch-master).
  using Moved = std::function<void(const std::string& host, uint16_t port)>;

  virtual ~RedisEndpointSource() = default;

  // "redis" or "sentinel": the store's kind in /health and /metrics.
  virtual std::string kind() const = 0;
  // The store's place in words, for errors and logs ("Redis at host:port").
  virtual std::string describe() const = 0;
  // Whether the node must say ROLE master and an increment must reach a replica to count.
  virtual bool replicated() const = 0;
  // Starts watching for a moved master; `moved` is called on the loop.
  virtual void start(Moved moved) = 0;
  // Finds the node to connect to now; `done` is called once, possibly before this returns, and
  // never after close().
  virtual void resolve(Resolved done) = 0;
  // The node last resolved said it is not the master: ask elsewhere first next time.
  virtual void refused() = 0;
  // Ends the source's work on the loop (server shutdown).
  virtual void close() = 0;
};

// A single Redis at a fixed address (redis://): nothing to ask, nothing to watch.
class FixedEndpointSource final : public RedisEndpointSource {
 public:
  explicit FixedEndpointSource(RedisEndpoint node) : node_(std::move(node)) {}
  std::string kind() const override { return "redis"; }
  std::string describe() const override {
    return "Redis at " + node_.host + ":" + std::to_string(node_.port);
  }
  bool replicated() const override { return false; }
  void start(Moved) override {}
  void resolve(Resolved done) override { done(node_, {}); }
  void refused() override {}
  void close() override {}

 private:
  RedisEndpoint node_;
};

}  // namespace tandem
