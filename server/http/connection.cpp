#include "http/connection.hpp"

#include <cstdlib>
#include <exception>
#include <utility>

#include "http/request_handler.hpp"
#include "tandem/log.hpp"

namespace tandem {
namespace {

// Bytes handed to the kernel but not yet sent before the connection stops reading.
constexpr std::size_t kMaxBytesInFlight = 1024 * 1024;
// How long a connection that sent its last answer and a FIN waits for the client to close.
constexpr std::chrono::milliseconds kLingerTimeout{2000};
constexpr std::size_t kReadBufferSize = 64 * 1024;

// One read buffer for every connection: the loop runs on one thread and the parser copies out
// everything it keeps before on_read returns, so nothing points into this buffer afterwards.
char read_buffer[kReadBufferSize];

void check_init(int result, const char* what) {
  // Initialising a handle only fails on invalid arguments: a programming error, not a condition.
  if (result != 0) {
    std::fprintf(stderr, "tandem-server: %s failed: %s\n", what, uv_strerror(result));
    std::abort();
  }
}

}  // namespace

Connection::Connection(uv_loop_t* loop, ConnectionHost& host)
    : host_(host),
      parser_(
          RequestParser::Limits{host.limits().max_header_bytes, host.limits().max_body_bytes, 100},
          *this) {
  check_init(uv_tcp_init(loop, &socket_), "uv_tcp_init");
  check_init(uv_timer_init(loop, &timer_), "uv_timer_init");
  socket_.data = this;
  timer_.data = this;
  open_handles_ = 2;
}

Connection::~Connection() = default;

Connection* Connection::accept(uv_stream_t* listener, ConnectionHost& host, bool reject) {
  // From here on the connection frees itself in its close callbacks.
  Connection* connection = new Connection(listener->loop, host);
  int result = uv_accept(listener, reinterpret_cast<uv_stream_t*>(&connection->socket_));
  if (result != 0) {
    host.log().warn("accept_failed", {{"error", uv_err_name(result)}});
    connection->close();
    return nullptr;
  }
  result = uv_tcp_nodelay(&connection->socket_, 1);
  if (result != 0) host.log().debug("nodelay_failed", {{"error", uv_err_name(result)}});
  connection->start();
  if (reject) connection->reject();
  return connection;
}

void Connection::start() {
  arm_timer(host_.limits().header_timeout);
  update_reading();
}

bool Connection::idle() const {
  return pending_.empty() && !parser_.in_request() && writer_.writes_in_flight() == 0 &&
         backlog_.empty() && !parser_.paused();
}

void Connection::drain() {
  // A busy connection is left to finish: while the server drains, the parser stops after the
  // request being received, and the last answer owed carries "Connection: close" (see flush).
  if (state_ == State::kOpen && idle()) close();
}

void Connection::close() {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  for (auto& pending : pending_) pending->owner = nullptr;
  pending_.clear();
  reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&socket_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
}

void Connection::on_close(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  if (--self->open_handles_ > 0) return;
  std::unique_ptr<Connection> owned{self};
  self->host_.on_connection_closed(*self);
}

void Connection::on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buffer) {
  *buffer = uv_buf_init(read_buffer, kReadBufferSize);
}

void Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer) {
  static_cast<Connection*>(stream->data)->handle_read(nread, buffer);
}

void Connection::handle_read(ssize_t nread, const uv_buf_t* buffer) {
  if (nread == 0) return;  // EAGAIN: nothing this time.
  if (nread < 0) {
    if (nread != UV_EOF && nread != UV_ECONNRESET) {
      host_.log().debug("read_failed", {{"error", uv_err_name(static_cast<int>(nread))}});
    }
    if (state_ == State::kLingering || nread != UV_EOF || idle()) {
      close();
      return;
    }
    // The client half-closed after sending its requests: answer them, then end.
    reads_done_ = true;
    parser_.finish();
    update_reading();
    if (pending_.empty() && writer_.writes_in_flight() == 0) close();
    return;
  }
  if (state_ != State::kOpen || reads_done_) return;  // Discarded: the stream is ending.
  parsed_this_turn_ = 0;
  parse(std::string_view(buffer->base, static_cast<std::size_t>(nread)));
}

