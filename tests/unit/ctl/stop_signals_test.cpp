#define BOOST_TEST_MODULE stop_signals
#include "stop_signals.hpp"

#include <poll.h>

#include <boost/test/unit_test.hpp>

#include <csignal>

using tandem::ctl::StopSignals;

namespace {

bool blocked(int signal) {
  sigset_t mask{};
  sigprocmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal) == 1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_signal_is_read_not_delivered) {
  const StopSignals stop;
  BOOST_TEST(!stop.pending());
  std::raise(SIGTERM);
  BOOST_TEST(stop.pending());
  pollfd entry{stop.fd(), POLLIN, 0};
  BOOST_TEST(::poll(&entry, 1, 0) == 1);
}

BOOST_AUTO_TEST_CASE(signals_that_come_after_it_do_not_kill_the_process) {
  { const StopSignals stop; }
  BOOST_TEST(blocked(SIGINT));
  BOOST_TEST(blocked(SIGTERM));
  // Unblocked, their default action would end this test here.
  std::raise(SIGINT);
  std::raise(SIGTERM);
  BOOST_TEST(blocked(SIGTERM));
}
