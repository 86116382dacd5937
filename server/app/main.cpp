#include "app/demo_app.hpp"
#include "tandem/application.hpp"

int main(int argc, char** argv) {
  tandem::DemoApp app;
  return tandem::run(app, argc, argv);
}