void Connection::parse(std::string_view data) {
  in_feed_ = true;
  std::optional<HttpError> error = parser_.feed(data);
  in_feed_ = false;
  if (state_ != State::kOpen) return;
  if (error) {
    backlog_.clear();
    answer_error(error->status, error->message);
    return;
  }
  if (parser_.stopped()) {
    reads_done_ = true;
    backlog_.clear();
  } else if (parser_.paused()) {
    // `data` may be the backlog itself: take the rest out before replacing it.
    std::string rest(data.substr(parser_.consumed()));
    backlog_ = std::move(rest);
    // Paused exactly at the end of what was read: nothing waits, so parsing goes on with the
    // next read, once the answers leave room for more requests (update_reading).
    if (backlog_.empty()) parser_.resume();
  }
  flush();
}

void Connection::resume_parsing() {
  resume_scheduled_ = false;
  if (state_ != State::kOpen || !parser_.paused()) return;
  if (host_.draining()) {
    // A draining server takes no further pipelined request: the answers owed end the connection.
    backlog_.clear();
    reads_done_ = true;
    flush();
    return;
  }
  parser_.resume();
  parsed_this_turn_ = 0;
  std::string data = std::move(backlog_);
  backlog_.clear();
  parse(data);
}

void Connection::on_request_started() { arm_timer(host_.limits().header_timeout); }

std::size_t Connection::body_limit(const Request& head) { return host_.handler().body_limit(head); }

void Connection::on_expect_continue() {
  // An interim answer may only follow every earlier final answer; with answers still owed, the
  // client simply sends its body after its own wait.
  if (pending_.empty() && writer_.writes_in_flight() == 0) write("HTTP/1.1 100 Continue\r\n\r\n");
}

RequestSink::Next Connection::on_request(Request&& request) {
  deadline_.clear();
  auto pending = std::make_shared<Pending>();
  pending->owner = this;
  pending->keep_alive = request.keep_alive;
  pending->head = request.method == "HEAD";
  pending->http10 = request.http_major == 1 && request.http_minor == 0;
  pending_.push_back(pending);

  Responder respond = [weak = std::weak_ptr<Pending>(pending)](Response response) {
    std::shared_ptr<Pending> slot = weak.lock();
    if (!slot || slot->ready) return;  // The connection ended, or a second answer: dropped.
    slot->response = std::move(response);
    slot->ready = true;
    // Inside feed() the answers are written together once the whole read is parsed.
    if (slot->owner != nullptr && !slot->owner->in_feed_) slot->owner->flush();
  };
  try {
    host_.handler().handle(request, respond);
  } catch (const std::exception& e) {
    host_.log().error("handler_failed", {{"target", request.target}, {"error", e.what()}});
    Response failure = Response::error(500, "internal error; the request was not completed");
    failure.close = true;
    respond(std::move(failure));
  }
  // A draining server takes no further pipelined requests on this connection.
  if (state_ != State::kOpen || host_.draining()) return Next::kStop;
  ++parsed_this_turn_;
  if (pending_.size() >= kMaxPipelined || parsed_this_turn_ >= kMaxRequestsPerTurn) {
    return Next::kPause;
  }
  return Next::kContinue;
}

void Connection::reject() {
  // Counted by the server as a rejected connection; one log line per refusal would turn an
  // overload into a flood of logs as well.
  queue_error(503, "the server is at its connection limit; retry shortly");
}

void Connection::answer_error(int status, const std::string& message) {
  host_.handler().count_error(status);
  host_.log().warn("bad_request", {{"status", status}, {"reason", message}});
  queue_error(status, message);
}

void Connection::queue_error(int status, const std::string& message) {
  auto pending = std::make_shared<Pending>();
  pending->owner = this;
  pending->ready = true;
  pending->response = Response::error(status, message);
  pending->response.close = true;
  pending_.push_back(std::move(pending));
  reads_done_ = true;
  flush();
}

void Connection::flush() {
  if (state_ != State::kOpen) return;
  std::string& out = out_;
  out.clear();
  while (!pending_.empty() && pending_.front()->ready && !finish_after_write_) {
    std::shared_ptr<Pending> answer = std::move(pending_.front());
    pending_.pop_front();
    answer->owner = nullptr;
    bool last = pending_.empty();
    bool keep_alive = answer->keep_alive && !answer->response.close;
    // Nothing more will be read, or the server is draining and no request is half-received:
    // this answer is the connection's last.
    if (last && (reads_done_ || (host_.draining() && !parser_.in_request()))) keep_alive = false;
    ResponseFrame frame{host_.instance_id(), host_.date(), keep_alive, answer->head,
                        answer->http10};
    append_response(out, answer->response, frame);
    if (!keep_alive) {
      finish_after_write_ = true;
      reads_done_ = true;
      for (auto& dropped : pending_) dropped->owner = nullptr;
      pending_.clear();
    }
  }
  if (!out.empty()) write(out);
  // A buffer grown by a large batch of pipelined answers is not kept for the connection's life.
  if (out_.capacity() > kReadBufferSize) std::string().swap(out_);
  if (state_ != State::kOpen) return;
  if (finish_after_write_) {
    if (writer_.writes_in_flight() == 0) finish();
    return;
  }
  if (reads_done_ && pending_.empty() && writer_.writes_in_flight() == 0) {
    close();
    return;
  }
  if (idle()) arm_timer(host_.limits().keepalive_timeout);
  schedule_resume();
  update_reading();
}

