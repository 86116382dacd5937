#pragma once

#include <llhttp.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "tandem/request.hpp"

namespace tandem {

// A request the server refuses: the status to answer with and why, in words a client can act on.
struct HttpError {
  int status = 400;
  std::string message;
};

// Receives what the parser finds, in order.
class RequestSink {
 public:
  // What the parser does after a request.
  enum class Next {
    kContinue,  // Parse on.
    kPause,     // Stop here; feed() reports what it consumed, resume() and feed the rest later.
    kStop,      // The stream ends after this request: later bytes are ignored.
  };

  virtual ~RequestSink() = default;
  // The first byte of a request arrived (the header timeout starts here).
  virtual void on_request_started() = 0;
  // The head of a request arrived (method, origin-form target, headers): the largest body it may
  // carry, which the parser caps at Limits::max_body_bytes. A route that takes no body says 0.
  virtual std::size_t body_limit(const Request& head) = 0;
  // The client sent `Expect: 100-continue` for a body within the limits and waits for a go-ahead.
  virtual void on_expect_continue() = 0;
  // A whole request arrived. The sink may move from `request`; if it does not, the parser reuses
  // its buffers for the next one.
  virtual Next on_request(Request&& request) = 0;
};

// Turns bytes from one connection into Requests with llhttp (built in its strict mode, which
// requires CRLF after chunk data and refuses bare LF line ends), enforcing the size limits inside
// llhttp's callbacks and what RFC 9112 asks of a server besides: HTTP/1.0 and 1.1 only (505
// otherwise), HTTP/0.9 refused at once, exactly one Host on HTTP/1.1 and at most one on 1.0, and
// absolute-form targets accepted (turned into origin-form). Tokens split across reads are
// accumulated into the Request being built, so the caller may reuse its read buffer as soon as
// feed() returns.
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
  // keep-alive, Upgrade), further input is ignored. When the sink paused the parser, consumed()
  // says how much of `data` was taken; the rest is the caller's to feed again after resume().
  std::optional<HttpError> feed(std::string_view data);
  // Bytes of the last feed() that were parsed (all of them unless it paused).
  std::size_t consumed() const { return consumed_; }
  // Whether the sink paused the parser; feed() takes nothing until resume().
  bool paused() const { return paused_; }
  void resume();
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
  int on_url_complete();
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
  // The RFC 9112 checks of a whole request head; fills error_ and returns false when one fails.
  bool check_head();
  // Rewrites an absolute-form target to origin-form; false when the target is neither.
  bool normalize_target();

  template <auto Member>
  friend struct ParserCallback;
  friend const llhttp_settings_t& parser_settings();

  llhttp_t parser_;
  Limits limits_;
  RequestSink& sink_;
  Request request_;
  std::size_t header_bytes_ = 0;
  std::size_t body_limit_ = 0;  // Of the request being received.
  std::size_t consumed_ = 0;
  std::string_view feeding_;  // The data of the feed() under way, for HTTP/0.9 detection.
  bool url_open_ = false;     // Part of the target arrived, its end did not.
  bool last_was_value_ = false;
  bool in_request_ = false;
  bool stopped_ = false;
  bool paused_ = false;
  bool stop_after_pause_ = false;
  std::optional<HttpError> error_;
};

}  // namespace tandem
