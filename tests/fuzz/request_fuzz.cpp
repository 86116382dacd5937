// libFuzzer target: raw bytes into the request path (llhttp parser, limits, router, handlers,
// response writer), split into reads at fuzzer-chosen points, the way a socket would deliver them.
// Whatever the input, nothing may crash, leak, or trip a sanitizer, and every request the parser
// accepts must get exactly one well-formed answer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "app.hpp"
#include "memory_session_store.hpp"
#include "request_parser.hpp"
#include "response.hpp"

namespace {

struct Harness : tandem::RequestSink {
  tandem::Config config;
  tandem::Metrics metrics{"fuzz"};
  tandem::MemorySessionStore sessions{64, std::chrono::seconds(60)};
  tandem::ServerStatus status;
  tandem::App app{config, metrics, sessions, status};
  std::string out;

  void on_request_started() override {}
  void on_expect_continue() override {}
  bool on_request(tandem::Request&& request) override {
    // The CPU-bound route would only make the fuzzer slow, not find anything.
    if (request.path() == "/api/load-test") request.target = "/api/load-test?iterations=10";
    int answers = 0;
    app.handle(request, [&](tandem::Response response) {
      ++answers;
      tandem::append_response(out, response,
                              tandem::ResponseFrame{"fuzz", "date", true, false, false});
    });
    if (answers != 1) std::abort();
    if (out.compare(0, 9, "HTTP/1.1 ") != 0) std::abort();
    out.clear();
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static Harness harness;  // One app for all inputs, like one long-lived server.
  if (size == 0) return 0;
  // The first byte chooses where reads are split; small limits make the limit paths reachable.
  std::size_t step = 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  tandem::RequestParser parser(tandem::RequestParser::Limits{512, 256, 16}, harness);
  while (!input.empty()) {
    std::size_t take = std::min(step, input.size());
    if (auto error = parser.feed(input.substr(0, take))) {
      if (error->status < 400 || error->status > 599) std::abort();
      break;
    }
    input.remove_prefix(take);
  }
  parser.finish();
  return 0;
}
