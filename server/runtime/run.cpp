#include <uv.h>

#include <exception>
#include <iostream>

#include "runtime/command_line.hpp"
#include "runtime/config.hpp"
#include "runtime/server.hpp"
#include "tandem/application.hpp"

namespace tandem {

CommandLine::Outcome read_command_line(Application& app, Config& config, int argc,
                                       const char* const* argv, std::ostream& out,
                                       std::ostream& err) {
  CommandLine command_line(app.name(), app.description(), app.version());
  add_runtime_flags(command_line, config);
  app.add_flags(command_line);
  return command_line.parse(argc, argv, out, err,
                            [&] { check_runtime_config(command_line, config); });
}

int run(Application& app, int argc, const char* const* argv) {
  Config config;
  CommandLine::Outcome outcome = read_command_line(app, config, argc, argv, std::cout, std::cerr);
  if (!outcome.run) return outcome.exit_code;

  Log log(config.instance_id);
  uv_loop_t loop;
  int result = uv_loop_init(&loop);
  if (result != 0) {
    std::cerr << app.name() << ": cannot create the event loop: " << uv_strerror(result) << "\n";
    return 1;
  }
  int exit_code = 1;
  try {
    Server server(&loop, config, log, app);
    exit_code = server.run();
  } catch (const std::exception& e) {
    log.error("start_failed", {{"error", e.what()}});
    std::cerr << app.name() << ": " << e.what() << "\n";
    exit_code = 1;
  }
  // Every handle is closed by now; running the loop once more lets their close callbacks finish.
  uv_walk(
      &loop,
      [](uv_handle_t* handle, void*) {
        if (!uv_is_closing(handle)) uv_close(handle, nullptr);
      },
      nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  result = uv_loop_close(&loop);
  if (result != 0) {
    log.error("loop_close_failed", {{"error", uv_err_name(result)}});
    return exit_code == 0 ? 1 : exit_code;
  }
  return exit_code;
}

}  // namespace tandem
