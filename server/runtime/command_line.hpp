#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tandem/flags.hpp"

namespace tandem {

// A value refused after parsing (a flag that contradicts another): the whole line parse() prints
// after the program's name.
class BadValue : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The Flags of one program, on CLI11: each flag declared once with its environment variable, its
// check and its default, which CLI11 shows in --help and applies in order: the command line, else
// the environment, else the default.
class CommandLine final : public Flags {
 public:
  CommandLine(const std::string& program, const std::string& description,
              const std::string& version);

  void add_count(const std::string& name, const std::string& type_name, const std::string& help,
                 std::size_t* target, uint64_t min, uint64_t max) override;
  void add_port(const std::string& name, const std::string& help, uint16_t* target,
                bool zero_means_off) override;
  void add_duration(const std::string& name, const std::string& help,
                    std::chrono::milliseconds* target, bool whole_seconds) override;
  void add_text(const std::string& name, const std::string& type_name, const std::string& help,
                std::string* target, Check check) override;
  void add_switch(const std::string& name, const std::string& help, bool* target) override;
  void show_default(const std::string& name, const std::string& text) override;

  // Whether the flag was given on the command line (rather than by its variable or not at all).
  bool given(const std::string& name) const;
  // How a message names the flag: as the user set it (--name or TANDEM_NAME), else --name.
  std::string origin(const std::string& name) const;

  // What main should do after parse().
  struct Outcome {
    bool run = false;   // true: go on with the values the targets now hold.
    int exit_code = 0;  // When !run: 0 after --help/--version, 2 after a bad flag or value.
  };
  // Parses argv (and the environment); `validate` then checks what no one flag can (it throws
  // BadValue). --help and --version print to `out`; a bad flag or value prints one line to `err`.
  Outcome parse(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                const std::function<void()>& validate = {});

  // TANDEM_<NAME> for flag `name`.
  static std::string env_name(const std::string& name);

 private:
  // Declares --name: CLI11 reads it (or its variable), `check` refuses a bad text, `store`
  // turns a good one into the target's value; `default_text` is what --help shows.
  void add(const std::string& name, const std::string& type_name, const std::string& help,
           const std::string& default_text, Check check,
           std::function<void(const std::string&)> store);

  CLI::App app_;
  std::string program_;
  std::string version_line_;
  std::vector<std::pair<std::string, Check>> checks_;  // By flag name, for empty variables.
  std::vector<std::string> args_;                      // As given, for given().
};

class Application;
struct Config;

// Reads the command line and the environment: the runtime's flags into `config` (whose values
// are the defaults), the application's into the application. --help and --version print to
// `out`, a bad value one line to `err`.
CommandLine::Outcome read_command_line(Application& app, Config& config, int argc,
                                       const char* const* argv, std::ostream& out,
                                       std::ostream& err);

// Makes text safe to quote on one line: control characters would break the one-line promise.
std::string quote_value(const std::string& text);

// A switch's word, any case: 1, true, yes, on / 0, false, no, off; nullopt for anything else.
std::optional<bool> parse_switch(std::string text);

}  // namespace tandem
