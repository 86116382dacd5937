#include "tandem/response.hpp"

#include <json/writer.h>

#include <charconv>
#include <memory>
#include <sstream>

namespace tandem {
namespace {

void append_number(std::string& out, std::size_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, end);
}

}  // namespace

std::string to_json(const Json::Value& value) {
  // Building a StreamWriter is costly and the server is single-threaded, so each thread keeps one.
  thread_local std::unique_ptr<Json::StreamWriter> writer = [] {
    Json::StreamWriterBuilder builder;
    builder["indentation"] = "";
    builder["emitUTF8"] = true;
    // Six decimals (microseconds for durations) instead of 17 digits of binary noise.
    builder["precision"] = 6;
    builder["precisionType"] = "decimal";
    return std::unique_ptr<Json::StreamWriter>(builder.newStreamWriter());
  }();
  thread_local std::ostringstream stream;
  stream.str({});
  stream.clear();
  writer->write(value, &stream);
  return stream.str();
}

Response Response::json(int status, const Json::Value& value) {
  Response response;
  response.status = status;
  response.body = to_json(value);
  return response;
}

Response Response::error(int status, std::string_view message) {
  Json::Value value(Json::objectValue);
  value["error"] = std::string(message);
  return json(status, value);
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void append_response(std::string& out, const Response& response, const ResponseFrame& frame) {
  out.reserve(out.size() + 192 + response.body.size());
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::size_t>(response.status));
  out.push_back(' ');
  out.append(reason_phrase(response.status));
  out.append("\r\nContent-Type: ");
  out.append(response.content_type);
  out.append("\r\nContent-Length: ");
  append_number(out, response.body.size());
  out.append("\r\nDate: ");
  out.append(frame.date);
  out.append("\r\nX-Container-Id: ");
  out.append(frame.container_id);
  for (const auto& [name, value] : response.headers) {
    out.append("\r\n");
    out.append(name);
    out.append(": ");
    out.append(value);
  }
  if (!frame.keep_alive || response.close) {
    out.append("\r\nConnection: close\r\n\r\n");
  } else if (frame.http10) {
    out.append("\r\nConnection: keep-alive\r\n\r\n");
  } else {
    out.append("\r\n\r\n");
  }
  if (!frame.head) out.append(response.body);
}

}  // namespace tandem
