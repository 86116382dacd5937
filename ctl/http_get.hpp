#pragma once

#include <map>
#include <string>

namespace tandem::ctl {

struct HttpAnswer {
  int status = 0;
  std::map<std::string, std::string> headers;  // Names in lower case.
  std::string body;
};

// host and port of an http:// URL ("http://127.0.0.1:80" → 127.0.0.1, 80); throws on another
// scheme or a missing host.
struct Endpoint {
  std::string host;
  int port = 80;
};
Endpoint parse_http_url(const std::string& url);

// One GET over a fresh connection (Connection: close), bounded by timeout_ms in all; extra
// header lines such as "Cookie: a=b". Throws CtlError when it cannot connect or times out.
HttpAnswer http_get(const Endpoint& endpoint, const std::string& path, int timeout_ms,
                    const std::string& extra_headers = {});

}  // namespace tandem::ctl
