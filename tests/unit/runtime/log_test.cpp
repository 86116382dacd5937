#define BOOST_TEST_MODULE log
#include <boost/test/unit_test.hpp>

#include <json/reader.h>

#include <sys/stat.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <regex>
#include <string>

#include "tandem/log.hpp"

namespace tandem {
namespace {

Json::Value parse(const std::string& text) {
  Json::CharReaderBuilder builder;
  Json::CharReaderBuilder::strictMode(&builder.settings_);
  const std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
  Json::Value value;
  std::string errors;
  BOOST_TEST_REQUIRE(reader->parse(text.data(), text.data() + text.size(), &value, &errors),
                     errors << " in " << text);
  return value;
}

// Reads back everything written to a temporary file.
std::string contents(std::FILE* file) {
  std::rewind(file);
  std::string text;
  char buffer[4096];
  while (const std::size_t got = std::fread(buffer, 1, sizeof buffer, file))
    text.append(buffer, got);
  return text;
}

}  // namespace

BOOST_AUTO_TEST_CASE(render_gives_one_compact_json_object_with_the_fields) {
  const Log log("app-1", nullptr);
  const std::string line = log.render(LogLevel::kInfo, "listening",
                                      {{"port", 3001}, {"bind", "127.0.0.1"}, {"ready", true}});
  BOOST_TEST(line.find('\n') == std::string::npos);
  BOOST_TEST(line.find(' ') == std::string::npos, line);
  const Json::Value value = parse(line);
  BOOST_TEST(value.size() == 7u);
  BOOST_TEST(value["level"].asString() == "info");
  BOOST_TEST(value["instance"].asString() == "app-1");
  BOOST_TEST(value["event"].asString() == "listening");
  BOOST_TEST(value["port"].asInt() == 3001);
  BOOST_TEST(value["bind"].asString() == "127.0.0.1");
  BOOST_TEST(value["ready"].asBool());
  const std::regex iso8601(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  BOOST_TEST(std::regex_match(value["ts"].asString(), iso8601), value["ts"].asString());
}

BOOST_AUTO_TEST_CASE(keys_come_in_order_fixed_ones_first) {
  const Log log("app-1", nullptr);
  const std::string line =
      log.render(LogLevel::kWarn, "e", {{"zeta", 1}, {"alpha", 2}, {"mid", 3}});
  const auto position = [&line](const std::string& key) { return line.find("\"" + key + "\":"); };
  BOOST_TEST(line.rfind("{\"ts\":\"", 0) == 0u);
  BOOST_TEST(position("ts") < position("level"));
  BOOST_TEST(position("level") < position("instance"));
  BOOST_TEST(position("instance") < position("event"));
  BOOST_TEST(position("event") < position("zeta"));
  BOOST_TEST(position("zeta") < position("alpha"));
  BOOST_TEST(position("alpha") < position("mid"));
  BOOST_TEST(line.back() == '}');
}

BOOST_AUTO_TEST_CASE(levels_are_named) {
  const Log log("i", nullptr);
  BOOST_TEST(parse(log.render(LogLevel::kDebug, "e", {}))["level"].asString() == "debug");
  BOOST_TEST(parse(log.render(LogLevel::kInfo, "e", {}))["level"].asString() == "info");
  BOOST_TEST(parse(log.render(LogLevel::kWarn, "e", {}))["level"].asString() == "warn");
  BOOST_TEST(parse(log.render(LogLevel::kError, "e", {}))["level"].asString() == "error");
}

BOOST_AUTO_TEST_CASE(strings_are_escaped_and_utf8_kept) {
  const std::string nasty = "quote\" backslash\\ newline\n tab\t bell\x07 caf\xc3\xa9 </script>";
  const Log log("in\"stance", nullptr);
  const std::string line = log.render(LogLevel::kError, "ev\nent", {{"we\"ird", nasty}});
  BOOST_TEST(line.find('\n') == std::string::npos);
  BOOST_TEST(line.find("caf\xc3\xa9") != std::string::npos);  // emitUTF8: not \u00e9.
  BOOST_TEST(line.find("\\u0007") != std::string::npos);
  const Json::Value value = parse(line);
  BOOST_TEST(value["instance"].asString() == "in\"stance");
  BOOST_TEST(value["event"].asString() == "ev\nent");
  BOOST_TEST(value["we\"ird"].asString() == nasty);
}

BOOST_AUTO_TEST_CASE(nested_values_stay_compact) {
  const Log log("i", nullptr);
  Json::Value nested;
  nested["list"].append(1);
  nested["list"].append("two");
  nested["ratio"] = 0.1;
  nested["none"] = Json::nullValue;
  const std::string line = log.render(LogLevel::kInfo, "e", {{"nested", nested}});
  BOOST_TEST(line.find("\"nested\":{\"list\":[1,\"two\"],\"none\":null,\"ratio\":0.1}") !=
                 std::string::npos,
             line);
}

BOOST_AUTO_TEST_CASE(write_prints_one_line_per_call) {
  std::FILE* file = std::tmpfile();
  BOOST_TEST_REQUIRE(file != nullptr);
  Log log("app-2", file);
  log.info("started", {{"pid", 42}});
  log.warn("slow");
  log.error("failed", {{"error", "multi\nline"}});
  log.debug("detail");
  const std::string text = contents(file);
  std::fclose(file);

  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  BOOST_TEST(start == text.size());  // The last line ends with a newline too.
  BOOST_TEST_REQUIRE(lines.size() == 4u);
  BOOST_TEST(parse(lines[0])["event"].asString() == "started");
  BOOST_TEST(parse(lines[0])["pid"].asInt() == 42);
  BOOST_TEST(parse(lines[1])["level"].asString() == "warn");
  BOOST_TEST(parse(lines[2])["error"].asString() == "multi\nline");
  BOOST_TEST(parse(lines[3])["level"].asString() == "debug");
  for (const auto& line : lines) BOOST_TEST(parse(line)["instance"].asString() == "app-2");
}

}  // namespace tandem

namespace tandem {

BOOST_AUTO_TEST_CASE(lines_go_to_the_journal_only_on_the_stream_systemd_connected_to_it) {
  std::FILE* file = std::tmpfile();
  struct stat status {};
  BOOST_TEST_REQUIRE(fstat(fileno(file), &status) == 0);
  const std::string mine = std::to_string(status.st_dev) + ":" + std::to_string(status.st_ino);
  const bool journald = ::access("/run/systemd/journal/socket", F_OK) == 0;
  ::unsetenv("JOURNAL_STREAM");
  BOOST_TEST(!Log("a", file).to_journal());
  ::setenv("JOURNAL_STREAM", "1:2", 1);  // Another stream: stdout was redirected.
  BOOST_TEST(!Log("a", file).to_journal());
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  // The right stream, and the journal there to take the entries (not on a machine without
  // journald, where the lines stay on the stream and nothing is lost).
  Log log("a", file);
  BOOST_TEST(log.to_journal() == journald);
  if (!journald) {
    log.info("event", {{"request_id", "abc"}});
    std::rewind(file);
    char buffer[512] = {};
    std::size_t read = std::fread(buffer, 1, sizeof buffer - 1, file);
    BOOST_TEST(std::string(buffer, read).find("\"request_id\":\"abc\"") != std::string::npos);
  }
  ::unsetenv("JOURNAL_STREAM");
  std::fclose(file);
}

}  // namespace tandem
