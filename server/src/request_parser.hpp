#pragma once

#include <llhttp.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "request.hpp"

namespace tandem {

// A request the server refuses: the status to answer with and why, in words a client can act on.
struct HttpError {
  int status = 400;
  std::string message;
};

// Receives what the parser finds, in order.
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  // The first byte of a request arrived (the header timeout starts here).
  virtual void on_request_started() = 0;
  // The client sent `Expect: 100-continue` for a body within the limits and waits for a go-ahead.
  virtual void on_expect_continue() = 0;
  // A whole request arrived. Returning false stops the parser: later bytes are ignored. The sink
  // may move from `request`; if it does not, the parser reuses its buffers for the next one.
  virtual bool on_request(Request&& request) = 0;
};

// Turns bytes from one connection into Requests with llhttp, enforcing the size limits inside
// llhttp's callbacks. Tokens split across reads are accumulated into the Request being built, so
// the caller may reuse its read buffer as soon as feed() returns.
class RequestParser {
 public:
  struct Limits {
    std::size_t max_header_bytes = 8192;  // Request line plus header section.
    std::size_t max_body_bytes = 1024 * 1024;
    std::size_t max_headers = 100;
  };

  RequestParser(Limits limits, RequestSink& sink);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses `data`, calling the sink for each event. Returns the error that makes the connection
  // unusable, if any; after an error, or once the sink or the request ended the stream (no
  // keep-alive, Upgrade), further input is ignored.
  std::optional<HttpError> feed(std::string_view data);
  // The peer closed its side: an unfinished request is an error.
  std::optional<HttpError> finish();
  // Whether part of a request has arrived and the rest is awaited.
  bool in_request() const { return in_request_; }
  // Whether the parser takes no more input.
  bool stopped() const { return stopped_; }

 private:
  // llhttp's callbacks, reached through the trampolines in the .cpp.
  int on_message_begin();
  int on_url(const char* at, std::size_t length);
  int on_header_field(const char* at, std::size_t length);
  int on_header_field_complete();
  int on_header_value(const char* at, std::size_t length);
  int on_headers_complete();
  int on_body(const char* at, std::size_t length);
  int on_message_complete();

  // Records `error` to be returned by feed() and makes llhttp stop with HPE_USER.
  int fail(int status, std::string message);
  bool count_header_bytes(std::size_t length);
  void reset_request();

  template <auto Member>
  friend struct ParserCallback;
  friend const llhttp_settings_t& parser_settings();

  llhttp_t parser_;
  Limits limits_;
  RequestSink& sink_;
  Request request_;
  std::size_t header_bytes_ = 0;
  bool last_was_value_ = false;
  bool in_request_ = false;
  bool stopped_ = false;
  std::optional<HttpError> error_;
};

}  // namespace tandem
