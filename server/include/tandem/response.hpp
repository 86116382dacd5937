#pragma once

#include <json/value.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem {

// One answer, before the connection adds the headers every response carries.
struct Response {
  int status = 200;
  std::string body;  // JSON text, unless content_type says otherwise.
  std::string_view content_type = "application/json";        // Always a string literal.
  std::vector<std::pair<std::string, std::string>> headers;  // Extra headers (Allow, Set-Cookie).
  bool close = false;  // Close the connection after this answer (the stream cannot be trusted).

  // `value` as compact JSON with `status`.
  static Response json(int status, const Json::Value& value);
  // {"error": message} with `status`.
  static Response error(int status, std::string_view message);
};

// What the connection knows when it writes an answer.
struct ResponseFrame {
  std::string_view container_id;  // X-Container-Id.
  std::string_view date;          // Date, already formatted.
  bool keep_alive = true;         // false: "Connection: close" and the connection ends.
  bool head = false;              // Answer to HEAD: headers only.
  bool http10 = false;            // An HTTP/1.0 client must be told a connection stays open.
};

// Compact JSON text of `value` (no newlines, UTF-8 kept as is).
std::string to_json(const Json::Value& value);

// Appends `response` as HTTP/1.1 bytes to `out`.
void append_response(std::string& out, const Response& response, const ResponseFrame& frame);

// The reason phrase of `status` ("OK", "Not Found", ...).
std::string_view reason_phrase(int status);

}  // namespace tandem
