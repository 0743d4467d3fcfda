#include "common/text.h"

#include <catch2/catch.hpp>

namespace prs {
namespace {

TEST_CASE("IsValidUtf8 accepts UTF-8 and refuses stray, overlong and surrogate bytes") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(IsValidUtf8("caf\xe9.txt"));       // Latin-1
  CHECK_FALSE(IsValidUtf8("\xc3"));              // cut short
  CHECK_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a UTF-16 surrogate
  CHECK_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST_CASE("SanitizeUtf8 keeps text and writes stray bytes as \\xNN") {
  CHECK(SanitizeUtf8("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(SanitizeUtf8("/data/caf\xe9.txt") == "/data/caf\\xe9.txt");
  CHECK(IsValidUtf8(SanitizeUtf8(std::string("\xff\xfe\x00\x80", 4))));
}

TEST_CASE("Printable shows whole characters and escapes controls, and cuts long text") {
  CHECK(Printable("caf\xc3\xa9") == "caf\xc3\xa9");  // not half a character
  CHECK(Printable("a\x1b[2Jb\x07\n") == "a\\x1b[2Jb\\x07\\n");
  const std::string cut = Printable(std::string(1000, 'a'), 10);
  CHECK(cut == "aaaaaaaaaa...(1000 bytes)");
}

}  // namespace
}  // namespace prs

namespace prs {
namespace {

TEST_CASE("BoundedUtf8 cuts on a character boundary, and only what is over") {
  CHECK(BoundedUtf8("abc", 3) == "abc");
  CHECK(BoundedUtf8("abcd", 3) == "abc");
  CHECK(BoundedUtf8("", 0).empty());
  // "é" is two bytes: a bound in its middle leaves it out whole.
  CHECK(BoundedUtf8("a\xC3\xA9", 2) == "a");
  CHECK(BoundedUtf8("a\xC3\xA9", 3) == "a\xC3\xA9");
  // Four-byte characters, the bound at each byte of one.
  const std::string smile = "\xF0\x9F\x98\x80";
  for (size_t bound = 4; bound < 8; ++bound) CHECK(BoundedUtf8(smile + smile, bound) == smile);
  // Stray bytes become \xNN, and count as written.
  CHECK(BoundedUtf8("a\xFF", 10) == "a\\xff");
  CHECK(BoundedUtf8("a\xFF", 3) == "a\\x");
  // A long text: the result is the same as sanitizing it all first.
  std::string long_text;
  for (int i = 0; i < 1000; ++i) long_text += "\xC3\xA9\xFF";
  for (size_t bound : {0u, 1u, 2u, 3u, 100u, 1001u, 4000u}) {
    std::string all = SanitizeUtf8(long_text);
    std::string got = BoundedUtf8(long_text, bound);
    CHECK(got.size() <= bound);
    CHECK(IsValidUtf8(got));
    CHECK(all.compare(0, got.size(), got) == 0);
  }
}

}  // namespace
}  // namespace prs
