#define BOOST_TEST_MODULE load_agent
#include "runtime/load_agent.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <string>
#include <thread>

#include "tandem/log.hpp"

using tandem::agent_weight;

BOOST_AUTO_TEST_CASE(the_weight_is_the_share_of_the_worker_still_free) {
  BOOST_TEST(agent_weight(0, 32) == "100%\n");
  BOOST_TEST(agent_weight(8, 32) == "75%\n");
  BOOST_TEST(agent_weight(1, 3) == "66%\n");  // Rounded down: a busy worker never looks idler.
  BOOST_TEST(agent_weight(31, 32) == "3%\n");
  // Full, or beyond: 1%, still a weight, so that when every instance is full they share evenly.
  BOOST_TEST(agent_weight(32, 32) == "1%\n");
  BOOST_TEST(agent_weight(40, 32) == "1%\n");
  BOOST_TEST(agent_weight(0, 0) == "1%\n");
}

// Connects to 127.0.0.1:port and reads until the agent closes.
std::string read_agent(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string line;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    char buffer[64];
    ssize_t got = 0;
    while ((got = read(fd, buffer, sizeof buffer)) > 0)
      line.append(buffer, static_cast<std::size_t>(got));
  }
  close(fd);
  return line;
}

BOOST_AUTO_TEST_CASE(each_connection_gets_the_current_line_and_a_close) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::FILE* log_file = std::tmpfile();
  tandem::Log log("test", log_file);
  int reports = 0;
  tandem::LoadAgent agent(&loop, log, [&] { return std::to_string(++reports * 10) + "%\n"; });
  // The flag refuses port 0; here it lets the kernel pick a free port.
  BOOST_TEST_REQUIRE(agent.listen("127.0.0.1", 0));
  const uint16_t port = agent.port();
  BOOST_TEST_REQUIRE(port != 0);
  for (const char* expected : {"10%\n", "20%\n"}) {
    std::string line;
    std::atomic<bool> finished{false};
    std::thread client([&] {
      line = read_agent(port);
      finished = true;
    });
    // The loop accepts and answers; the client's read ends at the agent's close. Bounded turns.
    for (int turns = 0; !finished && turns < 1000; ++turns)
      uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
    client.join();
    BOOST_TEST(line == expected);
  }
  agent.close();
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(uv_loop_close(&loop) == 0);
  std::fclose(log_file);
}
