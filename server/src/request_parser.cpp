#include "request_parser.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>

namespace tandem {

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
  if (stopped_ || data.empty()) return error_;
  llhttp_errno_t result = llhttp_execute(&parser_, data.data(), data.size());
  switch (result) {
    case HPE_OK:
      return std::nullopt;
    case HPE_PAUSED:
    case HPE_PAUSED_UPGRADE:
      // on_message_complete paused because the stream ends after this request. An Upgrade is
      // answered as a plain request and then the connection ends too: tandem speaks HTTP/1.1 only.
      stopped_ = true;
      return std::nullopt;
    default:
      stopped_ = true;
      if (!error_) {
        error_ = HttpError{
            400, std::string("malformed HTTP request: ") + llhttp_get_error_reason(&parser_)};
      }
      return error_;
  }
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

int RequestParser::on_headers_complete() {
  request_.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
  request_.http_major = parser_.http_major;
  request_.http_minor = parser_.http_minor;
  request_.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  if ((parser_.flags & F_CONTENT_LENGTH) != 0 && parser_.content_length > limits_.max_body_bytes) {
    fail(413, "the request body of " + std::to_string(parser_.content_length) +
                  " bytes exceeds the limit of " + std::to_string(limits_.max_body_bytes) +
                  " bytes");
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
  if (request_.body.size() + length > limits_.max_body_bytes) {
    return fail(413, "the request body exceeds the limit of " +
                         std::to_string(limits_.max_body_bytes) + " bytes");
  }
  request_.body.append(at, length);
  return 0;
}

int RequestParser::on_message_complete() {
  in_request_ = false;
  bool ends_stream = !request_.keep_alive || parser_.upgrade != 0;
  bool go_on = sink_.on_request(std::move(request_));
  reset_request();
  return (go_on && !ends_stream) ? 0 : HPE_PAUSED;
}

}  // namespace tandem
