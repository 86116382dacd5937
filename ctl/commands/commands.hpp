#pragma once

#include <functional>
#include <string>

#include "settings.hpp"

namespace CLI {
class App;
}

namespace tandem::ctl {

// The options every command shares, filled in by the parser before a command runs.
struct Globals {
  Overrides overrides;
  Settings settings() const { return load_settings(overrides); }
};

// A parsed command, ready to run; returns the exit status.
using Runner = std::function<int()>;

// Each adds its subcommand(s) to the application; the one the command line names sets `run`.
void add_status(CLI::App& app, const Globals& globals, Runner& run);
void add_rotation(CLI::App& app, const Globals& globals, Runner& run);  // drain, ready, maint.
void add_restart(CLI::App& app, const Globals& globals, Runner& run);
void add_logs(CLI::App& app, const Globals& globals, Runner& run);
void add_top(CLI::App& app, const Globals& globals, Runner& run);

}  // namespace tandem::ctl
