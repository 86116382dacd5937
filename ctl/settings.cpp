#include "settings.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "error.hpp"

namespace tandem::ctl {
namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

bool valid_key(const std::string& key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// A value as systemd reads it: quotes removed (backslash escapes inside double quotes).
std::string unquote(const std::string& value, const std::string& where) {
  if (value.size() < 2 || (value.front() != '"' && value.front() != '\'')) return value;
  const char quote = value.front();
  if (value.back() != quote) throw CtlError(where + ": unterminated quote", {}, kExitUsage);
  std::string out;
  for (std::size_t i = 1; i + 1 < value.size(); ++i) {
    if (quote == '"' && value[i] == '\\' && i + 2 < value.size()) ++i;
    out += value[i];
  }
  return out;
}

bool is_port_file(const std::filesystem::path& path, int& port) {
  const std::string stem = path.stem().string();
  if (path.extension() != ".env" || stem.empty() || stem.size() > 5) return false;
  if (!std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  port = std::stoi(stem);
  return port > 0 && port < 65536;
}

}  // namespace

std::map<std::string, std::string> parse_env_text(const std::string& text,
                                                  const std::string& origin) {
  std::map<std::string, std::string> variables;
  std::istringstream lines(text);
  std::string line, logical;
  int number = 0, first = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (logical.empty()) first = number;
    if (!line.empty() && line.back() == '\\') {
      logical += line.substr(0, line.size() - 1);
      continue;
    }
    logical += line;
    const std::string entry = trim(logical);
    logical.clear();
    if (entry.empty() || entry[0] == '#' || entry[0] == ';') continue;
    const std::string where = origin + ":" + std::to_string(first);
    const auto equals = entry.find('=');
    if (equals == std::string::npos) {
      throw CtlError(
          where + ": expected KEY=VALUE, found \"" + entry + "\"",
          "fix the line: the file is read as systemd reads an EnvironmentFile=", kExitUsage);
    }
    const std::string key = trim(entry.substr(0, equals));
    if (!valid_key(key)) {
      throw CtlError(where + ": \"" + key + "\" is not a variable name", {}, kExitUsage);
    }
    variables[key] = unquote(trim(entry.substr(equals + 1)), where);
  }
  return variables;
}

std::map<std::string, std::string> read_env_file(const std::filesystem::path& path) {
  std::ifstream file(path);
  if (!file) {
    throw CtlError("cannot read " + path.string(), "run as root, or check the file's permissions",
                   kExitFailed);
  }
  std::stringstream text;
  text << file.rdbuf();
  return parse_env_text(text.str(), path.string());
}

const LocalInstance* Settings::find(const std::string& id) const {
  for (const auto& instance : instances) {
    if (instance.id == id) return &instance;
  }
  return nullptr;
}

Settings load_settings(const Overrides& overrides) {
  Settings settings;
  if (!overrides.config_dir.empty()) settings.config_dir = overrides.config_dir;
  std::error_code error;
  if (std::filesystem::is_directory(settings.config_dir, error)) {
    const auto conf = settings.config_dir / "tandemctl.conf";
    if (std::filesystem::exists(conf, error)) {
      const auto variables = read_env_file(conf);
      auto take = [&variables](const char* key, std::string& into) {
        if (auto found = variables.find(key); found != variables.end()) into = found->second;
      };
      take("TANDEM_LB_SOCKET", settings.socket);
      take("TANDEM_LB_BACKEND", settings.backend);
      take("TANDEM_LB_URL", settings.lb_url);
      take("TANDEM_LB_COOKIE", settings.cookie);
      if (auto found = variables.find("TANDEM_SYSTEMD"); found != variables.end()) {
        settings.systemd = found->second != "no";
      }
    }
    for (const auto& entry : std::filesystem::directory_iterator(settings.config_dir, error)) {
      int port = 0;
      if (!entry.is_regular_file() || !is_port_file(entry.path(), port)) continue;
      const auto variables = read_env_file(entry.path());
      LocalInstance instance;
      instance.port = port;
      auto id = variables.find("TANDEM_ID");
      instance.id =
          id != variables.end() && !id->second.empty() ? id->second : "app-" + std::to_string(port);
      auto bind = variables.find("TANDEM_BIND");
      instance.address = bind == variables.end() ? "127.0.0.1" : bind->second;
      if (instance.address == "0.0.0.0" || instance.address.empty()) instance.address = "127.0.0.1";
      if (instance.address == "::") instance.address = "::1";
      settings.instances.push_back(std::move(instance));
    }
    if (error) {
      throw CtlError("cannot list " + settings.config_dir.string() + ": " + error.message(),
                     "run as root, or check the folder's permissions");
    }
  }
  std::sort(settings.instances.begin(), settings.instances.end(),
            [](const auto& a, const auto& b) { return a.port < b.port; });
  if (!overrides.socket.empty()) settings.socket = overrides.socket;
  if (!overrides.backend.empty()) settings.backend = overrides.backend;
  if (!overrides.lb_url.empty()) settings.lb_url = overrides.lb_url;
  if (!overrides.cookie.empty()) settings.cookie = overrides.cookie;
  return settings;
}

}  // namespace tandem::ctl
