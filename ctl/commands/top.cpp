// tandemctl top: a live view of the instances and HAProxy, refreshed every second, until q.
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>

#include "commands/commands.hpp"
#include "error.hpp"
#include "fleet.hpp"
#include "full_screen.hpp"
#include "terminal.hpp"
#include "top_frame.hpp"

namespace tandem::ctl {
namespace {

struct TopOptions {
  double interval_s = 1.0;
};

std::string wall_clock() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char text[16];
  std::strftime(text, sizeof(text), "%H:%M:%S", &local);
  return text;
}

int run_top(const Globals& globals, const TopOptions& options) {
  // A live view drawn with cursor moves means nothing in a pipe or a file, and keys cannot be
  // read without a terminal: refused before anything is read, pointing at the one-shot form.
  const bool in = ::isatty(STDIN_FILENO) == 1, out = ::isatty(STDOUT_FILENO) == 1;
  if (!in || !out) {
    throw CtlError(
        std::string("top needs a terminal, and its ") + (out ? "stdin" : "stdout") + " is not one",
        "tandemctl status prints the same view once (status --json for scripts)", kExitUsage);
  }
  const Settings settings = globals.settings();
  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options.interval_s));
  FullScreen screen;  // Gives the terminal back when this function ends, however it ends.
  TopFrameContext context;
  context.interval_s = options.interval_s;
  context.colour = colour_wanted();
  context.backend = settings.backend;
  std::optional<FleetView> last;
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    switch (screen.wait(next)) {
      case FullScreen::Event::kQuit:
        return kExitOk;
      case FullScreen::Event::kResize:
        break;
      case FullScreen::Event::kTimeout: {
        // Each tick reads HAProxy again (it may come back, or an instance change state) and
        // probes each instance once; the rates are against the previous tick's probes.
        next += interval;
        FleetView fleet = read_topology(settings);
        probe_fleet(fleet, last ? &*last : nullptr);
        last = std::move(fleet);
        context.clock = wall_clock();
        // A sample slower than the interval (an instance that does not answer) is followed by
        // the next at once rather than by a burst of catching up.
        next = std::max(next, std::chrono::steady_clock::now());
        break;
      }
    }
    context.rows = static_cast<std::size_t>(screen.size().rows);
    if (last) screen.draw(top_frame(*last, context));
  }
}

}  // namespace

void add_top(CLI::App& app, const Globals& globals, Runner& run) {
  auto options = std::make_shared<TopOptions>();
  CLI::App* command = app.add_subcommand(
      "top",
      "A live view, refreshed every second: HAProxy's connections and queue, then per instance "
      "its state in HAProxy, req/s and share of them, p99, errors/s, connections, sessions and "
      "uptime. q or Ctrl-C quits, as do SIGTERM, SIGINT and SIGHUP, with the terminal restored "
      "and exit status 0. Needs a terminal on stdin and stdout, else exits 2: tandemctl status "
      "is the one-shot form, and status --json the one for scripts.");
  command
      ->add_option("--interval", options->interval_s,
                   "Seconds between two samples; the rates are over that time")
      ->check(CLI::Range(0.1, 60.0))
      ->capture_default_str();
  command->callback([&globals, &run, options] {
    run = [&globals, options] { return run_top(globals, *options); };
  });
}

}  // namespace tandem::ctl
