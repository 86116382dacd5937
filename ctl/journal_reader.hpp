#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "log_entry.hpp"

struct sd_journal;

namespace tandem::ctl {

// This host's system journal (sd-journal), read by unit, in time order across its files.
class JournalReader {
 public:
  // Opens the local system journal. Throws CtlError (exit 1) when there is none, or when it
  // cannot be read (not root nor in the systemd-journal or adm group).
  JournalReader();
  ~JournalReader();
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  // Only the entries of these units, each with the instance id to show (empty for HAProxy):
  // what their processes logged (_SYSTEMD_UNIT), what systemd logged about them (UNIT, from
  // pid 1: started, stopped, watchdog timeouts) and their crashes (COREDUMP_UNIT, from
  // systemd-coredump, with the backtrace).
  void only_units(const std::map<std::string, std::string>& unit_instances);

  void seek_head();
  void seek_tail();
  void seek_realtime(std::uint64_t realtime_us);
  // Before the entry of `cursor`: next() then reaches it, or the first after it when it is gone.
  void seek_cursor(const std::string& cursor);
  bool next();      // Moves to the next matching entry; false at the end.
  bool previous();  // Moves to the previous matching entry; false at the start.

  // The current entry.
  LogEntry entry() const;
  std::uint64_t realtime_us() const;
  std::string cursor() const;
  bool at_cursor(const std::string& cursor) const;

  // The descriptor that becomes readable when the journal changes (poll(2) for events()), and
  // the time by which process() must be called anyway (CLOCK_MONOTONIC µs; UINT64_MAX: none).
  // fd() sets up the watches: call it before reading what is there, so that nothing written in
  // between is missed.
  int fd();
  int events();
  std::uint64_t timeout_us();
  // After fd() became readable or the timeout passed: takes note of the journal's changes.
  void process();

 private:
  std::string field(const char* name) const;  // The field's value, empty when absent.

  sd_journal* journal_ = nullptr;
  std::map<std::string, std::string> unit_instances_;
};

}  // namespace tandem::ctl
