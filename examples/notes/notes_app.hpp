#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "tandem/application.hpp"

namespace notes {

// A note board: clients post short notes, read the board back, and ask for a word count that is
// computed on the instance's CPU worker. The notes live in this instance's memory; its own flags
// bound them.
class NotesApp final : public tandem::Application {
 public:
  std::string name() const override { return "notes-server"; }
  std::string version() const override;
  std::string description() const override {
    return "A note board served by tandem (an example application).";
  }
  void add_flags(tandem::Flags& flags) override;
  void install(tandem::Router& router, tandem::Services& services) override;
  void describe_health(Json::Value& body) const override;

 private:
  struct Note {
    uint64_t id;
    std::string text;
  };

  void list(const tandem::Request& request, tandem::Responder& respond);
  void add(const tandem::Request& request, tandem::Responder& respond);
  void words(const tandem::Request& request, tandem::Responder& respond);

  std::size_t max_notes_ = 1000;
  std::size_t max_note_bytes_ = 1024;
  tandem::Services* services_ = nullptr;
  std::deque<Note> notes_;  // Oldest first; the oldest goes when the board is full.
  uint64_t next_id_ = 1;
  uint64_t created_ = 0;
};

}  // namespace notes
