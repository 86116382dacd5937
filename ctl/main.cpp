// tandemctl: the operator's command line for the tandem instances of a host and their HAProxy.
#include <CLI/CLI.hpp>

#include <iostream>

#include "commands/commands.hpp"
#include "error.hpp"

namespace {

constexpr const char* kFooter =
    "Exit status: 0 done; 1 failed (what to do is printed); 2 bad arguments or unknown "
    "instance; 3 status: an instance that should serve is not UP; 4 refused: it would leave too "
    "few instances UP; 5 --wait's bound passed first.\n"
    "Files: /etc/tandem/<port>.env (one per instance, as the units read them) and "
    "/etc/tandem/tandemctl.conf (TANDEM_LB_SOCKET, TANDEM_LB_BACKEND, TANDEM_LB_URL, "
    "TANDEM_LB_COOKIE). The runtime socket needs root or the haproxy group; the journal that logs "
    "reads, root or the systemd-journal group.\n"
    "See tandemctl(1).";

}  // namespace

int main(int argc, char** argv) {
  using namespace tandem::ctl;
  CLI::App app{"tandemctl: the tandem instances of this host and their HAProxy, in one command.",
               "tandemctl"};
  app.set_version_flag("--version", std::string("tandemctl ") + TANDEM_CTL_VERSION);
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();
  Globals globals;
  app.add_option("--config-dir", globals.overrides.config_dir,
                 "Folder of the instances' <port>.env files and tandemctl.conf")
      ->default_str("/etc/tandem")
      ->envname("TANDEM_CONFIG_DIR");
  app.add_option("--socket", globals.overrides.socket,
                 "HAProxy's runtime API socket (default: TANDEM_LB_SOCKET, else "
                 "/run/haproxy/admin.sock)");
  app.add_option("--backend", globals.overrides.backend,
                 "HAProxy's backend of the instances (default: TANDEM_LB_BACKEND, else tandem)");
  app.add_option("--url", globals.overrides.lb_url,
                 "This host's public frontend, for the traffic check: http:// or https:// (the "
                 "certificate is not verified) (default: TANDEM_LB_URL, else http://127.0.0.1:80)");
  app.add_option("--cookie", globals.overrides.cookie,
                 "The stickiness cookie's name (default: TANDEM_LB_COOKIE, else tandem_instance)");
  Runner run;
  add_status(app, globals, run);
  add_rotation(app, globals, run);
  add_restart(app, globals, run);
  add_logs(app, globals, run);
  add_top(app, globals, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? kExitOk : kExitUsage;
  }
  try {
    return run();
  } catch (const CtlError& error) {
    std::cerr << "tandemctl: " << error.what() << "\n";
    if (!error.hint().empty()) std::cerr << "  " << error.hint() << "\n";
    return error.status();
  } catch (const std::exception& error) {
    std::cerr << "tandemctl: " << error.what() << "\n";
    return kExitFailed;
  }
}
