#define BOOST_TEST_MODULE router
#include "tandem/router.hpp"

#include <boost/test/unit_test.hpp>

using tandem::Request;
using tandem::Responder;
using tandem::Router;

namespace {

Router make_router(std::string& called) {
  Router router;
  router.add("GET", "/a", [&called](const Request&, Responder) { called = "GET /a"; });
  router.add("POST", "/a", [&called](const Request&, Responder) { called = "POST /a"; });
  router.add("POST", "/b", [&called](const Request&, Responder) { called = "POST /b"; });
  return router;
}

}  // namespace

BOOST_AUTO_TEST_CASE(finds_the_handler_for_method_and_path) {
  std::string called;
  Router router = make_router(called);
  auto match = router.match("POST", "/a");
  BOOST_TEST_REQUIRE(match.status == 200);
  (*match.handler)(Request{}, Responder{});
  BOOST_TEST(called == "POST /a");
  BOOST_TEST(match.route == "/a");
}

BOOST_AUTO_TEST_CASE(head_is_answered_by_get) {
  std::string called;
  Router router = make_router(called);
  auto match = router.match("HEAD", "/a");
  BOOST_TEST_REQUIRE(match.status == 200);
  (*match.handler)(Request{}, Responder{});
  BOOST_TEST(called == "GET /a");
  BOOST_TEST(router.match("HEAD", "/b").status == 405);
}

BOOST_AUTO_TEST_CASE(unknown_path_is_404_with_a_bounded_route_label) {
  std::string called;
  Router router = make_router(called);
  auto match = router.match("GET", "/a/");
  BOOST_TEST(match.status == 404);
  BOOST_TEST(match.handler == nullptr);
  BOOST_TEST(match.route == "unmatched");
}

BOOST_AUTO_TEST_CASE(wrong_method_is_405_listing_the_allowed_ones) {
  std::string called;
  Router router = make_router(called);
  auto match = router.match("DELETE", "/a");
  BOOST_TEST(match.status == 405);
  BOOST_TEST(match.allow == "GET, HEAD, POST");
  BOOST_TEST(router.match("GET", "/b").allow == "POST");
}
