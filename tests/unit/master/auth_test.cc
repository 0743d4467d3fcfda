#include "master/auth.h"

#include <catch2/catch.hpp>
#include <set>

#include "tests/unit/test_util.h"

namespace prs::master {
namespace {

using prs::testing::TempDir;

TEST_CASE("roles parse by name; an unknown role is named") {
  auto roles = ParseRoles("submit,read");
  REQUIRE(roles.ok());
  CHECK(RolesText(*roles) == "submit,read");
  auto bad = ParseRoles("submit,root");
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()).find("unknown role 'root'") != std::string::npos);
  CHECK_FALSE(ParseRoles("").ok());
}

TEST_CASE("a token is stored as its SHA-256") {
  CHECK(HashToken("abc") ==
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("random ids are 128 bits of hex and do not repeat") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = RandomId();
    REQUIRE(id.size() == 32);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("who sees and who manages a job") {
  const Principal alice{"alice", static_cast<uint32_t>(Role::kSubmit)};
  const Principal reader{"rd", static_cast<uint32_t>(Role::kRead)};
  const Principal admin{"root", static_cast<uint32_t>(Role::kAdmin)};
  const Principal agent{"agents", static_cast<uint32_t>(Role::kAgent)};
  CHECK(alice.CanSee("alice"));
  CHECK(alice.CanManage("alice"));
  CHECK_FALSE(alice.CanSee("bob"));
  CHECK_FALSE(alice.CanManage("bob"));
  CHECK(reader.CanSee("bob"));
  CHECK_FALSE(reader.CanManage("bob"));
  CHECK(admin.CanSee("bob"));
  CHECK(admin.CanManage("bob"));
  CHECK_FALSE(agent.CanSee("bob"));
  CHECK(Principal::Local().admin());
  CHECK(Principal::Local().Has(Role::kAgent));
}

TEST_CASE("the tokens file maps tokens to principals; a bad reload keeps the old table") {
  TempDir dir;
  const std::string path = dir.Sub("tokens");
  dir.Write("tokens", "# comment\n\n" + HashToken("t-alice") + "  alice  submit\n" +
                          HashToken("t-ops") + " ops admin,read\n");
  auto auth = Authenticator::Load(path);
  REQUIRE(auth.ok());
  CHECK((*auth)->size() == 2);
  auto alice = (*auth)->Authenticate("t-alice");
  REQUIRE(alice.ok());
  CHECK(alice->name == "alice");
  CHECK(alice->Has(Role::kSubmit));
  CHECK_FALSE(alice->Has(Role::kRead));
  CHECK((*auth)->Authenticate("t-ops")->admin());
  auto unknown = (*auth)->Authenticate("t-mallory");
  CHECK(unknown.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK((*auth)->Authenticate("").status().code() == absl::StatusCode::kUnauthenticated);

  // A token in place of its hash, a duplicate name, a wrong role: refused, naming the line.
  for (const std::string& text : {std::string("t-alice alice submit\n"),
                                  HashToken("a") + " x submit\n" + HashToken("b") + " x read\n",
                                  HashToken("a") + " x superuser\n", HashToken("a") + " x\n"}) {
    dir.Write("tokens", text);
    auto reload = (*auth)->Reload();
    REQUIRE_FALSE(reload.ok());
    CHECK(std::string(reload.message()).find(path + " line") != std::string::npos);
    CHECK((*auth)->Authenticate("t-alice").ok());  // the old table stays
  }
  dir.Write("tokens", HashToken("t-carol") + " carol read\n");
  REQUIRE((*auth)->Reload().ok());
  CHECK_FALSE((*auth)->Authenticate("t-alice").ok());
  CHECK((*auth)->Authenticate("t-carol")->name == "carol");
  CHECK(Authenticator::Load(dir.Sub("missing")).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("prs run's master takes only the token its process made") {
  auto auth = Authenticator::ForToken("run-secret", Principal::Local());
  auto p = auth->Authenticate("run-secret");
  REQUIRE(p.ok());
  CHECK(p->name == "local");
  CHECK(p->admin());
  CHECK(auth->Authenticate("").status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(auth->Authenticate("guess").status().code() == absl::StatusCode::kUnauthenticated);
  CHECK_FALSE(auth->Reload().ok());
}

}  // namespace
}  // namespace prs::master
