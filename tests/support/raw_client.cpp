#include "raw_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tandem::test {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

int remaining_ms(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

std::string errno_text(const char* what) { return std::string{what} + ": " + std::strerror(errno); }

// Connects a non-blocking socket within `timeout`, then makes it blocking again.
int connect_with_timeout(const std::string& host, uint16_t port, milliseconds timeout,
                         std::string* error) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    *error = "not an IPv4 address: " + host;
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno_text("socket");
    return -1;
  }
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  if (rc != 0 && errno != EINPROGRESS) {
    *error = errno_text("connect");
    ::close(fd);
    return -1;
  }
  if (rc != 0) {
    pollfd pfd{fd, POLLOUT, 0};
    rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    if (rc <= 0) {
      *error = rc == 0 ? "connect: timed out" : errno_text("poll");
      ::close(fd);
      return -1;
    }
    int so_error = 0;
    socklen_t length = sizeof so_error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &length);
    if (so_error != 0) {
      *error = std::string{"connect: "} + std::strerror(so_error);
      ::close(fd);
      return -1;
    }
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Parses a chunked body starting at `begin`; returns the offset just past it, or npos when it
// is not complete yet. Throws std::runtime_error on a bad chunk size.
std::size_t parse_chunked(const std::string& data, std::size_t begin, std::string* body) {
  std::size_t at = begin;
  for (;;) {
    auto line_end = data.find("\r\n", at);
    if (line_end == std::string::npos) return std::string::npos;
    std::string size_text = data.substr(at, line_end - at);
    size_text = size_text.substr(0, size_text.find(';'));
    std::size_t used = 0;
    unsigned long long size = std::stoull(size_text, &used, 16);
    if (used == 0) throw std::runtime_error("bad chunk size");
    at = line_end + 2;
    if (size == 0) {
      // Trailer fields, then an empty line.
      for (;;) {
        auto end = data.find("\r\n", at);
        if (end == std::string::npos) return std::string::npos;
        bool empty = end == at;
        at = end + 2;
        if (empty) return at;
      }
    }
    if (data.size() < at + size + 2) return std::string::npos;
    body->append(data, at, size);
    at += size + 2;
  }
}

}  // namespace

RawClient::RawClient(const std::string& host, uint16_t port, milliseconds timeout) {
  std::string error;
  fd_ = connect_with_timeout(host, port, timeout, &error);
  if (fd_ < 0) {
    throw std::runtime_error("cannot connect to " + host + ":" + std::to_string(port) + ": " +
                             error);
  }
}

std::unique_ptr<RawClient> RawClient::try_connect(const std::string& host, uint16_t port,
                                                  milliseconds timeout, std::string* error) {
  std::string reason;
  int fd = connect_with_timeout(host, port, timeout, &reason);
  if (fd < 0) {
    if (error != nullptr) *error = reason;
    return nullptr;
  }
  std::unique_ptr<RawClient> client{new RawClient()};
  client->fd_ = fd;
  return client;
}

