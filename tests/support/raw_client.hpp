#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.hpp"

namespace tandem::test {

// What the last read on a RawClient ended with.
enum class ReadStatus {
  kResponse,   // A whole response was parsed.
  kClosed,     // The peer closed (FIN or RST) before a whole response arrived.
  kTimeout,    // Nothing more arrived in time.
  kMalformed,  // Bytes arrived that are not an HTTP/1.x response.
};

// A blocking TCP client for sending what no HTTP client would: malformed or pipelined requests,
// trickled headers, half requests. Reads parse just enough HTTP/1.x (status line, headers,
// Content-Length or chunked bodies, or a body up to close) to split pipelined responses.
class RawClient {
 public:
  // Connects to host:port within `timeout`; throws std::runtime_error when it cannot.
  RawClient(const std::string& host, uint16_t port,
            std::chrono::milliseconds timeout = std::chrono::milliseconds{2000});
  // Like the constructor, but returns nullptr (and the reason in `error`) on failure.
  static std::unique_ptr<RawClient> try_connect(
      const std::string& host, uint16_t port,
      std::chrono::milliseconds timeout = std::chrono::milliseconds{2000},
      std::string* error = nullptr);
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Writes all of `data`; false when the peer has closed or reset the connection.
  bool send(std::string_view data);
  // Half-closes the connection (shutdown SHUT_WR), as a client that has nothing more to send.
  void shutdown_write();
  // Closes the socket now.
  void close();

  // Reads until one whole response is buffered and returns it; nullopt on close, timeout or
  // garbage (see last_status()). A response already buffered is returned without reading.
  std::optional<HttpResponse> read_response(
      std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});
  // Reads up to `count` responses within `timeout` in total; fewer when the peer closes.
  std::vector<HttpResponse> read_responses(
      std::size_t count, std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});
  // Reads (keeping the bytes for read_response) until the peer closes; true when it closed
  // within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);

  bool peer_closed() const { return peer_closed_; }
  // True when the close was a reset (ECONNRESET) rather than an orderly FIN.
  bool peer_reset() const { return peer_reset_; }
  ReadStatus last_status() const { return last_status_; }
  // Bytes received but not yet returned as a response.
  const std::string& buffered() const { return buffer_; }
  int fd() const { return fd_; }

 private:
  RawClient() = default;
  // Reads once, waiting at most `timeout`; false on timeout. Sets peer_closed_ on EOF / reset.
  bool read_some(std::chrono::milliseconds timeout);
  // Parses one response off the front of buffer_ if a whole one is there.
  std::optional<HttpResponse> parse_buffered();

  int fd_ = -1;
  std::string buffer_;
  bool peer_closed_ = false;
  bool peer_reset_ = false;
  ReadStatus last_status_ = ReadStatus::kTimeout;
};

// Sends one request on a fresh connection and returns the response (ok=false when none came).
HttpResponse raw_exchange(const std::string& host, uint16_t port, std::string_view request,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

}  // namespace tandem::test
