#include "http/stream_writer.hpp"

#include <memory>
#include <string>

namespace tandem {
namespace {

struct WriteRequest {
  uv_write_t request;
  std::string bytes;
  StreamWriter* writer;
};

}  // namespace

int StreamWriter::write(std::string_view bytes) {
  // uv_try_write only reads the buffer; libuv's type is not const.
  uv_buf_t buffer =
      uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned int>(bytes.size()));
  // Behind a queued write, the bytes must queue too, or they would overtake it.
  int written = writes_in_flight_ == 0 ? uv_try_write(stream_, &buffer, 1) : UV_EAGAIN;
  if (written == static_cast<int>(bytes.size())) return 0;
  if (written < 0 && written != UV_EAGAIN) return written;
  auto request = std::make_unique<WriteRequest>();
  // Only what the kernel did not take at once is copied, for uv_write to send later.
  request->bytes = std::string(bytes.substr(written > 0 ? static_cast<std::size_t>(written) : 0));
  request->writer = this;
  buffer = uv_buf_init(request->bytes.data(), static_cast<unsigned int>(request->bytes.size()));
  int result = uv_write(&request->request, stream_, &buffer, 1, on_write);
  if (result != 0) return result;
  ++writes_in_flight_;
  bytes_in_flight_ += request->bytes.size();
  request.release();  // Owned again in on_write.
  return 0;
}

void StreamWriter::on_write(uv_write_t* request, int status) {
  std::unique_ptr<WriteRequest> owned{reinterpret_cast<WriteRequest*>(request)};
  StreamWriter* self = owned->writer;
  --self->writes_in_flight_;
  self->bytes_in_flight_ -= owned->bytes.size();
  self->done_(status);
}

}  // namespace tandem
