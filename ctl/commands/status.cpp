// tandemctl status: one line per instance, then HAProxy; exit 3 when an instance that should
// serve is not UP.
#include <json/json.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "commands/commands.hpp"
#include "error.hpp"
#include "fleet.hpp"
#include "terminal.hpp"

namespace tandem::ctl {
namespace {

struct StatusOptions {
  bool json = false;
  double interval_s = 1.0;
  std::vector<std::string> only;
};

std::string number(double value, const char* format) {
  char text[32];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

std::string check_text(const ServerStat& server) {
  std::string text = server.check_status.empty() ? "-" : server.check_status;
  if (!server.check_code.empty()) text += "/" + server.check_code;
  if (server.check_ms >= 0) text += " " + std::to_string(server.check_ms) + "ms";
  return text;
}

void print_table(const FleetView& fleet) {
  const bool colour = colour_wanted();
  const char* columns[] = {"ID",    "PORT",     "PID",   "VERSION", "UPTIME", "HAPROXY", "CHECK",
                           "CONNS", "SESSIONS", "REQ/S", "P99",     "ERR/S",  "RESTARTS"};
  const std::size_t widths[] = {10, 6, 8, 9, 8, 8, 15, 6, 9, 8, 8, 6, 8};
  std::string header;
  for (std::size_t i = 0; i < std::size(columns); ++i) header += pad(columns[i], widths[i]);
  std::cout << paint(header, Colour::kBold, colour) << "\n";
  for (const auto& view : fleet.instances) {
    const bool reachable = view.probe.reachable;
    const std::string state = view.server ? view.server->status : "-";
    const std::string pid = view.pid ? std::to_string(view.pid) : "-";
    const std::string restarts =
        view.unit && view.unit->loaded ? std::to_string(view.unit->restarts) : "-";
    std::string line;
    line += pad(view.id, widths[0]);
    line += pad(view.port ? std::to_string(view.port) : "-", widths[1]);
    line += pad(pid, widths[2]);
    line += pad(reachable ? view.probe.version : "-", widths[3]);
    line += pad(reachable ? format_duration(view.probe.uptime_s) : "-", widths[4]);
    line +=
        paint(pad(state, widths[5]), state_colour(view.server ? view.server->state() : ""), colour);
    line += pad(view.server ? check_text(*view.server) : "-", widths[6]);
    line += pad(view.server ? std::to_string(view.server->current) : "-", widths[7]);
    line += pad(reachable && view.probe.sessions >= 0 ? std::to_string(view.probe.sessions) : "-",
                widths[8]);
    line += pad(reachable ? number(view.rates.requests_per_s, "%.1f") : "-", widths[9]);
    line += pad(reachable ? format_latency(view.rates.p99_s) : "-", widths[10]);
    line += pad(reachable ? number(view.rates.errors_per_s, "%.1f") : "-", widths[11]);
    line += restarts;
    std::cout << line;
    if (!reachable) std::cout << "  " << paint(view.probe.error, Colour::kRed, colour);
    if (view.unit && view.unit->loaded && view.unit->active_state != "active") {
      std::cout << "  " << paint("unit " + view.unit->active_state, Colour::kRed, colour);
    }
    if (!view.expected()) std::cout << "  (unit disabled)";
    std::cout << "\n";
  }
  if (fleet.haproxy) {
    const auto& info = *fleet.haproxy;
    std::cout << "haproxy " << info.version << "  pid " << info.pid << "  up "
              << format_duration(static_cast<double>(info.uptime_s)) << "  connections "
              << info.current_connections << "/" << info.max_connections << "  queue "
              << (fleet.backend ? fleet.backend->queued : 0) << "\n";
  } else {
    std::cout << "haproxy " << paint("unreachable", Colour::kRed, colour) << ": "
              << fleet.haproxy_error << "\n";
  }
}

int run_status(const Globals& globals, const StatusOptions& options) {
  const Settings settings = globals.settings();
  const FleetView fleet = read_fleet(settings, options.interval_s, options.only);
  if (options.json) {
    Json::StreamWriterBuilder writer;
    writer["indentation"] = "  ";
    std::cout << Json::writeString(writer, fleet_json(fleet)) << "\n";
  } else {
    print_table(fleet);
  }
  if (!fleet.haproxy_error.empty()) {
    throw CtlError(fleet.haproxy_error, fleet.haproxy_hint);
  }
  return fleet.all_up() ? kExitOk : kExitNotUp;
}

}  // namespace

void add_status(CLI::App& app, const Globals& globals, Runner& run) {
  auto options = std::make_shared<StatusOptions>();
  CLI::App* command = app.add_subcommand(
      "status",
      "One line per instance (HAProxy's state and last check, connections, sessions, req/s and "
      "p99 over the last second, restarts), then HAProxy. Exit 3 when an instance that should "
      "serve is not UP.");
  command->add_flag("--json", options->json, "Print the same as JSON, for machines");
  command
      ->add_option("--interval", options->interval_s,
                   "Seconds between the two samples that rates come from (0: no rates)")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();
  command->add_option("--server", options->only,
                      "Only this instance (repeatable); the exit status then counts it alone");
  command->callback([&globals, &run, options] {
    run = [&globals, options] { return run_status(globals, *options); };
  });
}

}  // namespace tandem::ctl
