#include "router.hpp"

#include <memory>

namespace tandem {

void Router::add(std::string method, std::string path, Handler handler) {
  auto found = by_path_.find(path);
  Route* route = nullptr;
  if (found == by_path_.end()) {
    routes_.push_back(std::make_unique<Route>());
    route = routes_.back().get();
    route->path = std::move(path);
    by_path_.emplace(route->path, route);
  } else {
    route = found->second;
  }
  bool is_get = method == "GET";
  route->allow += route->allow.empty() ? method : ", " + method;
  if (is_get) route->allow += ", HEAD";
  route->methods.emplace_back(std::move(method), std::move(handler));
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  auto found = by_path_.find(path);
  if (found == by_path_.end()) return RouteMatch{nullptr, "unmatched", 404, {}};
  const Route& route = *found->second;
  std::string_view wanted = method == "HEAD" ? std::string_view("GET") : method;
  for (const auto& [route_method, handler] : route.methods) {
    if (route_method == wanted) return RouteMatch{&handler, route.path, 200, {}};
  }
  return RouteMatch{nullptr, route.path, 405, route.allow};
}

}  // namespace tandem
