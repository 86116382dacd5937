#define BOOST_TEST_MODULE session_id
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <string>
#include <unordered_set>

#include "app/sessions/session_store.hpp"

namespace tandem {

BOOST_AUTO_TEST_CASE(ids_are_32_lowercase_hex_digits) {
  for (int i = 0; i < 100; ++i) {
    const std::string id = new_session_id();
    BOOST_TEST(id.size() == 32u);
    BOOST_TEST(std::all_of(id.begin(), id.end(),
                           [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }),
               id);
    BOOST_TEST(is_valid_session_id(id));
  }
}

BOOST_AUTO_TEST_CASE(ten_thousand_ids_are_unique) {
  constexpr int kCount = 10000;
  std::unordered_set<std::string> seen;
  for (int i = 0; i < kCount; ++i) seen.insert(new_session_id());
  BOOST_TEST(seen.size() == static_cast<std::size_t>(kCount));
}

BOOST_AUTO_TEST_CASE(every_hex_digit_shows_up_in_every_position) {
  // A broken generator (a constant byte, an unfilled half) would leave some position stuck.
  std::array<std::unordered_set<char>, 32> digits_at;
  for (int i = 0; i < 2000; ++i) {
    const std::string id = new_session_id();
    for (std::size_t position = 0; position < id.size(); ++position) {
      digits_at[position].insert(id[position]);
    }
  }
  for (const auto& digits : digits_at) BOOST_TEST(digits.size() == 16u);
}

BOOST_AUTO_TEST_CASE(client_ids_are_validated) {
  BOOST_TEST(is_valid_session_id("a"));
  BOOST_TEST(is_valid_session_id("ABC-def_123"));
  BOOST_TEST(is_valid_session_id(std::string(128, 'x')));
  BOOST_TEST(!is_valid_session_id(""));
  BOOST_TEST(!is_valid_session_id(std::string(129, 'x')));
  for (const std::string bad :
       {"a b", "a;b", "a=b", "a.b", "a/b", "a\"b", "a\nb", "caf\xc3\xa9", "semi;colon", "tab\t"}) {
    BOOST_TEST(!is_valid_session_id(bad), bad);
  }
  BOOST_TEST(!is_valid_session_id(std::string("a\0b", 3)));
}

}  // namespace tandem
