// The server's routes as data: method + path -> handler, plus what the server needs to know
// about a route before its handler runs (its error dialect, whether it needs the API key).
// Matching rules, in order: the path is the target up to '?'; a path equal to a route's path,
// or under the prefix of a route whose path ends in "{id}" (the rest becomes `param`), names
// that route; no such path is 404; a path whose routes all have another method is 405.
// `name` is the route's path pattern, or "unmatched" (the metrics label).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mlxs::server {

class Dialect;

template <class Handler>
class RouteTable {
 public:
  struct Route {
    std::string method;  // "GET", "POST"
    std::string path;    // "/v1/models" or "/v1/models/{id}"
    Handler handler;
    const Dialect* dialect = nullptr;  // shapes the route's errors; null: OpenAI's shape
    bool needs_api_key = true;         // when the server has one
  };
  struct Match {
    const Route* route = nullptr;      // null: status is 404 or 405
    const Dialect* dialect = nullptr;  // the path's first route's: shapes a 405
    std::string name = "unmatched";
    std::string param;  // the {id} part
    int status = 404;   // 200 when route is set
  };

  void add(Route route) { routes_.push_back(std::move(route)); }

  // The match points into the table: not on a temporary table.
  Match match(std::string_view method, std::string_view target) && = delete;
  Match match(std::string_view method, std::string_view target) const& {
    const std::string_view path = target.substr(0, target.find('?'));
    Match m;
    for (const Route& r : routes_) {
      std::string param;
      if (!path_matches(r.path, path, &param)) continue;
      if (m.status == 404) m.status = 405, m.name = r.path, m.dialect = r.dialect;
      if (r.method != method) continue;
      m.route = &r, m.name = r.path, m.dialect = r.dialect, m.param = std::move(param);
      m.status = 200;
      return m;
    }
    return m;
  }

 private:
  static bool path_matches(const std::string& pattern, std::string_view path, std::string* param) {
    constexpr std::string_view kParam = "{id}";
    if (!pattern.ends_with(kParam)) return path == pattern;
    const std::string_view prefix =
        std::string_view(pattern).substr(0, pattern.size() - kParam.size());
    if (!path.starts_with(prefix)) return false;
    *param = std::string(path.substr(prefix.size()));
    return true;
  }

  std::vector<Route> routes_;
};

}  // namespace mlxs::server
