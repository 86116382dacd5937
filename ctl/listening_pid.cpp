#include "listening_pid.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tandem::ctl {
namespace {

constexpr const char* kListen = "0A";  // TCP_LISTEN in /proc/net/tcp's st column.

std::string listening_inode(int port, const char* table) {
  std::ifstream file(table);
  std::string line;
  std::getline(file, line);  // The header.
  while (std::getline(file, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
        timeout >> inode;
    const auto colon = local.rfind(':');
    if (colon == std::string::npos || state != kListen) continue;
    if (std::stoi(local.substr(colon + 1), nullptr, 16) == port) return inode;
  }
  return {};
}

}  // namespace

unsigned listening_pid(int port) {
  std::string inode = listening_inode(port, "/proc/net/tcp");
  if (inode.empty()) inode = listening_inode(port, "/proc/net/tcp6");
  if (inode.empty() || inode == "0") return 0;
  const std::string wanted = "socket:[" + inode + "]";
  std::error_code error;
  for (const auto& process : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = process.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::filesystem::directory_iterator fds(process.path() / "fd", error);
    if (error) {
      error.clear();
      continue;
    }
    for (const auto& fd : fds) {
      std::error_code link_error;
      if (std::filesystem::read_symlink(fd.path(), link_error).string() == wanted) {
        return static_cast<unsigned>(std::stoul(name));
      }
    }
  }
  return 0;
}

}  // namespace tandem::ctl
