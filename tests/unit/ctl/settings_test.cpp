#define BOOST_TEST_MODULE settings
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "error.hpp"
#include "settings.hpp"

namespace tandem::ctl {
namespace {

// A folder of its own, removed at the end of the test.
struct Folder {
  std::filesystem::path path;
  Folder() {
    char name[] = "/tmp/tandemctl-settings-XXXXXX";
    path = ::mkdtemp(name);
  }
  ~Folder() { std::filesystem::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
  }
};

BOOST_AUTO_TEST_CASE(env_text_reads_as_systemd_does) {
  const auto variables = parse_env_text(
      "# a comment\n; another\n\nTANDEM_ID=app-1\n  TANDEM_BIND = 10.0.0.2 \n"
      "QUOTED=\"a \\\"b\\\" c\"\nSINGLE='x y'\nLONG=one \\\ntwo\n",
      "test.env");
  BOOST_TEST(variables.at("TANDEM_ID") == "app-1");
  BOOST_TEST(variables.at("TANDEM_BIND") == "10.0.0.2");
  BOOST_TEST(variables.at("QUOTED") == "a \"b\" c");
  BOOST_TEST(variables.at("SINGLE") == "x y");
  BOOST_TEST(variables.at("LONG") == "one two");
}

BOOST_AUTO_TEST_CASE(a_bad_line_names_its_file_and_line) {
  try {
    parse_env_text("A=1\nnot a variable\n", "/etc/tandem/3001.env");
    BOOST_FAIL("accepted a line without =");
  } catch (const CtlError& error) {
    BOOST_TEST(std::string(error.what()).find("/etc/tandem/3001.env:2") != std::string::npos);
    BOOST_TEST(error.status() == kExitUsage);
  }
  BOOST_CHECK_THROW(parse_env_text("1BAD=x\n", "f"), CtlError);
  BOOST_CHECK_THROW(parse_env_text("A=\"open\n", "f"), CtlError);
}

BOOST_AUTO_TEST_CASE(instances_come_from_port_files_and_the_balancer_from_tandemctl_conf) {
  Folder folder;
  folder.write("3002.env", "TANDEM_ID=app-2\nTANDEM_BIND=0.0.0.0\n");
  folder.write("3001.env", "TANDEM_ID=app-1\n");
  folder.write("3003.env", "# no id: the server's default, app-<port>\n");
  folder.write("notes.env", "TANDEM_ID=not-an-instance\n");
  folder.write("3004.env.dpkg-old", "TANDEM_ID=old\n");
  folder.write("tandemctl.conf",
               "TANDEM_LB_SOCKET=/run/x.sock\nTANDEM_LB_BACKEND=web\nTANDEM_SYSTEMD=no\n");
  const Settings settings = load_settings({.config_dir = folder.path.string()});
  BOOST_TEST_REQUIRE(settings.instances.size() == 3u);
  BOOST_TEST(settings.instances[0].id == "app-1");
  BOOST_TEST(settings.instances[0].port == 3001);
  BOOST_TEST(settings.instances[0].address == "127.0.0.1");
  BOOST_TEST(settings.instances[1].address == "127.0.0.1");  // A wildcard is probed on loopback.
  BOOST_TEST(settings.instances[2].id == "app-3003");
  BOOST_TEST(settings.instances[2].unit() == "tandem@3003.service");
  BOOST_TEST(settings.socket == "/run/x.sock");
  BOOST_TEST(settings.backend == "web");
  BOOST_TEST(settings.cookie == "tandem_instance");  // Not set: the default.
  BOOST_TEST(!settings.systemd);
  BOOST_TEST(settings.find("app-2") != nullptr);
  BOOST_TEST(settings.find("app-9") == nullptr);

  const Settings overridden =
      load_settings({.config_dir = folder.path.string(), .socket = "/tmp/s", .backend = "b"});
  BOOST_TEST(overridden.socket == "/tmp/s");
  BOOST_TEST(overridden.backend == "b");
}

BOOST_AUTO_TEST_CASE(a_host_without_the_folder_has_no_instance) {
  const Settings settings = load_settings({.config_dir = "/nonexistent/tandem"});
  BOOST_TEST(settings.instances.empty());
  BOOST_TEST(settings.socket == "/run/haproxy/admin.sock");
}

}  // namespace
}  // namespace tandem::ctl
