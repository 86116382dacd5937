#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tandem/request.hpp"
#include "tandem/response.hpp"

namespace tandem {

// Delivers a handler's answer. Must be called exactly once; it may be called later, from another
// callback of the loop (a handler waiting on Redis, say).
using Responder = std::function<void(Response)>;
using Handler = std::function<void(const Request&, Responder)>;

// What the router found for a request.
struct RouteMatch {
  const Handler* handler = nullptr;  // Null when status is 404 or 405.
  std::string_view route;            // The route's path, or "unmatched" for an unknown path.
  int status = 200;                  // 200 (found), 404 or 405.
  std::string_view allow;            // For 405: the methods the path answers.
  std::size_t max_body_bytes = 0;    // The largest body the route takes, when found.
};

// A table of (method, path) to handler. GET routes answer HEAD as well.
class Router {
 public:
  // Adds `handler` for `method` on `path` (exact match; the query string is not part of it).
  // Requests with a body over `max_body_bytes` are refused (413) before the body is read; the
  // default, 0, suits a route that reads nothing but its target.
  void add(std::string method, std::string path, Handler handler, std::size_t max_body_bytes = 0);
  // Finds the handler for `method` on `path`.
  RouteMatch match(std::string_view method, std::string_view path) const;

 private:
  struct Route {
    std::string path;
    struct Method {
      std::string name;
      Handler handler;
      std::size_t max_body_bytes;
    };
    std::vector<Method> methods;
    std::string allow;  // "GET, HEAD", built as methods are added.
  };
  std::unordered_map<std::string_view, Route*> by_path_;
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace tandem
