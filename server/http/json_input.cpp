#include "tandem/json_input.hpp"

#include <json/reader.h>

#include <memory>

namespace tandem {

bool parse_json(std::string_view text, Json::Value& value, std::string& error) {
  Json::CharReaderBuilder builder;
  Json::CharReaderBuilder::strictMode(&builder.settings_);
  builder["allowDroppedNullPlaceholders"] = false;
  // jsoncpp counts depth from 0 and refuses a value nested deeper than stackLimit.
  builder["stackLimit"] = static_cast<Json::UInt>(kMaxJsonDepth);
  std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  std::string errors;
  bool parsed = false;
  try {
    parsed = reader->parse(text.data(), text.data() + text.size(), &value, &errors);
  } catch (const Json::Exception&) {
    // The depth limit is reported by a throw, not by `errors`.
    error = "it nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    return false;
  }
  if (!parsed) {
    // jsoncpp reports "* Line 1, Column 2\n  Syntax error: ..."; one line is enough for a client.
    for (char& c : errors) {
      if (c == '\n') c = ' ';
    }
    while (!errors.empty() && errors.back() == ' ') errors.pop_back();
    error = errors;
    return false;
  }
  return true;
}

}  // namespace tandem
