#include "notes_app.hpp"
#include "tandem/application.hpp"

int main(int argc, char** argv) {
  notes::NotesApp app;
  return tandem::run(app, argc, argv);
}
