#include "tandem/router.hpp"

#include <memory>

namespace tandem {

void Router::add(std::string method, std::string path, Handler handler,
                 std::size_t max_body_bytes) {
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
  route->methods.push_back(Route::Method{std::move(method), std::move(handler), max_body_bytes});
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  auto found = by_path_.find(path);
  if (found == by_path_.end()) return RouteMatch{nullptr, "unmatched", 404, {}};
  const Route& route = *found->second;
  std::string_view wanted = method == "HEAD" ? std::string_view("GET") : method;
  for (const auto& entry : route.methods) {
    if (entry.name == wanted) {
      return RouteMatch{&entry.handler, route.path, 200, {}, entry.max_body_bytes};
    }
  }
  return RouteMatch{nullptr, route.path, 405, route.allow};
}

}  // namespace tandem
