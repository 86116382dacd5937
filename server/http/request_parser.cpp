#include "http/request_parser.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>

namespace tandem {
namespace {

constexpr const char* kHttp09Refused =
    "HTTP/0.9 is not served: send HTTP/1.1 (a request line ends with HTTP/1.1)";

// The status and message for an error llhttp found itself.
HttpError error_for(llhttp_errno_t code, const char* reason) {
  // A well-formed version llhttp does not know ("HTTP/3.5") is unsupported, not malformed;
  // llhttp says which with its reason ("Invalid HTTP version" against "Expected dot", ...).
  if (code == HPE_INVALID_VERSION && std::string_view(reason) == "Invalid HTTP version") {
    return HttpError{505, "only HTTP/1.0 and HTTP/1.1 are served here"};
  }
  if (code == HPE_PAUSED_H2_UPGRADE) {
    return HttpError{505, "HTTP/2 is served by the load balancer, not here: send HTTP/1.1"};
  }
  return HttpError{400, std::string("malformed HTTP request: ") + reason};
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

// Reaches a RequestParser member from llhttp's C callbacks. No exception may cross into llhttp:
// one that escapes a member becomes a 500 and the end of the connection.
template <auto Member>
struct ParserCallback {
  static int data(llhttp_t* parser, const char* at, std::size_t length) {
    auto* self = static_cast<RequestParser*>(parser->data);
    try {
      return (self->*Member)(at, length);
    } catch (const std::exception& e) {
      return self->fail(500, std::string("internal error while parsing: ") + e.what());
    }
  }
  static int event(llhttp_t* parser) {
    auto* self = static_cast<RequestParser*>(parser->data);
    try {
      return (self->*Member)();
    } catch (const std::exception& e) {
      return self->fail(500, std::string("internal error while parsing: ") + e.what());
    }
  }
};

const llhttp_settings_t& parser_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = ParserCallback<&RequestParser::on_message_begin>::event;
    s.on_url = ParserCallback<&RequestParser::on_url>::data;
    s.on_url_complete = ParserCallback<&RequestParser::on_url_complete>::event;
    s.on_header_field = ParserCallback<&RequestParser::on_header_field>::data;
    s.on_header_field_complete = ParserCallback<&RequestParser::on_header_field_complete>::event;
    s.on_header_value = ParserCallback<&RequestParser::on_header_value>::data;
    s.on_headers_complete = ParserCallback<&RequestParser::on_headers_complete>::event;
    s.on_body = ParserCallback<&RequestParser::on_body>::data;
    s.on_message_complete = ParserCallback<&RequestParser::on_message_complete>::event;
    return s;
  }();
  return settings;
}

RequestParser::RequestParser(Limits limits, RequestSink& sink) : limits_(limits), sink_(sink) {
  llhttp_init(&parser_, HTTP_REQUEST, &parser_settings());
  parser_.data = this;
}

std::optional<HttpError> RequestParser::feed(std::string_view data) {
  consumed_ = 0;
  if (stopped_ || paused_ || data.empty()) return error_;
  // A request line that ends right after its target is HTTP/0.9, which has no headers, no
  // status line and no way to be told of an error: it is refused at once rather than left
  // waiting for headers that will never come.
  if (url_open_ && (data.front() == '\r' || data.front() == '\n')) {
    stopped_ = true;
    fail(400, kHttp09Refused);
    return error_;
  }
  feeding_ = data;
  llhttp_errno_t result = llhttp_execute(&parser_, data.data(), data.size());
  feeding_ = {};
  switch (result) {
    case HPE_OK:
      consumed_ = data.size();
      return std::nullopt;
    case HPE_PAUSED:
      consumed_ = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data.data());
      if (stop_after_pause_) {
        stopped_ = true;
      } else {
        paused_ = true;
      }
      return std::nullopt;
    case HPE_PAUSED_UPGRADE:
      // An Upgrade is answered as a plain request and then the connection ends: tandem speaks
      // HTTP/1.1 only.
      consumed_ = data.size();
      stopped_ = true;
      return std::nullopt;
    default:
      stopped_ = true;
      if (!error_) error_ = error_for(result, llhttp_get_error_reason(&parser_));
      return error_;
  }
}

