#include "top_frame.hpp"

#include <cstdio>

#include "terminal.hpp"

namespace tandem::ctl {
namespace {

constexpr std::size_t kIdMinWidth = 10;
constexpr const char* kTitles[] = {"HAPROXY", "REQ/S", "SHARE",    "P99",
                                   "ERR/S",   "CONNS", "SESSIONS", "UPTIME"};
constexpr std::size_t kWidths[] = {9, 9, 7, 9, 8, 7, 9, 8};

std::string number(double value, const char* format) {
  char text[32];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

// "GET http://127.0.0.1:3001/health: Connection refused" as "Connection refused": the row
// already says which instance, and the reason is what must fit in the width.
std::string reason(const std::string& error) {
  const auto colon = error.find(": ");
  return error.rfind("GET ", 0) == 0 && colon != std::string::npos ? error.substr(colon + 2)
                                                                   : error;
}

std::string header(const FleetView& fleet, const TopFrameContext& context) {
  std::string line = paint("tandemctl top", Colour::kBold, context.colour) + "  " + context.clock;
  if (!fleet.haproxy) {
    return line + "  haproxy " +
           paint("unreachable: " + fleet.haproxy_error, Colour::kRed, context.colour);
  }
  const HaproxyInfo& info = *fleet.haproxy;
  line += "  haproxy " + info.version + "  conns " + std::to_string(info.current_connections) +
          "/" + std::to_string(info.max_connections);
  if (fleet.backend) {
    const std::string queue = "queue " + std::to_string(fleet.backend->queued);
    line +=
        "  " + context.backend + " " +
        paint(queue, fleet.backend->queued > 0 ? Colour::kYellow : Colour::kNone, context.colour);
  } else {
    line += "  " + paint("no backend " + context.backend, Colour::kRed, context.colour);
  }
  return line;
}

std::string instance_row(const InstanceView& view, std::size_t id_width, double total_rate,
                         bool colour) {
  const std::string status = view.server ? view.server->status : "-";
  std::string line = pad(view.id, id_width);
  line +=
      paint(pad(status, kWidths[0]), state_colour(view.server ? view.server->state() : ""), colour);
  if (!view.probe.reachable) {
    return line + paint("unreachable: " + reason(view.probe.error), Colour::kRed, colour);
  }
  const InstanceRates& rates = view.rates;
  const bool measured = rates.measured;
  line += pad(measured ? number(rates.requests_per_s, "%.1f") : "-", kWidths[1]);
  line +=
      pad(measured && total_rate > 0 ? number(100 * rates.requests_per_s / total_rate, "%.1f") + "%"
                                     : "-",
          kWidths[2]);
  line += pad(measured ? format_latency(rates.p99_s) : "-", kWidths[3]);
  const std::string errors = measured ? number(rates.errors_per_s, "%.1f") : "-";
  line += paint(pad(errors, kWidths[4]),
                measured && rates.errors_per_s > 0 ? Colour::kRed : Colour::kNone, colour);
  line += pad(view.server ? std::to_string(view.server->current) : "-", kWidths[5]);
  line += pad(view.probe.sessions >= 0 ? std::to_string(view.probe.sessions) : "-", kWidths[6]);
  line += format_duration(view.probe.uptime_s);
  return line;
}

std::string total_row(const FleetView& fleet, std::size_t id_width, double total_rate) {
  double errors = 0;
  long long connections = 0, sessions = 0;
  bool measured = false;
  for (const auto& view : fleet.instances) {
    measured = measured || view.rates.measured;
    errors += view.rates.errors_per_s;
    if (view.server) connections += view.server->current;
    if (view.probe.reachable && view.probe.sessions > 0) sessions += view.probe.sessions;
  }
  std::string line = pad("total", id_width) + pad("", kWidths[0]);
  line += pad(measured ? number(total_rate, "%.1f") : "-", kWidths[1]);
  line += pad(measured && total_rate > 0 ? "100%" : "-", kWidths[2]);
  line += pad("", kWidths[3]);
  line += pad(measured ? number(errors, "%.1f") : "-", kWidths[4]);
  line += pad(std::to_string(connections), kWidths[5]);
  line += std::to_string(sessions);
  return line;
}

}  // namespace

std::vector<std::string> top_frame(const FleetView& fleet, const TopFrameContext& context) {
  std::size_t id_width = kIdMinWidth;
  double total_rate = 0;
  for (const auto& view : fleet.instances) {
    id_width = std::max(id_width, view.id.size() + 2);
    if (view.rates.measured) total_rate += view.rates.requests_per_s;
  }
  std::vector<std::string> lines;
  lines.push_back(header(fleet, context));
  // The hint under an unreachable HAProxy: what the operator does while the view waits.
  lines.push_back(fleet.haproxy ? ""
                                : paint("  " + fleet.haproxy_hint, Colour::kGrey, context.colour));
  std::string titles = pad("ID", id_width);
  for (std::size_t i = 0; i < std::size(kTitles); ++i) titles += pad(kTitles[i], kWidths[i]);
  lines.push_back(paint(titles, Colour::kBold, context.colour));
  // Header and titles, then the instances, then the total, a blank line and the footer: the
  // instances give way first when the screen is short.
  const std::size_t fixed = lines.size() + 3;
  const std::size_t room = context.rows > fixed ? context.rows - fixed : 0;
  const std::size_t shown = std::min(room, fleet.instances.size());
  for (std::size_t i = 0; i < shown; ++i) {
    lines.push_back(instance_row(fleet.instances[i], id_width, total_rate, context.colour));
  }
  lines.push_back(total_row(fleet, id_width, total_rate));
  lines.push_back("");
  std::string footer = paint("q", Colour::kBold, context.colour) + " quit   every " +
                       number(context.interval_s, "%g") + "s";
  if (const std::size_t hidden = fleet.instances.size() - shown; hidden > 0) {
    footer += "   " + paint(std::to_string(hidden) + (hidden == 1 ? " instance" : " instances") +
                                " not shown: a taller window shows them",
                            Colour::kYellow, context.colour);
  }
  lines.push_back(footer);
  if (lines.size() > context.rows) lines.resize(context.rows);
  return lines;
}

}  // namespace tandem::ctl
