// tandemctl drain|ready|maint ID: one server in or out of rotation through HAProxy's runtime API,
// refusing to take the last UP one out.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "commands/commands.hpp"
#include "error.hpp"
#include "rotation.hpp"

namespace tandem::ctl {
namespace {

struct RotationOptions {
  std::string state;  // drain, ready, maint.
  std::string id;
  double wait_s = -1;  // < 0: --wait not given.
  bool force = false;
  bool check_only = false;
  int min_up = 1;
  double peer_wait_s = 5;
};

int run_rotation(const Globals& globals, const RotationOptions& options) {
  const Settings settings = globals.settings();
  const Rotation rotation(settings, &std::cerr);
  const bool out = options.state != "ready";
  if (out && !options.force) {
    rotation.ensure_others_up(options.id, options.min_up, options.peer_wait_s);
  } else {
    rotation.server(options.id);
  }
  if (options.check_only) {
    std::cout << options.id << " can be taken out of rotation\n";
    return kExitOk;
  }
  rotation.set_state(options.id, options.state);
  if (options.wait_s < 0) return kExitOk;
  bool done;
  if (out) {
    done = rotation.wait_connections_gone(options.id, options.wait_s);
  } else {
    // One bound for both: HAProxy's check, then a request through the frontend.
    const auto start = std::chrono::steady_clock::now();
    done = rotation.wait_up(options.id, options.wait_s);
    if (done) {
      const double spent =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      done = rotation.wait_traffic(options.id, std::max(0.0, options.wait_s - spent));
    }
  }
  return done ? kExitOk : kExitTimeout;
}

void add_one(CLI::App& app, const Globals& globals, Runner& run, const std::string& state,
             const std::string& description) {
  auto options = std::make_shared<RotationOptions>();
  options->state = state;
  CLI::App* command = app.add_subcommand(state, description);
  command->add_option("ID", options->id, "The instance's id (HAProxy's server name)")->required();
  const bool out = state != "ready";
  command
      ->add_option("--wait", options->wait_s,
                   out ? "Then wait until HAProxy counts no connection on it, at most SECONDS "
                         "(default 30); exit 5 if they remain"
                       : "Then wait until HAProxy's check has passed and a request through this "
                         "host's frontend reaches it, at most SECONDS (default 30); exit 5 if not")
      ->expected(0, 1)
      ->default_str("30")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 3600.0));
  if (out) {
    command->add_flag("--force", options->force,
                      "Take it out even if that leaves fewer than --min-up others UP");
    command->add_flag("--check", options->check_only,
                      "Only say whether it may be taken out (exit 0) or not (exit 4)");
    command->add_option("--min-up", options->min_up, "Other instances that must stay UP")
        ->check(CLI::Range(0, 1000))
        ->capture_default_str();
    command
        ->add_option("--peer-wait", options->peer_wait_s,
                     "Seconds to wait for another instance on its way back (UP 1/2) to be UP")
        ->check(CLI::Range(0.0, 600.0))
        ->capture_default_str();
  }
  command->callback([&globals, &run, options] {
    run = [&globals, options] { return run_rotation(globals, *options); };
  });
}

}  // namespace

void add_rotation(CLI::App& app, const Globals& globals, Runner& run) {
  add_one(app, globals, run, "drain",
          "Drain an instance: new clients go elsewhere, clients whose stickiness cookie names it "
          "still come. Refused when it would leave fewer than --min-up others UP.");
  add_one(app, globals, run, "ready", "Put an instance back in rotation.");
  add_one(app, globals, run, "maint",
          "Take an instance out entirely: even its sticky clients go elsewhere. Refused like "
          "drain.");
}

}  // namespace tandem::ctl
