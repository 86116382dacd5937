#pragma once

#include <json/value.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace tandem {

// How deeply a request body's JSON may nest. jsoncpp parses recursively, so depth is stack: a
// body of 100,000 '[' would otherwise reach its own limit (1000) only through an exception.
constexpr std::size_t kMaxJsonDepth = 32;

// Parses `text` as one strict JSON document (no comments, no trailing commas, nothing after it),
// nested at most kMaxJsonDepth deep. On failure `error` says what is wrong in one line a client
// can act on, and false is returned.
bool parse_json(std::string_view text, Json::Value& value, std::string& error);

}  // namespace tandem
