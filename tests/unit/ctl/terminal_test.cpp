#define BOOST_TEST_MODULE terminal
#include "terminal.hpp"

#include <boost/test/unit_test.hpp>

using tandem::ctl::clip;
using tandem::ctl::Colour;
using tandem::ctl::paint;
using tandem::ctl::visible_width;

BOOST_AUTO_TEST_CASE(colour_sequences_take_no_column) {
  const std::string line = "ID " + paint("UP", Colour::kGreen, true) + " 12.0";
  BOOST_TEST(visible_width(line) == 10u);
  BOOST_TEST(visible_width("") == 0u);
  BOOST_TEST(visible_width("caf\xc3\xa9") == 4u);  // UTF-8: one column per character.
}

BOOST_AUTO_TEST_CASE(clip_keeps_what_fits) {
  BOOST_TEST(clip("short", 10) == "short");
  BOOST_TEST(clip("exactly10!", 10) == "exactly10!");
  BOOST_TEST(clip("a longer line", 8) == "a longer");
  BOOST_TEST(clip("anything", 0) == "");
}

BOOST_AUTO_TEST_CASE(clip_counts_only_visible_columns_and_resets_a_cut_colour) {
  const std::string red = paint("unreachable: Connection refused", Colour::kRed, true);
  const std::string cut = clip("app-1 " + red, 17);
  BOOST_TEST(visible_width(cut) == 17u);
  BOOST_TEST(cut == "app-1 \033[31munreachable\033[0m");
  // Not cut: the line as it was, its own reset included.
  BOOST_TEST(clip("app-1 " + red, 100) == "app-1 " + red);
}

BOOST_AUTO_TEST_CASE(clip_never_splits_a_utf8_character) {
  BOOST_TEST(clip("caf\xc3\xa9s", 4) == "caf\xc3\xa9");
}

BOOST_AUTO_TEST_CASE(clip_shows_control_characters_as_question_marks) {
  BOOST_TEST(clip("two\nlines\tand\x7f", 100) == "two?lines?and?");
  BOOST_TEST(clip("stray \033 escape", 100) == "stray ? escape");
}
