#include "runtime/process_stats.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace tandem {
namespace {

// Reads a whole small /proc file; empty when it cannot be read.
std::string read_file(const char* path) {
  std::ifstream file(path);
  if (!file) return {};
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

uint64_t to_uint(const std::string& text) { return std::strtoull(text.c_str(), nullptr, 10); }

uint64_t count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  const int own_fd = dirfd(dir);
  uint64_t count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    // The descriptor this very listing holds open is not one of the process's own.
    if (std::atoi(entry->d_name) == own_fd) continue;
    ++count;
  }
  closedir(dir);
  return count;
}

uint64_t boot_time_seconds() {
  std::istringstream stat(read_file("/proc/stat"));
  std::string key;
  while (stat >> key) {
    if (key == "btime") {
      uint64_t btime = 0;
      stat >> btime;
      return btime;
    }
    stat.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats stats;
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  const long page_size = sysconf(_SC_PAGESIZE);

  // The command name in field 2 may hold spaces and parentheses, so fields are counted from the
  // last ')'. After it come field 3 (state) onwards; see proc(5).
  const std::string stat = read_file("/proc/self/stat");
  const auto name_end = stat.rfind(')');
  if (name_end != std::string::npos && ticks_per_second > 0) {
    std::istringstream rest(stat.substr(name_end + 1));
    std::vector<std::string> fields;
    for (std::string field; rest >> field;) fields.push_back(field);
    constexpr std::size_t kFirstField = 3;
    constexpr std::size_t kUtime = 14, kStime = 15, kStartTime = 22, kVsize = 23, kRss = 24;
    if (fields.size() > kRss - kFirstField) {
      const auto field = [&](std::size_t number) { return to_uint(fields[number - kFirstField]); };
      const auto ticks = static_cast<double>(ticks_per_second);
      stats.cpu_seconds = static_cast<double>(field(kUtime) + field(kStime)) / ticks;
      stats.virtual_bytes = field(kVsize);
      stats.resident_bytes = field(kRss) * static_cast<uint64_t>(std::max(page_size, 0L));
      stats.start_time_seconds =
          static_cast<double>(boot_time_seconds()) + static_cast<double>(field(kStartTime)) / ticks;
    }
  }

  stats.open_fds = count_open_fds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) stats.max_fds = limit.rlim_cur;
  return stats;
}

}  // namespace tandem