RawClient::~RawClient() { close(); }

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawClient::send(std::string_view data) {
  while (!data.empty()) {
    ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

void RawClient::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

bool RawClient::read_some(milliseconds timeout) {
  if (peer_closed_) return true;
  pollfd pfd{fd_, POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return false;
  char chunk[16384];
  ssize_t got;
  do {
    got = ::recv(fd_, chunk, sizeof chunk, 0);
  } while (got < 0 && errno == EINTR);
  if (got > 0) {
    buffer_.append(chunk, static_cast<std::size_t>(got));
  } else {
    peer_closed_ = true;
    peer_reset_ = got < 0;
  }
  return true;
}

std::optional<HttpResponse> RawClient::parse_buffered() {
  for (;;) {
    auto head_end = buffer_.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      if (buffer_.size() >= 5 && buffer_.compare(0, 5, "HTTP/") != 0) {
        throw std::runtime_error("not an HTTP response: " + buffer_.substr(0, 200));
      }
      return std::nullopt;
    }
    HttpResponse response;
    std::string_view head{buffer_.data(), head_end};
    auto line_end = head.find("\r\n");
    std::string_view status_line = head.substr(0, line_end);
    if (status_line.substr(0, 5) != "HTTP/") {
      throw std::runtime_error("bad status line: " + std::string{status_line});
    }
    auto space = status_line.find(' ');
    if (space == std::string_view::npos) {
      throw std::runtime_error("bad status line: " + std::string{status_line});
    }
    response.version = std::string{status_line.substr(0, space)};
    std::string_view rest = status_line.substr(space + 1);
    auto space2 = rest.find(' ');
    std::string code{rest.substr(0, space2)};
    if (code.size() != 3 || code.find_first_not_of("0123456789") != std::string::npos) {
      throw std::runtime_error("bad status line: " + std::string{status_line});
    }
    response.status = std::stol(code);
    if (space2 != std::string_view::npos) response.reason = std::string{rest.substr(space2 + 1)};
    std::string_view fields =
        line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);
    while (!fields.empty()) {
      auto end = fields.find("\r\n");
      std::string_view line = fields.substr(0, end);
      auto colon = line.find(':');
      if (colon == std::string_view::npos) {
        throw std::runtime_error("bad header line: " + std::string{line});
      }
      response.headers.add(std::string{trim(line.substr(0, colon))},
                           std::string{trim(line.substr(colon + 1))});
      if (end == std::string_view::npos) break;
      fields.remove_prefix(end + 2);
    }
    std::size_t body_begin = head_end + 4;
    std::size_t body_end = std::string::npos;
    bool no_body = (response.status >= 100 && response.status < 200) || response.status == 204 ||
                   response.status == 304;
    auto length = response.headers.get("Content-Length");
    if (no_body) {
      body_end = body_begin;
    } else if (response.headers.has_token("Transfer-Encoding", "chunked")) {
      body_end = parse_chunked(buffer_, body_begin, &response.body);
    } else if (length) {
      std::size_t size = std::stoul(*length);
      if (buffer_.size() >= body_begin + size) {
        response.body = buffer_.substr(body_begin, size);
        body_end = body_begin + size;
      }
    } else if (peer_closed_) {
      // No framing: the body runs to the close.
      response.body = buffer_.substr(body_begin);
      body_end = buffer_.size();
    }
    if (body_end == std::string::npos) return std::nullopt;
    buffer_.erase(0, body_end);
    if (response.status >= 100 && response.status < 200) continue;  // Interim: skip it.
    response.ok = true;
    return response;
  }
}

std::optional<HttpResponse> RawClient::read_response(milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    try {
      if (auto response = parse_buffered()) {
        last_status_ = ReadStatus::kResponse;
        return response;
      }
    } catch (const std::exception&) {
      last_status_ = ReadStatus::kMalformed;
      return std::nullopt;
    }
    if (peer_closed_) {
      last_status_ = ReadStatus::kClosed;
      return std::nullopt;
    }
    if (!read_some(milliseconds{remaining_ms(deadline)})) {
      last_status_ = ReadStatus::kTimeout;
      return std::nullopt;
    }
  }
}

std::vector<HttpResponse> RawClient::read_responses(std::size_t count, milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  std::vector<HttpResponse> responses;
  while (responses.size() < count) {
    auto response = read_response(milliseconds{remaining_ms(deadline)});
    if (!response) break;
    responses.push_back(std::move(*response));
  }
  return responses;
}

bool RawClient::wait_closed(milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  while (!peer_closed_) {
    if (!read_some(milliseconds{remaining_ms(deadline)})) return false;
  }
  return true;
}

HttpResponse raw_exchange(const std::string& host, uint16_t port, std::string_view request,
                          milliseconds timeout) {
  HttpResponse failed;
  std::string error;
  auto client = RawClient::try_connect(host, port, timeout, &error);
  if (!client) {
    failed.error = error;
    return failed;
  }
  client->send(request);
  if (auto response = client->read_response(timeout)) return *response;
  switch (client->last_status()) {
    case ReadStatus::kClosed:
      failed.error = "connection closed before a whole response";
      break;
    case ReadStatus::kTimeout:
      failed.error = "timed out waiting for a response";
      break;
    default:
      failed.error = "malformed response: " + client->buffered().substr(0, 200);
  }
  return failed;
}

}  // namespace tandem::test