void Connection::schedule_resume() {
  // Requests wait in the backlog and answers left room for them: parse them on a later turn.
  if (parser_.paused() && !backlog_.empty() && !resume_scheduled_ &&
      pending_.size() < kMaxPipelined) {
    resume_scheduled_ = true;
    host_.defer_parsing(*this);
  }
}

void Connection::write(std::string_view bytes) {
  int result = writer_.write(bytes);
  if (result != 0) {
    host_.log().debug("write_failed", {{"error", uv_err_name(result)}});
    close();
    return;
  }
  if (writer_.writes_in_flight() == 0) return;
  // A client that does not read its answers is cut after the keep-alive timeout.
  arm_timer(host_.limits().keepalive_timeout);
  update_reading();
}

void Connection::on_written(int status) {
  if (status < 0) {
    if (status != UV_ECANCELED) {
      host_.log().debug("write_failed", {{"error", uv_err_name(status)}});
      close();
    }
    return;
  }
  after_write();
}

void Connection::after_write() {
  if (state_ != State::kOpen || writer_.writes_in_flight() > 0) return;
  if (finish_after_write_) {
    finish();
    return;
  }
  if (reads_done_ && pending_.empty()) {
    close();
    return;
  }
  if (idle()) arm_timer(host_.limits().keepalive_timeout);
  schedule_resume();
  update_reading();
}

void Connection::finish() {
  state_ = State::kLingering;
  auto* request = new uv_shutdown_t;
  request->data = this;
  int result = uv_shutdown(request, reinterpret_cast<uv_stream_t*>(&socket_), on_shutdown);
  if (result != 0) {
    delete request;
    close();
    return;
  }
  arm_timer(kLingerTimeout);
  update_reading();
}

void Connection::on_shutdown(uv_shutdown_t* request, int status) {
  std::unique_ptr<uv_shutdown_t> owned{request};
  auto* self = static_cast<Connection*>(request->data);
  if (status < 0 && status != UV_ECANCELED) self->close();
}

void Connection::update_reading() {
  bool want =
      state_ == State::kLingering ||
      (state_ == State::kOpen && !reads_done_ && pending_.size() < kMaxPipelined &&
       backlog_.empty() && !parser_.paused() && writer_.bytes_in_flight() < kMaxBytesInFlight);
  if (want == reading_) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&socket_);
  int result = want ? uv_read_start(stream, on_alloc, on_read) : uv_read_stop(stream);
  if (result != 0) {
    host_.log().debug("read_toggle_failed", {{"error", uv_err_name(result)}});
    close();
    return;
  }
  reading_ = want;
}

void Connection::arm_timer(std::chrono::milliseconds timeout) {
  int result = deadline_.arm(timeout);
  if (result != 0) host_.log().error("timer_failed", {{"error", uv_err_name(result)}});
}

void Connection::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<Connection*>(timer->data);
  if (self->deadline_.expired()) self->handle_timeout();
}

void Connection::handle_timeout() {
  if (state_ == State::kLingering) {
    close();
    return;
  }
  if (state_ != State::kOpen) return;
  if (writer_.writes_in_flight() > 0) {
    host_.log().info("client_not_reading", {});
    close();
    return;
  }
  if (parser_.in_request()) {
    auto seconds = std::chrono::duration<double>(host_.limits().header_timeout).count();
    std::string limit = std::to_string(seconds);
    limit.erase(limit.find_last_not_of('0') + 1);
    if (limit.back() == '.') limit.pop_back();
    answer_error(408, "the request was not received completely within " + limit + " s");
    return;
  }
  if (pending_.empty()) {
    close();  // An idle keep-alive connection, or one that never sent a byte.
    return;
  }
  // Answers are still being worked on (a slow store, say); those have their own deadlines.
}

}  // namespace tandem
