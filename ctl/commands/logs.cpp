// tandemctl logs: the journal of every instance and HAProxy, merged in time order.
#include <poll.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "commands/commands.hpp"
#include "error.hpp"
#include "journal_reader.hpp"
#include "log_entry.hpp"
#include "log_filter.hpp"
#include "since.hpp"
#include "stop_signals.hpp"
#include "terminal.hpp"

namespace tandem::ctl {
namespace {

constexpr const char* kHaproxy = "haproxy";
constexpr int kDefaultLines = 20;

// Why a request may have left no entry, for the operator who looked for one in vain.
constexpr const char* kRequestNotLogged =
    "By default only the requests that went wrong are logged. HAProxy logs a 5xx, a retry or\n"
    "redispatch, a timeout, an aborted connection (its own 403 and 429 denials may be silenced);\n"
    "the instances log a 5xx and a slow request. To log every request, deploy with\n"
    "-e tandem_lb_log_requests=all -e tandem_app_access_log=all.\n";

struct LogsOptions {
  bool follow = false;
  int lines = kDefaultLines;
  std::vector<std::string> instances;
  std::string request;
  std::string since;
  bool json = false;
};

// Where the entries go: a line each, or JSON lines with --json. False once stdout is gone
// (a closed pipe: `tandemctl logs | head`), which ends the command quietly.
class Printer {
 public:
  Printer(bool json, bool colour) : json_(json), colour_(colour) {}
  bool print(const LogEntry& entry) {
    std::cout << (json_ ? entry_json(entry) : entry_line(entry, colour_)) << '\n';
    ++printed_;
    return static_cast<bool>(std::cout);
  }
  bool flush() { return static_cast<bool>(std::cout.flush()); }
  long printed() const { return printed_; }

 private:
  bool json_;
  bool colour_;
  long printed_ = 0;
};

// The units to read, each with the id its lines show (empty for HAProxy).
std::map<std::string, std::string> units_of(const Settings& settings,
                                            const std::vector<std::string>& only) {
  std::map<std::string, std::string> units;
  if (only.empty()) {
    units[kHaproxyUnit] = "";
    for (const auto& instance : settings.instances) units[instance.unit()] = instance.id;
    return units;
  }
  for (const auto& id : only) {
    if (id == kHaproxy) {
      units[kHaproxyUnit] = "";
      continue;
    }
    const LocalInstance* instance = settings.find(id);
    for (const auto& candidate : settings.instances) {
      if (instance == nullptr && std::to_string(candidate.port) == id) instance = &candidate;
    }
    if (instance == nullptr) {
      std::string names;
      for (const auto& i : settings.instances) {
        names += i.id + " (" + std::to_string(i.port) + "), ";
      }
      throw CtlError("no instance \"" + id + "\" on this host",
                     "--instance takes one of: " + names + "haproxy", kExitUsage);
    }
    units[instance->unit()] = instance->id;
  }
  return units;
}

// Prints the entries wanted from the current position to the end; false when output stopped
// (stdout gone, or a stop signal).
bool print_to_end(JournalReader& journal, const LogFilter& filter, Printer& printer,
                  const StopSignals* stop) {
  long seen = 0;
  while (journal.next()) {
    // A search through a long journal stays interruptible while following.
    if (stop != nullptr && ++seen % 1024 == 0 && stop->pending()) return false;
    const auto entry = filter.pass(journal.entry());
    if (entry && !printer.print(*entry)) return false;
  }
  return printer.flush();
}

// The last `limit` entries wanted (since `since_us`), printed oldest first. Leaves the journal
// where following must go on: after the newest matching entry, wanted or not.
bool print_last(JournalReader& journal, const LogFilter& filter, bool follow, std::size_t limit,
                std::uint64_t since_us, Printer& printer, const StopSignals* stop) {
  journal.seek_tail();
  std::vector<LogEntry> last;
  std::optional<std::string> newest;
  long seen = 0;
  while (journal.previous()) {
    if (!newest) newest = journal.cursor();
    if (last.size() >= limit || journal.realtime_us() < since_us) break;
    if (stop != nullptr && ++seen % 1024 == 0 && stop->pending()) return false;
    if (auto entry = filter.pass(journal.entry())) last.push_back(std::move(*entry));
  }
  for (auto it = last.rbegin(); it != last.rend(); ++it) {
    if (!printer.print(*it)) return false;
  }
  if (!printer.flush()) return false;
  if (!follow) return true;
  if (!newest) {
    // Nothing matched yet: whatever comes is new.
    journal.seek_head();
    return true;
  }
  journal.seek_cursor(*newest);
  if (journal.next() && !journal.at_cursor(*newest)) {
    // The newest entry was rotated away meanwhile: this one came after it.
    const auto entry = filter.pass(journal.entry());
    if (entry && !printer.print(*entry)) return false;
  }
  return true;
}

// New entries as they come, until a stop signal (or stdout goes).
void follow(JournalReader& journal, const LogFilter& filter, Printer& printer,
            const StopSignals& stop) {
  for (;;) {
    if (!print_to_end(journal, filter, printer, &stop)) return;
    pollfd fds[2] = {{journal.fd(), static_cast<short>(journal.events()), 0},
                     {stop.fd(), POLLIN, 0}};
    int timeout_ms = -1;
    if (const std::uint64_t until = journal.timeout_us(); until != UINT64_MAX) {
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      const std::uint64_t now_us =
          static_cast<std::uint64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
      // Rounded up, at most a minute: poll returns at the deadline, never a little before.
      timeout_ms =
          until <= now_us
              ? 0
              : static_cast<int>(std::min<std::uint64_t>((until - now_us + 999) / 1000, 60000));
    }
    if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR) {
      throw CtlError(std::string("poll(): ") + std::strerror(errno));
    }
    if (fds[1].revents != 0) return;
    journal.process();
  }
}

int run_logs(const Globals& globals, const LogsOptions& options, bool lines_given) {
  // Usage errors first, before the journal is opened.
  std::uint64_t since_us = 0;
  if (!options.since.empty()) {
    const auto since = parse_since(options.since, std::chrono::system_clock::now());
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(since.time_since_epoch()).count();
    since_us = micros > 0 ? static_cast<std::uint64_t>(micros) : 0;
  }
  const Settings settings = globals.settings();
  const auto units = units_of(settings, options.instances);

  // Asked for a request or a time, the operator wants all of it; else the last lines.
  const bool everything = !lines_given && (!options.request.empty() || !options.since.empty());
  const LogFilter filter(since_us, options.request);
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  // The same lines on a terminal and piped (grep, less, a file), coloured on a terminal only;
  // JSON when asked for.
  Printer printer(options.json, colour_wanted());
  // A closed pipe ends the output with a failed write, not with SIGPIPE's death.
  std::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<StopSignals> stop;
  if (options.follow) stop = std::make_unique<StopSignals>();

  JournalReader journal;
  journal.only_units(units);
  // Watching starts before reading, so nothing logged in between is missed.
  if (options.follow) journal.fd();
  bool going = true;
  if (everything) {
    if (options.since.empty()) {
      journal.seek_head();
    } else {
      journal.seek_realtime(since_us);
    }
    going = print_to_end(journal, filter, printer, stop.get());
  } else {
    going = print_last(journal, filter, options.follow, static_cast<std::size_t>(options.lines),
                       since_us, printer, stop.get());
  }
  if (printer.printed() == 0 && terminal && !options.follow) {
    std::cerr << "-- no entries"
              << (options.request.empty() ? "" : " of request " + options.request)
              << (options.since.empty() ? "" : " since " + options.since) << " --\n";
    if (!options.request.empty()) std::cerr << kRequestNotLogged;
  }
  if (going && options.follow) follow(journal, filter, printer, *stop);
  return kExitOk;
}

}  // namespace

