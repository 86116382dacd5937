#include "tandem/request.hpp"

#include <algorithm>
#include <cctype>

namespace tandem {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;  // Needs two hex digits after '%'.
      int high = hex_value(text[i + 1]);
      int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string_view Request::path() const {
  std::string_view view = target;
  return view.substr(0, view.find('?'));
}

const std::string* Request::header(std::string_view lowercase_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) return &value;
  }
  return nullptr;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view view = target;
  std::size_t question = view.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = view.substr(question + 1);
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    std::size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key == name) {
      std::string_view value =
          eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      // A malformed escape is passed on undecoded so the handler can say what was wrong.
      auto decoded = percent_decode(value);
      return decoded ? *decoded : std::string(value);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::string> Request::cookie(std::string_view name) const {
  for (const auto& [header_name, value] : headers) {
    if (header_name != "cookie") continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      std::size_t semi = rest.find(';');
      std::string_view pair = trim(rest.substr(0, semi));
      std::size_t eq = pair.find('=');
      if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
        std::string_view cookie_value = trim(pair.substr(eq + 1));
        if (cookie_value.size() >= 2 && cookie_value.front() == '"' && cookie_value.back() == '"') {
          cookie_value = cookie_value.substr(1, cookie_value.size() - 2);
        }
        return std::string(cookie_value);
      }
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
  }
  return std::nullopt;
}

bool Request::forwarded_https() const {
  const std::string* proto = header("x-forwarded-proto");
  if (proto == nullptr || proto->size() != 5) return false;
  return std::equal(proto->begin(), proto->end(), "https", [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
}

}  // namespace tandem
