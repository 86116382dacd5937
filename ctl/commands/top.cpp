// tandemctl top: a live view of the instances, refreshed every second.
#include <CLI/CLI.hpp>

#include "commands/commands.hpp"
#include "error.hpp"

namespace tandem::ctl {

void add_top(CLI::App& app, const Globals& globals, Runner& run) {
  CLI::App* command =
      app.add_subcommand("top", "A live view of the instances, refreshed every second.");
  command->callback([&globals, &run] {
    run = [&globals]() -> int {
      (void)globals;
      throw CtlError("top: not built yet", {}, kExitFailed);
    };
  });
}

}  // namespace tandem::ctl
