#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace tandem {

// The command line an instance is started with. Every flag --name is also the environment
// variable TANDEM_NAME (dashes become underscores; a flag given on the command line wins), is
// listed by --help with its default and variable, and refuses a bad value with one line on stderr
// and exit code 2 before anything listens. The runtime declares its flags here, and an
// application adds its own to the same parser (Application::add_flags).
class Flags {
 public:
  // Checks a text value: nullopt when it is good, else what is wrong with it ("is not ...").
  using Check = std::function<std::optional<std::string>(const std::string&)>;

  virtual ~Flags() = default;

  // --name N: a whole number from min to max. `*target` holds the default and gets the value.
  virtual void add_count(const std::string& name, const std::string& type_name,
                         const std::string& help, std::size_t* target, uint64_t min,
                         uint64_t max) = 0;
  // --name PORT: a port number 1-65535, or 0 too when `zero_means_off`.
  virtual void add_port(const std::string& name, const std::string& help, uint16_t* target,
                        bool zero_means_off) = 0;
  // --name DURATION: 250ms, 2s, 1m, 1h or bare seconds, above zero; with `whole_seconds` a
  // multiple of a second.
  virtual void add_duration(const std::string& name, const std::string& help,
                            std::chrono::milliseconds* target, bool whole_seconds) = 0;
  // --name TEXT, accepted when `check` finds nothing wrong.
  virtual void add_text(const std::string& name, const std::string& type_name,
                        const std::string& help, std::string* target, Check check) = 0;
  // --name: a switch (on when given; the variable takes 1/0, true/false, yes/no, on/off).
  virtual void add_switch(const std::string& name, const std::string& help, bool* target) = 0;
  // Shows `text` as the flag's default in --help instead of the target's value ("app-<port>").
  virtual void show_default(const std::string& name, const std::string& text) = 0;
};

}  // namespace tandem
