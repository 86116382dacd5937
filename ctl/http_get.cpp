#include "http_get.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <utility>

#include "error.hpp"

namespace tandem::ctl {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<long long>(0, left.count()));
}

void wait_for(int fd, short events, Clock::time_point deadline, const std::string& what) {
  pollfd entry{fd, events, 0};
  for (;;) {
    const int ready = ::poll(&entry, 1, remaining_ms(deadline));
    if (ready > 0) return;
    if (ready == 0) throw CtlError(what + ": no answer in time");
    if (errno != EINTR) throw CtlError(what + ": " + std::strerror(errno));
  }
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

HttpAnswer parse_answer(const std::string& raw, const std::string& what) {
  HttpAnswer answer;
  const auto head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || raw.size() < 12) {
    throw CtlError(what + ": not an HTTP answer");
  }
  answer.status = std::atoi(raw.c_str() + 9);
  std::size_t line_start = raw.find("\r\n") + 2;
  while (line_start < head_end) {
    const auto line_end = raw.find("\r\n", line_start);
    const std::string line = raw.substr(line_start, line_end - line_start);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      answer.headers[lower(line.substr(0, colon))] = value;
    }
    line_start = line_end + 2;
  }
  answer.body = raw.substr(head_end + 4);
  if (auto length = answer.headers.find("content-length"); length != answer.headers.end()) {
    answer.body.resize(std::min<std::size_t>(answer.body.size(), std::stoul(length->second)));
  }
  return answer;
}

// A connected socket, spoken to directly or through TLS; every wait bounded by the deadline.
class Stream {
 public:
  Stream(int fd, const Endpoint& endpoint, Clock::time_point deadline, std::string what)
      : fd_(fd), deadline_(deadline), what_(std::move(what)) {
    if (!endpoint.tls) return;
    context_.reset(::SSL_CTX_new(::TLS_client_method()));
    if (!context_) fail("cannot make a TLS context");
    ::SSL_CTX_set_verify(context_.get(), SSL_VERIFY_NONE, nullptr);
    ssl_.reset(::SSL_new(context_.get()));
    if (!ssl_ || ::SSL_set_fd(ssl_.get(), fd_) != 1) fail("cannot start TLS");
    // SNI for a name (HAProxy picks the certificate by it), never for an address.
    in6_addr address{};
    if (::inet_pton(AF_INET, endpoint.host.c_str(), &address) != 1 &&
        ::inet_pton(AF_INET6, endpoint.host.c_str(), &address) != 1) {
      ::SSL_set_tlsext_host_name(ssl_.get(), endpoint.host.c_str());
    }
    call([this] { return ::SSL_connect(ssl_.get()); });
  }

  void send_all(const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      if (ssl_) {
        sent += static_cast<std::size_t>(call([&] {
          return ::SSL_write(ssl_.get(), data.data() + sent, static_cast<int>(data.size() - sent));
        }));
        continue;
      }
      wait_for(fd_, POLLOUT, deadline_, what_);
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) throw CtlError(what_ + ": " + std::strerror(errno));
      sent += static_cast<std::size_t>(n);
    }
  }

  // Everything until the other side closes, at most 8 MiB.
  std::string read_all() {
    std::string raw;
    char buffer[16384];
    for (;;) {
      ssize_t n = 0;
      if (ssl_) {
        n = call([&] { return ::SSL_read(ssl_.get(), buffer, sizeof(buffer)); });
      } else {
        wait_for(fd_, POLLIN, deadline_, what_);
        n = ::recv(fd_, buffer, sizeof(buffer), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) throw CtlError(what_ + ": " + std::strerror(errno));
      }
      if (n == 0) return raw;
      raw.append(buffer, static_cast<std::size_t>(n));
      if (raw.size() > (8u << 20)) throw CtlError(what_ + ": answer larger than 8 MiB");
    }
  }

 private:
  // Runs one TLS operation on the non-blocking socket until it completes, waiting for the
  // socket as OpenSSL asks; 0 at the end of the stream (with or without close_notify).
  template <class Operation>
  int call(Operation operation) {
    for (;;) {
      ::ERR_clear_error();
      const int n = operation();
      if (n > 0) return n;
      const int error = ::SSL_get_error(ssl_.get(), n);
      if (error == SSL_ERROR_WANT_READ) {
        wait_for(fd_, POLLIN, deadline_, what_);
      } else if (error == SSL_ERROR_WANT_WRITE) {
        wait_for(fd_, POLLOUT, deadline_, what_);
      } else if (error == SSL_ERROR_ZERO_RETURN ||
                 (error == SSL_ERROR_SYSCALL && ::ERR_peek_error() == 0 && errno == 0)) {
        return 0;
      } else {
        fail("TLS failed");
      }
    }
  }

  [[noreturn]] void fail(const std::string& summary) {
    char text[256] = "";
    ::ERR_error_string_n(::ERR_get_error(), text, sizeof(text));
    throw CtlError(what_ + ": " + summary + (text[0] != 0 ? std::string(" (") + text + ")" : ""));
  }

  struct FreeContext {
    void operator()(SSL_CTX* context) const { ::SSL_CTX_free(context); }
  };
  struct FreeSsl {
    void operator()(SSL* ssl) const { ::SSL_free(ssl); }
  };

  int fd_;
  Clock::time_point deadline_;
  std::string what_;
  std::unique_ptr<SSL_CTX, FreeContext> context_;
  std::unique_ptr<SSL, FreeSsl> ssl_;  // Declared last: freed before its context.
};

}  // namespace

Endpoint parse_http_url(const std::string& url) {
  Endpoint endpoint;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    endpoint.tls = true;
    endpoint.port = 443;
  } else {
    throw CtlError("\"" + url + "\" is not an http:// or https:// URL", {}, kExitUsage);
  }
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest[0] == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos) throw CtlError("bad address in " + url, {}, kExitUsage);
    endpoint.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') {
      endpoint.port = std::atoi(rest.c_str() + close + 2);
    }
  } else {
    const auto colon = rest.rfind(':');
    endpoint.host = rest.substr(0, colon);
    if (colon != std::string::npos) endpoint.port = std::atoi(rest.c_str() + colon + 1);
  }
  if (endpoint.host.empty() || endpoint.port <= 0 || endpoint.port > 65535) {
    throw CtlError("no host and port in \"" + url + "\"", {}, kExitUsage);
  }
  return endpoint;
}

HttpAnswer http_get(const Endpoint& endpoint, const std::string& path, int timeout_ms,
                    const std::string& extra_headers) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string what = std::string("GET ") + (endpoint.tls ? "https://" : "http://") +
                           endpoint.host + ":" + std::to_string(endpoint.port) + path;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(endpoint.port);
  if (const int error = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found)) {
    throw CtlError(what + ": " + ::gai_strerror(error));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw CtlError(what + ": socket(): " + std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0 && errno != EINPROGRESS) {
    throw CtlError(what + ": " + std::strerror(errno));
  }
  wait_for(fd, POLLOUT, deadline, what);
  int error = 0;
  socklen_t length = sizeof(error);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) throw CtlError(what + ": " + std::strerror(error));
  const std::string host =
      endpoint.host.find(':') != std::string::npos ? "[" + endpoint.host + "]" : endpoint.host;
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + port +
                              "\r\nUser-Agent: tandemctl\r\nConnection: close\r\n" + extra_headers +
                              (extra_headers.empty() ? "" : "\r\n") + "\r\n";
  Stream stream(fd, endpoint, deadline, what);
  stream.send_all(request);
  const std::string raw = stream.read_all();
  return parse_answer(raw, what);
}

}  // namespace tandem::ctl
