#include "common/descriptor.h"

#include <catch2/catch.hpp>

namespace prs {
namespace {

TEST_CASE("tabular descriptors read as a person would write them") {
  CHECK(DescribeItem("/data/a b.png") == "/data/a b.png");
  CHECK(DescribeItem("range\tcsv:4295:1796\t1024@10\t2048@25\t/data/sales.csv") ==
        "/data/sales.csv, bytes 1024-2048 (records 11-25)");
  CHECK(DescribeItem("range\tcsv:4295:1796\t1024\t2048\t/data/sales.csv") ==
        "/data/sales.csv, bytes 1024-2048");
  CHECK(DescribeItem("range\tcsv\t0\t-1\t/data/x.csv.gz") == "/data/x.csv.gz (the whole file)");
  CHECK(DescribeItem("group\tcsv:1:2\t[\"store\",\"brand\"]\t[\"7\",\"acme\"]\t/d/m.csv") ==
        "/d/m.csv, the rows where store=7, brand=acme");
  CHECK(DescribeItem("plan\tbytes\tcsv:1:2\t1048576@67108864@12\t/d/big.csv") ==
        "/d/big.csv, planning its mini-batches from byte 67108864");
}

}  // namespace
}  // namespace prs
