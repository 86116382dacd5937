#include "rotation.hpp"

#include <algorithm>
#include <chrono>
#include <ostream>
#include <thread>

#include "error.hpp"
#include "http_get.hpp"

namespace tandem::ctl {
namespace {


}  // namespace

Rotation::Rotation(const Settings& settings, std::ostream* progress)
    : settings_(settings), api_(settings.socket), progress_(progress) {}

void Rotation::say(const std::string& line) const {
  if (progress_) *progress_ << line << std::endl;
}

std::vector<ServerStat> Rotation::servers() const {
  return api_.backend(settings_.backend).servers;
}

ServerStat Rotation::server(const std::string& id) const {
  const auto all = servers();
  auto found = std::find_if(all.begin(), all.end(), [&](const auto& s) { return s.name == id; });
  if (found == all.end()) {
    std::string names;
    for (const auto& s : all) names += (names.empty() ? "" : ", ") + s.name;
    throw CtlError("no instance \"" + id + "\" in HAProxy's backend " + settings_.backend,
                   "its servers are: " + (names.empty() ? "none" : names), kExitUsage);
  }
  return *found;
}

void Rotation::ensure_others_up(const std::string& id, int min_up, double peer_wait_s) const {
  server(id);  // An unknown id is a usage error before anything else.
  int up = 0;
  std::vector<std::string> not_up;
  const bool enough = poll_until(peer_wait_s, [&] {
    up = 0;
    not_up.clear();
    for (const auto& s : servers()) {
      if (s.name == id) continue;
      if (s.fully_up()) {
        ++up;
      } else {
        not_up.push_back(s.name + " " + s.status);
      }
    }
    return up >= min_up;
  });
  if (enough) return;
  std::string others;
  for (const auto& text : not_up) others += (others.empty() ? "" : ", ") + text;
  throw CtlError("refusing to take " + id + " out of rotation: " + std::to_string(up) +
                     " other instance(s) UP, at least " + std::to_string(min_up) + " needed" +
                     (others.empty() ? std::string() : " (" + others + ")"),
                 "bring another instance back first (tandemctl ready ID), or --force to take "
                 "it out anyway and leave HAProxy without enough servers",
                 kExitRefused);
}

void Rotation::set_state(const std::string& id, const std::string& state) const {
  server(id);
  api_.set_state(settings_.backend, id, state);
  say(id + ": " + state + " in HAProxy");
}

bool Rotation::wait_connections_gone(const std::string& id, double timeout_s) const {
  long long left = 0;
  const bool gone = poll_until(timeout_s, [&] {
    left = server(id).current;
    return left == 0;
  });
  say(id + (gone ? ": no connection left in HAProxy"
                 : ": still " + std::to_string(left) + " connection(s) after " +
                       std::to_string(static_cast<int>(timeout_s)) + " s"));
  return gone;
}

bool Rotation::wait_up(const std::string& id, double timeout_s) const {
  std::string status;
  const bool up = poll_until(timeout_s, [&] {
    const ServerStat s = server(id);
    status = s.status + (s.check_status.empty() ? "" : ", last check " + s.check_status);
    return s.fully_up();
  });
  say(id + (up ? ": UP, HAProxy's check passed" : ": not UP in time (" + status + ")"));
  return up;
}

bool Rotation::wait_traffic(const std::string& id, double timeout_s) const {
  const Endpoint frontend = parse_http_url(settings_.lb_url);
  std::string seen;
  const bool reached = poll_until(timeout_s, [&] {
    try {
      const HttpAnswer answer =
          http_get(frontend, "/", 2000, "Cookie: " + settings_.cookie + "=" + id);
      auto container = answer.headers.find("x-container-id");
      seen = container == answer.headers.end() ? "HTTP " + std::to_string(answer.status)
                                               : container->second;
      return seen == id;
    } catch (const CtlError& error) {
      seen = error.what();
      return false;
    }
  });
  say(id + (reached ? ": answers through " + settings_.lb_url
                    : ": not reached through " + settings_.lb_url + " (last: " + seen + ")"));
  return reached;
}

}  // namespace tandem::ctl
