#pragma once

#include <cstddef>

#include "tandem/request.hpp"
#include "tandem/router.hpp"

namespace tandem {

// What a connection hands its requests to: it knows routes and answers, nothing of sockets.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // The largest body the route of `head` takes (0: none), asked once its headers are in, so an
  // oversized body is refused before it is read.
  virtual std::size_t body_limit(const Request& head) const = 0;
  // Answers `request` through `respond`, exactly once, now or later.
  virtual void handle(const Request& request, Responder respond) = 0;
  // Counts an answer the connection made itself (a 400 for malformed input, say).
  virtual void count_error(int status) = 0;
};

}  // namespace tandem
