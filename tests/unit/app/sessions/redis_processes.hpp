#pragma once

// Real redis-server and redis-sentinel processes on loopback ports for the session stores'
// tests: started by a constructor, killed and reaped by the destructor.

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tandem::testing {

using namespace std::chrono_literals;

inline uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

inline bool port_open(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool open = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return open;
}

// A child process listening on `port` once started; SIGKILLed and reaped by stop().
class RedisProcess {
 public:
  // Runs `argv` (argv[0] found on PATH) with stdout and stderr to `log_path` (or /dev/null).
  RedisProcess(uint16_t port, std::vector<std::string> argv, const std::string& log_path = {})
      : port_(port) {
    std::fflush(stdout);  // Or the child's freopen writes the parent's buffered output again.
    pid_ = fork();
    if (pid_ == 0) {
      std::freopen(log_path.empty() ? "/dev/null" : log_path.c_str(), "w", stdout);
      dup2(fileno(stdout), 2);
      std::vector<char*> args;
      for (std::string& arg : argv) args.push_back(arg.data());
      args.push_back(nullptr);
      execvp(args[0], args.data());
      std::perror("exec (install Debian's redis-server and redis-sentinel)");
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!port_open(port) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    BOOST_TEST_REQUIRE(port_open(port), argv[0] << " did not start on port " << port);
  }
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;
  ~RedisProcess() { stop(); }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { kill(pid_, SIGSTOP); }
  void resume() { kill(pid_, SIGCONT); }
  uint16_t port() const { return port_; }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
};

// A redis-server that keeps nothing on disk; `extra` adds options ("--replicaof", ...).
inline std::vector<std::string> redis_server_args(uint16_t port, const std::string& dir,
                                                  std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"redis-server",
                                "--port",
                                std::to_string(port),
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                "no",
                                "--dir",
                                dir,
                                "--dbfilename",
                                "dump-" + std::to_string(port) + ".rdb"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Sends one command to the Redis or Sentinel on `port` (in database `db` unless 0) and waits
// for the answer (at most 2 s):
// its strings and integers, arrays flattened; an error reply as one string starting with '-';
// nullopt when nothing answered.
inline std::optional<std::vector<std::string>> redis_command(uint16_t port,
                                                             const std::string& password,
                                                             const std::vector<std::string>& args,
                                                             int db = 0) {
  timeval timeout{2, 0};
  redisContext* context = redisConnectWithTimeout("127.0.0.1", port, timeout);
  if (context == nullptr || context->err != 0) {
    if (context != nullptr) redisFree(context);
    return std::nullopt;
  }
  redisSetTimeout(context, timeout);
  auto run = [&](const std::vector<std::string>& words) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& word : words) {
      argv.push_back(word.data());
      lengths.push_back(word.size());
    }
    return static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(words.size()), argv.data(), lengths.data()));
  };
  if (!password.empty()) {
    if (redisReply* auth = run({"AUTH", password})) freeReplyObject(auth);
  }
  if (db != 0) {
    if (redisReply* select = run({"SELECT", std::to_string(db)})) freeReplyObject(select);
  }
  redisReply* reply = run(args);
  std::optional<std::vector<std::string>> result;
  if (reply != nullptr) {
    result.emplace();
    auto flatten = [&](auto& self, const redisReply* item) -> void {
      if (item->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < item->elements; ++i) self(self, item->element[i]);
      } else if (item->type == REDIS_REPLY_INTEGER) {
        result->push_back(std::to_string(item->integer));
      } else if (item->type == REDIS_REPLY_ERROR) {
        result->push_back("-" + std::string(item->str, item->len));
      } else if (item->str != nullptr) {
        result->push_back(std::string(item->str, item->len));
      }
    };
    flatten(flatten, reply);
    freeReplyObject(reply);
  }
  redisFree(context);
  return result;
}

}  // namespace tandem::testing
