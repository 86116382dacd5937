#include "http_client.hpp"

#include <curl/curl.h>
#include <json/reader.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace tandem::test {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

bool parse_json(const std::string& text, Json::Value* out, std::string* errors) {
  Json::CharReaderBuilder builder;
  builder["failIfExtra"] = true;
  builder["rejectDupKeys"] = true;
  std::unique_ptr<Json::CharReader> reader{builder.newCharReader()};
  return reader->parse(text.data(), text.data() + text.size(), out, errors);
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

// Collects header lines; a new status line (after 100 Continue, say) starts the set afresh.
size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  std::string_view line{data, size * count};
  if (line.rfind("HTTP/", 0) == 0) {
    response->headers.clear();
    std::string_view status_line = trim(line);
    auto space = status_line.find(' ');
    response->version = std::string{status_line.substr(0, space)};
    auto reason = status_line.find(' ', space == std::string_view::npos ? space : space + 1);
    response->reason =
        reason == std::string_view::npos ? "" : std::string{status_line.substr(reason + 1)};
    return size * count;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    response->headers.add(std::string{trim(line.substr(0, colon))},
                          std::string{trim(line.substr(colon + 1))});
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  static_cast<HttpResponse*>(user)->body.append(data, size * count);
  return size * count;
}

}  // namespace

void Headers::add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const auto& [field, value] : fields_) {
    if (iequals(field, name)) return value;
  }
  return std::nullopt;
}

std::vector<std::string> Headers::all(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [field, value] : fields_) {
    if (iequals(field, name)) values.push_back(value);
  }
  return values;
}

bool Headers::has_token(std::string_view name, std::string_view token) const {
  for (const auto& value : all(name)) {
    std::string_view rest{value};
    while (!rest.empty()) {
      auto comma = rest.find(',');
      if (iequals(trim(rest.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

std::string Headers::to_string() const {
  std::string text;
  for (const auto& [field, value] : fields_) text += field + ": " + value + "\n";
  return text;
}

Json::Value HttpResponse::json() const {
  Json::Value value;
  std::string errors;
  if (!parse_json(body, &value, &errors)) {
    throw std::runtime_error("response body is not JSON (" + errors + "): " + body);
  }
  return value;
}

bool HttpResponse::json_ok() const {
  Json::Value value;
  std::string errors;
  return parse_json(body, &value, &errors);
}

std::string HttpResponse::describe() const {
  if (!ok) return "no response (" + error + ")";
  std::string text = std::to_string(status) + " " + reason + "\n" + headers.to_string() + "\n";
  text += body.size() > 2000 ? body.substr(0, 2000) + "..." : body;
  return text;
}

std::vector<std::string> contract_problems(const HttpResponse& response, std::string_view container,
                                           bool json_body) {
  std::vector<std::string> problems;
  if (!response.ok) {
    problems.push_back("no response: " + response.error);
    return problems;
  }
  const std::string what = "status " + std::to_string(response.status) + ": ";
  if (json_body) {
    auto type = response.header("Content-Type");
    std::string media = type ? std::string{trim(type->substr(0, type->find(';')))} : "";
    if (!type || !iequals(media, "application/json")) {
      problems.push_back(what + "Content-Type is " + (type ? "'" + *type + "'" : "missing") +
                         ", expected application/json");
    }
    if (!response.json_ok()) problems.push_back(what + "body is not JSON: " + response.body);
  }
  auto id = response.header("X-Container-Id");
  if (!id || *id != container) {
    problems.push_back(what + "X-Container-Id is " + (id ? "'" + *id + "'" : "missing") +
                       ", expected '" + std::string{container} + "'");
  }
  auto date = response.header("Date");
  if (!date) {
    problems.push_back(what + "Date header missing");
  } else {
    // IMF-fixdate (RFC 9110 5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
    std::tm tm{};
    const char* end = strptime(date->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0') {
      problems.push_back(what + "Date '" + *date + "' is not an HTTP date");
    } else {
      double skew = std::difftime(timegm(&tm), std::time(nullptr));
      if (std::fabs(skew) > 60) {
        problems.push_back(what + "Date '" + *date + "' is " + std::to_string(skew) +
                           " s away from now");
      }
    }
  }
  return problems;
}

std::string join(const std::vector<std::string>& lines, std::string_view separator) {
  std::string text;
  for (const auto& line : lines) {
    if (!text.empty()) text += separator;
    text += line;
  }
  return text;
}

HttpClient::HttpClient(bool cookies) {
  global_init();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw std::runtime_error("curl_easy_init failed");
  if (cookies) enable_cookies();
}

HttpClient::~HttpClient() { curl_easy_cleanup(curl_); }

void HttpClient::enable_cookies() {
  cookies_ = true;
  // An empty file name turns the engine on without reading a file.
  curl_easy_setopt(curl_, CURLOPT_COOKIEFILE, "");
}

std::vector<std::string> HttpClient::cookies() const {
  std::vector<std::string> lines;
  curl_slist* list = nullptr;
  if (curl_easy_getinfo(curl_, CURLINFO_COOKIELIST, &list) == CURLE_OK) {
    for (curl_slist* item = list; item != nullptr; item = item->next) lines.push_back(item->data);
    curl_slist_free_all(list);
  }
  return lines;
}

HttpResponse HttpClient::request(std::string_view method, const std::string& url,
                                 const std::vector<std::string>& headers,
                                 const std::optional<std::string>& body,
                                 std::chrono::milliseconds timeout) {
  HttpResponse response;
  // The handle keeps its options between requests, so every option a request may set is set
  // again here. Not curl_easy_reset: it turns the cookie engine off, and turning it on again
  // (CURLOPT_COOKIEFILE) leaks an entry of libcurl 7.88's cookie-file list each time.
  curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, nullptr);
  curl_easy_setopt(curl_, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, nullptr);
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(-1));
  curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl_, CURLOPT_FRESH_CONNECT, fresh_ ? 1L : 0L);
  curl_easy_setopt(curl_, CURLOPT_FORBID_REUSE, fresh_ ? 1L : 0L);
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &response);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response);
  if (method == "GET") {
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, std::string{method}.c_str());
  }
  if (body) {
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  curl_slist* list = nullptr;
  // No "Expect: 100-continue" round trip for larger bodies: send them at once.
  list = curl_slist_append(list, "Expect:");
  for (const auto& line : headers) list = curl_slist_append(list, line.c_str());
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);

  CURLcode code = curl_easy_perform(curl_);
  curl_slist_free_all(list);

  long connects = 0;
  curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &connects);
  response.connects = connects;
  total_connects_ += connects;
  double seconds = 0;
  curl_easy_getinfo(curl_, CURLINFO_TOTAL_TIME, &seconds);
  response.seconds = seconds;
  if (code != CURLE_OK) {
    response.ok = false;
    response.error = curl_easy_strerror(code);
    return response;
  }
  response.ok = true;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

HttpResponse HttpClient::get(const std::string& url, const std::vector<std::string>& headers) {
  return request("GET", url, headers);
}

HttpResponse HttpClient::post(const std::string& url, const std::string& body,
                              const std::vector<std::string>& headers) {
  return request("POST", url, headers, body);
}

}  // namespace tandem::test
