#include "notes_app.hpp"

#include <memory>
#include <sstream>

#include "notes_version.hpp"

namespace notes {

std::string NotesApp::version() const { return kVersion; }

void NotesApp::add_flags(tandem::Flags& flags) {
  flags.add_count("max-notes", "N", "Notes the board keeps (the oldest go first)", &max_notes_, 1,
                  1000000);
  flags.add_count("max-note-bytes", "BYTES", "Longest note accepted, else 400", &max_note_bytes_, 1,
                  65536);
}

void NotesApp::install(tandem::Router& router, tandem::Services& services) {
  services_ = &services;
  auto bind = [this](void (NotesApp::*member)(const tandem::Request&, tandem::Responder&)) {
    return [this, member](const tandem::Request& request, tandem::Responder respond) {
      (this->*member)(request, respond);
    };
  };
  router.add("GET", "/api/notes", bind(&NotesApp::list));
  // The body: {"text": "..."}, its text at most --max-note-bytes, escaped, plus room around it.
  router.add("POST", "/api/notes", bind(&NotesApp::add), 2 * max_note_bytes_ + 256);
  router.add("GET", "/api/notes/words", bind(&NotesApp::words));
  services.metrics.add_gauge("notes_stored", "Notes on the board.",
                             [this] { return static_cast<double>(notes_.size()); });
  services.metrics.add_counter("notes_created_total", "Notes posted since start.",
                               [this] { return static_cast<double>(created_); });
}

void NotesApp::describe_health(Json::Value& body) const {
  body["notes"] = Json::UInt64(notes_.size());
}

void NotesApp::list(const tandem::Request&, tandem::Responder& respond) {
  Json::Value body(Json::objectValue);
  body["container"] = services_->instance_id;
  Json::Value& list = body["notes"];
  list = Json::Value(Json::arrayValue);
  for (const Note& note : notes_) {
    Json::Value item(Json::objectValue);
    item["id"] = Json::UInt64(note.id);
    item["text"] = note.text;
    list.append(item);
  }
  respond(tandem::Response::json(200, body));
}

void NotesApp::add(const tandem::Request& request, tandem::Responder& respond) {
  Json::Value input;
  std::string error;
  if (!tandem::parse_json(request.body, input, error)) {
    respond(tandem::Response::error(400, "the body is not valid JSON: " + error));
    return;
  }
  if (!input.isObject() || !input["text"].isString() || input["text"].asString().empty()) {
    respond(tandem::Response::error(400, "the body must be {\"text\": \"a note\"}"));
    return;
  }
  std::string text = input["text"].asString();
  if (text.size() > max_note_bytes_) {
    respond(tandem::Response::error(
        400, "a note is at most " + std::to_string(max_note_bytes_) + " bytes"));
    return;
  }
  if (notes_.size() >= max_notes_) notes_.pop_front();
  notes_.push_back(Note{next_id_++, std::move(text)});
  ++created_;
  Json::Value body(Json::objectValue);
  body["container"] = services_->instance_id;
  body["id"] = Json::UInt64(notes_.back().id);
  body["text"] = notes_.back().text;
  respond(tandem::Response::json(201, body));
}

void NotesApp::words(const tandem::Request&, tandem::Responder& respond) {
  // A copy goes to the worker thread: the board may change on the loop meanwhile.
  auto texts = std::make_shared<std::string>();
  for (const Note& note : notes_) *texts += note.text + "\n";
  auto count = std::make_shared<uint64_t>(0);
  auto shared_respond = std::make_shared<tandem::Responder>(std::move(respond));
  bool accepted = services_->worker.submit(
      [texts, count](const std::atomic<bool>&) {
        std::istringstream words(*texts);
        for (std::string word; words >> word;) ++*count;
      },
      [this, count, shared_respond](bool completed) {
        if (!completed) {
          (*shared_respond)(tandem::Response::error(503, "the instance is stopping"));
          return;
        }
        Json::Value body(Json::objectValue);
        body["container"] = services_->instance_id;
        body["words"] = Json::UInt64(*count);
        (*shared_respond)(tandem::Response::json(200, body));
      });
  if (!accepted) (*shared_respond)(tandem::Response::error(503, "busy; retry shortly"));
}

}  // namespace notes
