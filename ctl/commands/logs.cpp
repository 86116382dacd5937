// tandemctl logs: the journal of every instance and HAProxy, merged in time order.
#include <CLI/CLI.hpp>

#include "commands/commands.hpp"
#include "error.hpp"

namespace tandem::ctl {

void add_logs(CLI::App& app, const Globals& globals, Runner& run) {
  CLI::App* command = app.add_subcommand(
      "logs", "The journal of every instance and HAProxy, merged in time order.");
  command->callback([&globals, &run] {
    run = [&globals]() -> int {
      (void)globals;
      throw CtlError("logs: not built yet", {}, kExitFailed);
    };
  });
}

}  // namespace tandem::ctl
