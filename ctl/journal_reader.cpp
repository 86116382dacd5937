#include "journal_reader.hpp"

#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "error.hpp"

namespace tandem::ctl {
namespace {

constexpr const char* kReadHint =
    "run it as root, or as a member of the systemd-journal group (or adm)";

void check(int result, const char* what) {
  if (result < 0) {
    throw CtlError(std::string("reading the journal: ") + what + ": " + std::strerror(-result));
  }
}

// Why no system journal file could be opened: one that is there but not readable, or none.
void explain_empty_journal() {
  namespace fs = std::filesystem;
  bool found = false;
  for (const char* root : {"/var/log/journal", "/run/log/journal"}) {
    std::error_code error;
    if (!fs::exists(root, error)) continue;
    fs::recursive_directory_iterator it(root, error), end;
    if (error == std::errc::permission_denied) {
      throw CtlError(std::string("cannot read the journal: ") + root + ": permission denied",
                     kReadHint);
    }
    for (; !error && it != end; it.increment(error)) {
      if (it->path().extension() != ".journal") continue;
      found = true;
      if (::access(it->path().c_str(), R_OK) != 0) {
        throw CtlError("cannot read the journal: " + it->path().string() + ": permission denied",
                       kReadHint);
      }
    }
    if (error == std::errc::permission_denied) {
      throw CtlError(std::string("cannot read the journal under ") + root + ": permission denied",
                     kReadHint);
    }
  }
  if (!found) {
    throw CtlError(
        "no system journal on this host (neither /var/log/journal nor "
        "/run/log/journal holds one)",
        "check that systemd-journald runs: systemctl status systemd-journald");
  }
}

}  // namespace

JournalReader::JournalReader() {
  // Local and system only: the units are this host's system services, and a user's own journal
  // would hide that the system's could not be read.
  const int opened = sd_journal_open(&journal_, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
  if (opened < 0) {
    journal_ = nullptr;
    throw CtlError(std::string("cannot open the journal: ") + std::strerror(-opened), kReadHint);
  }
  // sd_journal_open succeeds without a file it may read; it then holds none at all.
  std::uint64_t bytes = 0;
  if (sd_journal_get_usage(journal_, &bytes) >= 0 && bytes == 0) {
    sd_journal_close(journal_);
    journal_ = nullptr;
    explain_empty_journal();
    throw CtlError("the journal has no file this user may read", kReadHint);
  }
}

JournalReader::~JournalReader() {
  if (journal_ != nullptr) sd_journal_close(journal_);
}

void JournalReader::only_units(const std::map<std::string, std::string>& unit_instances) {
  unit_instances_ = unit_instances;
  sd_journal_flush_matches(journal_);
  // Matches of one field are alternatives, of different fields all required; a disjunction
  // separates the groups: (_SYSTEMD_UNIT=a OR b) OR (_PID=1 AND (UNIT=a OR b)) OR
  // (_UID=0 AND (COREDUMP_UNIT=a OR b)).
  const auto add_units = [&](const std::string& field) {
    for (const auto& [unit, instance] : unit_instances) {
      const std::string match = field + "=" + unit;
      check(sd_journal_add_match(journal_, match.data(), match.size()), "adding a match");
    }
  };
  add_units("_SYSTEMD_UNIT");
  check(sd_journal_add_disjunction(journal_), "adding a match");
  check(sd_journal_add_match(journal_, "_PID=1", 0), "adding a match");
  add_units("UNIT");
  // systemd-coredump's entry of a crash (with its backtrace) is logged by its own unit and names
  // the crashed one in COREDUMP_UNIT. Root's only, as journalctl -u takes it: any user may log
  // such a field.
  check(sd_journal_add_disjunction(journal_), "adding a match");
  check(sd_journal_add_match(journal_, "_UID=0", 0), "adding a match");
  add_units("COREDUMP_UNIT");
}

void JournalReader::seek_head() { check(sd_journal_seek_head(journal_), "seeking its start"); }

void JournalReader::seek_tail() { check(sd_journal_seek_tail(journal_), "seeking its end"); }

void JournalReader::seek_realtime(std::uint64_t realtime_us) {
  check(sd_journal_seek_realtime_usec(journal_, realtime_us), "seeking a time");
}

void JournalReader::seek_cursor(const std::string& cursor) {
  check(sd_journal_seek_cursor(journal_, cursor.c_str()), "seeking a cursor");
}

bool JournalReader::next() {
  const int moved = sd_journal_next(journal_);
  check(moved, "moving to the next entry");
  return moved > 0;
}

bool JournalReader::previous() {
  const int moved = sd_journal_previous(journal_);
  check(moved, "moving to the previous entry");
  return moved > 0;
}

std::string JournalReader::field(const char* name) const {
  const void* data = nullptr;
  std::size_t length = 0;
  if (sd_journal_get_data(journal_, name, &data, &length) < 0) return {};
  // The data is "NAME=value".
  const std::string_view text(static_cast<const char*>(data), length);
  const std::size_t skip = std::strlen(name) + 1;
  return skip <= text.size() ? std::string(text.substr(skip)) : std::string();
}

LogEntry JournalReader::entry() const {
  LogEntry entry;
  entry.realtime_us = realtime_us();
  entry.unit = field("_SYSTEMD_UNIT");
  if (!unit_instances_.contains(entry.unit)) entry.unit = field("UNIT");  // systemd's own line.
  if (!unit_instances_.contains(entry.unit)) entry.unit = field("COREDUMP_UNIT");  // A crash.
  if (auto found = unit_instances_.find(entry.unit); found != unit_instances_.end()) {
    entry.instance = found->second;
  }
  const std::string priority = field("PRIORITY");
  if (priority.size() == 1 && priority[0] >= '0' && priority[0] <= '7') {
    entry.priority = priority[0] - '0';
  }
  entry.message = field("MESSAGE");
  entry.request_id = field("TANDEM_REQUEST_ID");
  const std::string pid = field("_PID");
  if (!pid.empty()) {
    try {
      entry.pid = std::stol(pid);
    } catch (const std::exception&) {
      entry.pid = 0;
    }
  }
  return entry;
}

std::uint64_t JournalReader::realtime_us() const {
  std::uint64_t realtime = 0;
  check(sd_journal_get_realtime_usec(journal_, &realtime), "reading an entry's time");
  return realtime;
}

std::string JournalReader::cursor() const {
  char* text = nullptr;
  check(sd_journal_get_cursor(journal_, &text), "reading a cursor");
  std::string cursor(text);
  free(text);
  return cursor;
}

bool JournalReader::at_cursor(const std::string& cursor) const {
  return sd_journal_test_cursor(journal_, cursor.c_str()) > 0;
}

int JournalReader::fd() {
  const int descriptor = sd_journal_get_fd(journal_);
  check(descriptor, "watching it");
  return descriptor;
}

int JournalReader::events() {
  const int events = sd_journal_get_events(journal_);
  check(events, "watching it");
  return events;
}

std::uint64_t JournalReader::timeout_us() {
  std::uint64_t timeout = 0;
  check(sd_journal_get_timeout(journal_, &timeout), "watching it");
  return timeout;
}

void JournalReader::process() { check(sd_journal_process(journal_), "following it"); }

}  // namespace tandem::ctl