void RequestParser::resume() {
  if (!paused_) return;
  paused_ = false;
  llhttp_resume(&parser_);
}

std::optional<HttpError> RequestParser::finish() {
  if (stopped_) return std::nullopt;
  stopped_ = true;
  if (!in_request_) return std::nullopt;
  // A request without framing that ends at EOF is impossible for requests, so this is a request
  // cut short: there is nobody left to answer, but the caller may log it.
  return HttpError{400, "the connection closed in the middle of a request"};
}

int RequestParser::fail(int status, std::string message) {
  if (!error_) error_ = HttpError{status, std::move(message)};
  return HPE_USER;
}

bool RequestParser::count_header_bytes(std::size_t length) {
  header_bytes_ += length;
  return header_bytes_ <= limits_.max_header_bytes;
}

void RequestParser::reset_request() {
  // Cleared field by field rather than replaced, so the strings and the header vector keep their
  // capacity: a keep-alive connection's requests then cost no allocation here.
  request_.method.clear();
  request_.target.clear();
  request_.headers.clear();
  request_.body.clear();
  request_.http_major = 1;
  request_.http_minor = 1;
  request_.keep_alive = true;
  body_limit_ = 0;
}

int RequestParser::on_message_begin() {
  reset_request();
  request_.started = std::chrono::steady_clock::now();
  header_bytes_ = 0;
  last_was_value_ = false;
  in_request_ = true;
  sink_.on_request_started();
  return 0;
}

int RequestParser::on_url(const char* at, std::size_t length) {
  if (!count_header_bytes(length)) {
    return fail(431, "the request line and headers exceed " +
                         std::to_string(limits_.max_header_bytes) + " bytes");
  }
  request_.target.append(at, length);
  url_open_ = true;
  // The target's end is in this read: a CR or LF right after it means there is no version.
  const char* after = at + length;
  if (after < feeding_.data() + feeding_.size() && (*after == '\r' || *after == '\n')) {
    return fail(400, kHttp09Refused);
  }
  return 0;
}

int RequestParser::on_url_complete() {
  url_open_ = false;
  // llhttp reports HTTP/0.9 as version 0.9 once the byte after the request line arrived.
  if (parser_.http_major == 0 && parser_.http_minor == 9) return fail(400, kHttp09Refused);
  return 0;
}