void add_logs(CLI::App& app, const Globals& globals, Runner& run) {
  auto options = std::make_shared<LogsOptions>();
  CLI::App* command = app.add_subcommand(
      "logs",
      "The journal of this host's instances (tandem@<port>.service, from the <port>.env files) "
      "and of HAProxy (haproxy.service), merged in time order: what their processes logged and "
      "what systemd logged about their units and their crashes. By default the last 20 "
      "entries. One line per entry, on a terminal as piped: local time, source (instance id or "
      "haproxy) and message, its further lines indented under it; on a terminal, errors red and "
      "warnings yellow. With --json: one JSON object per line (time in UTC with microseconds, "
      "unit, instance, priority, pid, request_id when known, message). Reads the "
      "system journal: needs root or the systemd-journal group. No entry: prints nothing, "
      "exit 0.");
  command->add_flag("-f,--follow", options->follow,
                    "Then print new entries as they are logged, until SIGINT (Ctrl-C) or SIGTERM "
                    "(exit 0)");
  CLI::Option* lines =
      command
          ->add_option("-n,--lines", options->lines,
                       "The last N entries (default 20; with --request or --since: all of them)")
          ->check(CLI::NonNegativeNumber);
  command->add_option("--instance", options->instances,
                      "Only this instance: its id (TANDEM_ID) or port, or haproxy for HAProxy's "
                      "alone. Repeatable: --instance app-1 --instance haproxy");
  command->add_option(
      "--request", options->request,
      "Only the entries of the request with this id (the X-Request-ID HAProxy answered with): "
      "the instance's, by its TANDEM_REQUEST_ID field, and HAProxy's, by the id that ends its "
      "line; the whole id, not a part. "
      "Searches the whole journal unless --since or -n bounds it");
  command->add_option("--since", options->since,
                      std::string("Only entries logged since then: ") + kSinceForms +
                          "; every entry since then unless -n is given");
  command->add_flag("--json", options->json, "One JSON object per line instead");
  command->callback([&globals, &run, options, lines] {
    const bool lines_given = lines->count() > 0;
    run = [&globals, options, lines_given] { return run_logs(globals, *options, lines_given); };
  });
}

}  // namespace tandem::ctl
