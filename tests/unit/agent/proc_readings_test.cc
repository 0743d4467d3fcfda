#include "agent/proc_readings.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace prs::agent {
namespace {

TEST_CASE("UnescapeMountField decodes /proc/mounts' octal escapes", "[proc_readings]") {
  CHECK(UnescapeMountField("/mnt/my\\040disk") == "/mnt/my disk");
  CHECK(UnescapeMountField("/a\\011b\\012c\\134d") == "/a\tb\nc\\d");
  CHECK(UnescapeMountField("/plain") == "/plain");
  CHECK(UnescapeMountField("/not\\99escape") == "/not\\99escape");
}

TEST_CASE("IsWholeDisk counts disks once, without their partitions", "[proc_readings]") {
  const std::vector<std::string> all = {"sda", "sda1", "nvme0n1", "nvme0n1p1", "loop0", "dm-0"};
  CHECK(IsWholeDisk("sda", all, /*have_sys=*/false));
  CHECK_FALSE(IsWholeDisk("sda1", all, false));
  CHECK(IsWholeDisk("nvme0n1", all, false));
  CHECK_FALSE(IsWholeDisk("nvme0n1p1", all, false));
  CHECK_FALSE(IsWholeDisk("loop0", all, false));
  CHECK_FALSE(IsWholeDisk("dm-0", all, false));
}

TEST_CASE("ReadProcStat and ReadWorker read this process", "[proc_readings]") {
  const auto st = ReadProcStat(::getpid());
  REQUIRE(st.has_value());
  CHECK(st->threads >= 1);
  const auto w = ReadWorker(::getpid(), "process000");
  REQUIRE(w.has_value());
  CHECK(w->name == "process000");
  CHECK(w->rss_mb.value_or(0) > 0);
  CHECK(w->open_files.value_or(0) > 0);
}

}  // namespace
}  // namespace prs::agent