int RequestParser::on_header_field(const char* at, std::size_t length) {
  // ": " and CRLF around each header count toward the header section as well.
  if (!count_header_bytes(length + (last_was_value_ || request_.headers.empty() ? 4 : 0))) {
    return fail(431, "the request line and headers exceed " +
                         std::to_string(limits_.max_header_bytes) + " bytes");
  }
  if (last_was_value_ || request_.headers.empty()) {
    if (request_.headers.size() >= limits_.max_headers) {
      return fail(431,
                  "the request has more than " + std::to_string(limits_.max_headers) + " headers");
    }
    request_.headers.emplace_back();
    last_was_value_ = false;
  }
  std::string& name = request_.headers.back().first;
  std::size_t old_size = name.size();
  name.append(at, length);
  std::transform(name.begin() + static_cast<std::ptrdiff_t>(old_size), name.end(),
                 name.begin() + static_cast<std::ptrdiff_t>(old_size),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return 0;
}

int RequestParser::on_header_field_complete() {
  // llhttp 8.1 (not built in strict mode) lets "Host : x" through; RFC 9112 5.1 requires a 400,
  // since proxies that disagree on such a header are how requests get smuggled.
  const std::string& name = request_.headers.back().first;
  if (name.empty() || name.back() == ' ' || name.back() == '\t') {
    return fail(400, "malformed HTTP request: whitespace between a header name and its colon");
  }
  return 0;
}

int RequestParser::on_header_value(const char* at, std::size_t length) {
  if (!count_header_bytes(length)) {
    return fail(431, "the request line and headers exceed " +
                         std::to_string(limits_.max_header_bytes) + " bytes");
  }
  request_.headers.back().second.append(at, length);
  last_was_value_ = true;
  return 0;
}

bool RequestParser::normalize_target() {
  std::string& target = request_.target;
  if (!target.empty() && target.front() == '/') return true;  // origin-form, the usual case.
  if (target == "*") return request_.method == "OPTIONS";     // asterisk-form.
  // absolute-form (RFC 9112 3.2.2): a server must accept it and take the path and query from it;
  // the authority is the host the client meant, which Host repeats for HTTP/1.1.
  std::size_t scheme_end = 0;
  if (iequals_prefix(target, "http://")) {
    scheme_end = 7;
  } else if (iequals_prefix(target, "https://")) {
    scheme_end = 8;
  } else {
    return false;
  }
  std::size_t path = target.find_first_of("/?", scheme_end);
  if (path == scheme_end) return false;  // No authority.
  if (path == std::string::npos) {
    target = "/";
  } else if (target[path] == '?') {
    target = "/" + target.substr(path);
  } else {
    target.erase(0, path);
  }
  return true;
}

bool RequestParser::check_head() {
  if (!(request_.http_major == 1 && (request_.http_minor == 0 || request_.http_minor == 1))) {
    fail(505, "only HTTP/1.0 and HTTP/1.1 are served here");
    return false;
  }
  std::size_t hosts = 0;
  for (const auto& header : request_.headers) hosts += header.first == "host" ? 1 : 0;
  // RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, and for any with more than one.
  if (hosts > 1) {
    fail(400, "the request has " + std::to_string(hosts) + " Host headers; send exactly one");
    return false;
  }
  if (hosts == 0 && request_.http_minor == 1) {
    fail(400, "an HTTP/1.1 request needs a Host header");
    return false;
  }
  if (!normalize_target()) {
    fail(400, "the request target must be a path such as /api/whoami, or an absolute http(s) URI");
    return false;
  }
  return true;
}

int RequestParser::on_headers_complete() {
  request_.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
  request_.http_major = parser_.http_major;
  request_.http_minor = parser_.http_minor;
  request_.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  if (!check_head()) return -1;
  body_limit_ = std::min(limits_.max_body_bytes, sink_.body_limit(request_));
  if ((parser_.flags & F_CONTENT_LENGTH) != 0 && parser_.content_length > body_limit_) {
    fail(413, "the request body of " + std::to_string(parser_.content_length) +
                  " bytes exceeds the limit of " + std::to_string(body_limit_) + " bytes for " +
                  request_.method + " " + std::string(request_.path()));
    return -1;
  }
  const std::string* expect = request_.header("expect");
  if (expect != nullptr) {
    std::string value = *expect;
    std::transform(value.begin(), value.end(), value.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (value == "100-continue" && request_.http_minor >= 1) {
      sink_.on_expect_continue();
    } else if (value != "100-continue") {
      fail(417, "the Expect header supports only 100-continue");
      return -1;
    }
  }
  return 0;
}

int RequestParser::on_body(const char* at, std::size_t length) {
  if (request_.body.size() + length > body_limit_) {
    return fail(413, "the request body exceeds the limit of " + std::to_string(body_limit_) +
                         " bytes for " + request_.method + " " + std::string(request_.path()));
  }
  request_.body.append(at, length);
  return 0;
}

int RequestParser::on_message_complete() {
  in_request_ = false;
  bool ends_stream = !request_.keep_alive || parser_.upgrade != 0;
  RequestSink::Next next = sink_.on_request(std::move(request_));
  reset_request();
  if (ends_stream || next == RequestSink::Next::kStop) {
    stop_after_pause_ = true;
    return HPE_PAUSED;
  }
  return next == RequestSink::Next::kPause ? HPE_PAUSED : 0;
}

}  // namespace tandem
