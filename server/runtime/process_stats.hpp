#pragma once

#include <cstdint>

namespace tandem {

// Figures about this process read from /proc (RSS, CPU seconds, open fds, start time).
struct ProcessStats {
  double cpu_seconds = 0;
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;
  double start_time_seconds = 0;  // Since the Unix epoch.
};
ProcessStats read_process_stats();

}  // namespace tandem
