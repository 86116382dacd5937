// libFuzzer target: raw bytes into the request path (llhttp parser, limits, router, handlers,
// CPU worker, response writer), split into reads at fuzzer-chosen points, the way a socket would
// deliver them, with the parser paused after each request (and resumed with what it left) when
// the fuzzer says so, the way a connection bounds pipelining. Whatever the input, nothing may
// crash, leak, or trip a sanitizer, and every request the parser accepts must get exactly one
// well-formed answer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <uv.h>

#include "app/demo_app.hpp"
#include "http/request_parser.hpp"
#include "runtime/dispatcher.hpp"
#include "runtime/metrics.hpp"
#include "tandem/log.hpp"
#include "tandem/response.hpp"

namespace {

// The loop, initialised before the members that take it (members initialise in declaration order).
struct Loop {
  Loop() { uv_loop_init(&loop); }
  uv_loop_t loop;
};

struct Harness : tandem::RequestSink {
  Harness() { app.install(router, services); }

  Loop loop_holder;
  uv_loop_t& loop = loop_holder.loop;
  std::FILE* log_sink = std::fopen("/dev/null", "w");
  tandem::Log log{"fuzz", log_sink};
  tandem::Metrics metrics{"fuzz"};
  tandem::CpuWorker worker{&loop, 4, log};
  std::string instance_id = "fuzz";
  tandem::Router router;
  tandem::Dispatcher dispatcher{router, metrics};
  tandem::Services services{&loop, instance_id, log, worker, metrics};
  tandem::DemoApp app{tandem::DemoSettings{"memory", 64, 64 * 1024, std::chrono::seconds(60)}};
  std::string out;
  bool pause = false;

  void on_request_started() override {}
  std::size_t body_limit(const tandem::Request& head) override {
    return dispatcher.body_limit(head);
  }
  void on_expect_continue() override {}
  Next on_request(tandem::Request&& request) override {
    // The CPU-bound route would only make the fuzzer slow, not find anything.
    if (request.path() == "/api/load-test") request.target = "/api/load-test?iterations=10";
    int answers = 0;
    dispatcher.handle(request, [&](tandem::Response response) {
      ++answers;
      tandem::append_response(out, response,
                              tandem::ResponseFrame{"fuzz", "date", true, false, false});
    });
    // The worker answers on a later turn of the loop; bounded, as each turn waits for it.
    for (int turns = 0; answers == 0 && turns < 100; ++turns) uv_run(&loop, UV_RUN_ONCE);
    if (answers != 1) std::abort();
    if (out.compare(0, 9, "HTTP/1.1 ") != 0) std::abort();
    out.clear();
    return pause ? Next::kPause : Next::kContinue;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static Harness harness;  // One app for all inputs, like one long-lived server.
  if (size == 0) return 0;
  // The first byte chooses where reads are split and whether the sink pauses after each
  // request; small limits make the limit paths reachable.
  std::size_t step = 1 + data[0] % 64;
  harness.pause = (data[0] & 0x80) != 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  tandem::RequestParser parser(tandem::RequestParser::Limits{512, 256, 16}, harness);
  while (!input.empty()) {
    std::size_t take = std::min(step, input.size());
    if (auto error = parser.feed(input.substr(0, take))) {
      if (error->status < 400 || error->status > 599) std::abort();
      break;
    }
    if (parser.paused()) {
      // What the pause left is fed again, as a connection feeds its backlog.
      take = parser.consumed();
      parser.resume();
    }
    if (parser.stopped()) break;
    input.remove_prefix(take);
  }
  parser.finish();
  return 0;
}
