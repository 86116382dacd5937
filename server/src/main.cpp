#include <uv.h>

#include <exception>
#include <iostream>

#include "config.hpp"
#include "log.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
  tandem::ConfigOutcome outcome =
      tandem::parse_config(argc, argv, tandem::process_env, std::cout, std::cerr);
  if (!outcome.run) return outcome.exit_code;
  tandem::Config& config = outcome.config;
  if (config.id.empty()) config.id = "app-" + std::to_string(config.port);

  tandem::Log log(config.id);
  uv_loop_t loop;
  int result = uv_loop_init(&loop);
  if (result != 0) {
    std::cerr << "tandem-server: cannot create the event loop: " << uv_strerror(result) << "\n";
    return 1;
  }
  int exit_code = 1;
  try {
    tandem::Server server(&loop, config, log);
    exit_code = server.run();
  } catch (const std::exception& e) {
    // Start-up failures (an unusable session store, say) are reported once, then the loop's
    // remaining handles are closed below.
    log.error("start_failed", {{"error", e.what()}});
    std::cerr << "tandem-server: " << e.what() << "\n";
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
