#pragma once

#include <map>
#include <string>

namespace tandem::ctl {

struct HttpAnswer {
  int status = 0;
  std::map<std::string, std::string> headers;  // Names in lower case.
  std::string body;
};

// host, port and scheme of an http:// or https:// URL ("http://127.0.0.1:80" → 127.0.0.1, 80;
// "https://lb.example" → lb.example, 443, TLS); throws on another scheme or a missing host.
struct Endpoint {
  std::string host;
  int port = 80;
  bool tls = false;
};
Endpoint parse_http_url(const std::string& url);

// One GET over a fresh connection (Connection: close), bounded by timeout_ms in all; extra
// header lines such as "Cookie: a=b". Over TLS the balancer's certificate is not verified: the
// question is whether HAProxy routes to an instance, not who signed its certificate (a
// self-signed one is the default). Throws CtlError when it cannot connect or times out.
HttpAnswer http_get(const Endpoint& endpoint, const std::string& path, int timeout_ms,
                    const std::string& extra_headers = {});

}  // namespace tandem::ctl
