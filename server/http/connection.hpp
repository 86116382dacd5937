#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "http/deadline.hpp"
#include "http/request_parser.hpp"
#include "http/stream_writer.hpp"
#include "tandem/response.hpp"

namespace tandem {

class Connection;
class Log;
class RequestHandler;

// What every connection of a server may take and how long it may take it.
struct ConnectionLimits {
  std::size_t max_header_bytes = 8192;                 // Request line and header section.
  std::size_t max_body_bytes = 1024 * 1024;            // Any route's body, any framing.
  std::chrono::milliseconds header_timeout{10000};     // To send one whole request.
  std::chrono::milliseconds keepalive_timeout{60000};  // Idle between two requests.
};

// What a connection needs from the server that accepted it.
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  virtual const ConnectionLimits& limits() const = 0;
  virtual RequestHandler& handler() = 0;
  virtual Log& log() = 0;
  // The instance id every answer carries (X-Container-Id).
  virtual const std::string& instance_id() const = 0;
  // Whether the server is draining: answers then end their connection.
  virtual bool draining() const = 0;
  // The Date header's value for now.
  virtual const std::string& date() = 0;
  // The connection has requests left unparsed: call its resume_parsing() on a later turn of
  // the loop, after other connections had theirs. Forgotten when the connection closes.
  virtual void defer_parsing(Connection& connection) = 0;
  // The connection's handles are closed; the connection is destroyed right after this returns.
  virtual void on_connection_closed(Connection& connection) = 0;
};

// One client connection. It owns its socket, its timer, its llhttp parser and its buffers, reads
// requests (pipelined ones too), hands each to the RequestHandler, and writes the answers back in
// request order, whenever each is ready. It frees itself once both of its handles are closed.
//
// Pipelining is bounded twice, so one client cannot hold the loop or pile work up: at most
// kMaxPipelined requests of a connection are waiting for their answers (reading stops until
// some are written), and one turn of the loop parses at most kMaxRequestsPerTurn of its
// requests; the rest of what was read waits in backlog_ until the server calls
// resume_parsing() on a later turn, after the other connections had theirs.
class Connection final : public RequestSink {
 public:
  // Accepts the next connection waiting on `listener`. With `reject` set, the client gets a 503
  // and the connection ends (the server is at --max-connections). Returns null when accept fails.
  static Connection* accept(uv_stream_t* listener, ConnectionHost& host, bool reject);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() override;

  // The server began draining: an idle connection ends now, a busy one after its last answer.
  void drain();
  // Ends the connection at once, whatever it is doing (shutdown deadline).
  void close();
  // Whether no request is in progress or waiting for its answer.
  bool idle() const;
  // Parses what waits in the backlog (see defer_parsing).
  void resume_parsing();

  static constexpr std::size_t kMaxPipelined = 16;
  static constexpr std::size_t kMaxRequestsPerTurn = 16;

 private:
  enum class State {
    kOpen,       // Reading requests and writing answers.
    kLingering,  // Answers written and FIN sent; reading and discarding until the client closes.
    kClosing,    // uv_close called on the handles; waiting for their callbacks.
  };

  // An answer slot, in request order. Handlers fill it through a Responder that holds it weakly, so
  // an answer that comes after the connection ended is dropped, not written to freed memory.
  struct Pending {
    Connection* owner = nullptr;
    bool ready = false;
    bool keep_alive = true;  // What the request allowed.
    bool head = false;
    bool http10 = false;
    Response response;
  };

  Connection(uv_loop_t* loop, ConnectionHost& host);

  // RequestSink.
  void on_request_started() override;
  std::size_t body_limit(const Request& head) override;
  void on_expect_continue() override;
  Next on_request(Request&& request) override;

  // libuv callbacks.
  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buffer);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer);
  static void on_shutdown(uv_shutdown_t* request, int status);
  static void on_timer(uv_timer_t* timer);
  static void on_close(uv_handle_t* handle);

  void start();
  void handle_read(ssize_t nread, const uv_buf_t* buffer);
  // Feeds `data` to the parser; what a pause leaves unparsed goes to backlog_.
  void parse(std::string_view data);
  void handle_timeout();
  // Answers an error the connection found itself (counted and logged), then ends the connection.
  void answer_error(int status, const std::string& message);
  // Answers 503 to a connection over --max-connections, then ends it.
  void reject();
  void queue_error(int status, const std::string& message);
  // Moves ready answers at the front of the queue into the socket.
  void flush();
  // Sends `bytes` now if the kernel takes them, else copies the rest into a uv_write.
  void write(std::string_view bytes);
  // A queued write of writer_ completed or failed.
  void on_written(int status);
  void after_write();
  // Ends the connection politely: FIN after the last byte, then discard input until EOF.
  void finish();
  void update_reading();
  // Asks the server for a resume_parsing() call once answers left room for backlogged requests.
  void schedule_resume();
  // Sets the connection's one deadline (header, keep-alive, linger or send timeout).
  void arm_timer(std::chrono::milliseconds timeout);

  uv_tcp_t socket_;
  uv_timer_t timer_;
  int open_handles_ = 0;
  State state_ = State::kOpen;
  ConnectionHost& host_;
  RequestParser parser_;
  std::deque<std::shared_ptr<Pending>> pending_;
  std::string out_;      // Answers being written; reused, so a keep-alive answer allocates nothing.
  std::string backlog_;  // Read but not yet parsed: the parser paused (see the class comment).
  std::size_t parsed_this_turn_ = 0;
  bool resume_scheduled_ = false;
  StreamWriter writer_{reinterpret_cast<uv_stream_t*>(&socket_),
                       [this](int status) { on_written(status); }};
  bool reading_ = false;
  bool finish_after_write_ = false;      // The last answer said "Connection: close".
  bool reads_done_ = false;              // Parser stopped or EOF: nothing more will be read.
  Deadline deadline_{timer_, on_timer};  // When handle_timeout() is due.
  bool in_feed_ = false;                 // Inside parser_.feed(): answers are flushed after it.
};

}  // namespace tandem
