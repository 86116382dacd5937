#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <string_view>

namespace tandem {

// Writes to one libuv stream in order: at once when the kernel takes all the bytes, else a copy
// of what it did not take goes on a uv_write. It counts what is still in flight, which its owner
// uses for back-pressure (a client that does not read its answers stops being read).
class StreamWriter {
 public:
  // Called once each queued write completed (status 0) or failed (a libuv error; UV_ECANCELED
  // when the stream was closed).
  using Done = std::function<void(int status)>;

  StreamWriter(uv_stream_t* stream, Done done) : stream_(stream), done_(std::move(done)) {}

  // Sends `bytes` (copied if they must wait). Returns 0, or the libuv error that makes the stream
  // unusable; whether they had to wait shows in writes_in_flight().
  int write(std::string_view bytes);

  int writes_in_flight() const { return writes_in_flight_; }
  std::size_t bytes_in_flight() const { return bytes_in_flight_; }

 private:
  static void on_write(uv_write_t* request, int status);

  uv_stream_t* stream_;
  Done done_;
  int writes_in_flight_ = 0;
  std::size_t bytes_in_flight_ = 0;
};

}  // namespace tandem
