#include "master/lease_table.h"

#include <catch2/catch.hpp>
#include <functional>
#include <memory>

namespace prs::master {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

// Lease ids for the tests: "L1", "L2", ...
std::function<std::string()> Ids() {
  auto n = std::make_shared<int>(0);
  return [n] { return "L" + std::to_string(++*n); };
}

TEST_CASE("leases are granted from the front of the queue, each try counted from 1") {
  LeaseTable t;
  t.Enqueue(1, 0);
  t.Enqueue(2, 1);
  t.EnqueueFront(0, 0);  // a plan, or a mini-batch given back unrun, goes first
  const auto ids = Ids();
  auto granted = t.Grant("a#1", 2, kT0, /*run=*/3, ids);
  REQUIRE(granted.size() == 2);
  CHECK(granted[0].task_id == 0);
  CHECK(granted[0].lease.lease_id == "L1");
  CHECK(granted[0].lease.attempt == 1);
  CHECK(granted[0].lease.run == 3);
  CHECK(granted[1].task_id == 1);
  CHECK(granted[1].lease.lease_id == "L2");
  CHECK(t.pending() == 1);
  CHECK(t.leased() == 2);
  auto rest = t.Grant("b#1", 5, kT0, 3, ids);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].task_id == 2);
  CHECK(rest[0].lease.attempt == 2);
  CHECK_FALSE(t.has_pending());
  CHECK_FALSE(t.idle());
}

TEST_CASE("only the holder of the current lease can take it, once") {
  LeaseTable t;
  t.Enqueue(7, 0);
  const std::string lease_id = t.Grant("a#1", 1, kT0, 0, Ids())[0].lease.lease_id;
  const std::string other = "b#1", holder = "a#1";
  CHECK_FALSE(t.Take(7, lease_id + "x").has_value());    // another lease
  CHECK_FALSE(t.Take(7, lease_id, &other).has_value());  // another agent
  CHECK_FALSE(t.Take(8, lease_id).has_value());          // another task
  auto taken = t.Take(7, lease_id, &holder);
  REQUIRE(taken.has_value());
  CHECK(taken->agent_id == "a#1");
  CHECK_FALSE(t.Take(7, lease_id, &holder).has_value());  // reported twice
  CHECK(t.idle());
}

TEST_CASE("an agent's leases are reclaimed; unheld ones only after the cutoff") {
  LeaseTable t;
  for (int64_t i = 0; i < 4; ++i) t.Enqueue(i, 0);
  const auto ids = Ids();
  auto a = t.Grant("a#1", 2, kT0, 0, ids);
  auto b = t.Grant("b#1", 2, kT0 + absl::Seconds(60), 0, ids);
  // a holds its first lease; the second never reached it.
  auto unheld = t.TakeUnheld("a#1", {a[0].lease.lease_id}, kT0 + absl::Seconds(30));
  REQUIRE(unheld.size() == 1);
  CHECK(unheld[0].first == a[1].task_id);
  // b's leases are younger than the cutoff: kept though not held.
  CHECK(t.TakeUnheld("b#1", {}, kT0 + absl::Seconds(30)).empty());
  auto all_b = t.TakeAllOf("b#1");
  CHECK(all_b.size() == 2);
  CHECK(t.holders() == std::set<std::string>{"a#1"});
  auto dropped = t.Clear();
  CHECK(dropped.size() == 1);
  CHECK(t.idle());
}

TEST_CASE("failed deliveries are counted per mini-batch until it ends") {
  LeaseTable t;
  CHECK(t.NoteUndelivered(5) == 1);
  CHECK(t.NoteUndelivered(5) == 2);
  CHECK(t.NoteUndelivered(6) == 1);
  t.ForgetUndelivered(5);
  CHECK(t.NoteUndelivered(5) == 1);
}

}  // namespace
}  // namespace prs::master
