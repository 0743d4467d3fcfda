#include "common/job_yaml.h"

#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace prs::job_yaml {
namespace {

using Catch::Matchers::Contains;

constexpr absl::string_view kKnown[] = {"node_count", "process_count_per_node", "mini_batch_size"};

TEST_CASE("EditDistance counts insertions, deletions and substitutions", "[job_yaml]") {
  CHECK(EditDistance("", "") == 0);
  CHECK(EditDistance("abc", "abc") == 0);
  CHECK(EditDistance("abc", "") == 3);
  CHECK(EditDistance("kitten", "sitting") == 3);
  CHECK(EditDistance("mini_batch_sise", "mini_batch_size") == 1);
}

TEST_CASE("NearestKey suggests a close key, a longer form, or nothing", "[job_yaml]") {
  CHECK(NearestKey("mini_batch_sise", kKnown) == "mini_batch_size");
  CHECK(NearestKey("NODE_COUNT", kKnown) == "node_count");
  CHECK(NearestKey("process_count", kKnown) == "process_count_per_node");
  CHECK(NearestKey("colour", kKnown).empty());
}

TEST_CASE("UnknownKey lists the known keys when nothing is close", "[job_yaml]") {
  CHECK(UnknownKey("", "colour", kKnown, {}).message() ==
        "unknown key 'colour'; the known keys are node_count, process_count_per_node, "
        "mini_batch_size");
  CHECK(UnknownKey("environment", "pyton", {"python"}, {}).message() ==
        "environment: unknown key 'pyton'; did you mean 'python'?");
}

TEST_CASE("Get finds a key under its other name, and refuses both", "[job_yaml]") {
  constexpr Alias kAliases[] = {{"node_count", "instance_count"}};
  const absl::StatusOr<Fields> fields = ReadMap(YAML::Load("instance_count: 4"), "", {});
  REQUIRE(fields.ok());
  const absl::StatusOr<Field> field = Get(*fields, "node_count", kAliases);
  REQUIRE(field.ok());
  CHECK(field->key == "instance_count");
  CHECK(field->node.Scalar() == "4");

  const absl::StatusOr<Fields> both =
      ReadMap(YAML::Load("{instance_count: 4, node_count: 2}"), "", {});
  REQUIRE(both.ok());
  CHECK(Get(*both, "node_count", kAliases).status().message() ==
        "node_count and instance_count are the same setting; keep one of them");
}

TEST_CASE("LooksLikeUri tells URIs from paths", "[job_yaml]") {
  CHECK(LooksLikeUri("azureml://datastores/x"));
  CHECK(LooksLikeUri("s3://bucket/key"));
  CHECK(LooksLikeUri("git+https://host/repo"));
  CHECK_FALSE(LooksLikeUri("./data"));
  CHECK_FALSE(LooksLikeUri("/data/a://b"));
  CHECK_FALSE(LooksLikeUri("://x"));
}

TEST_CASE("ResolvePath makes paths absolute and normal", "[job_yaml]") {
  CHECK(ResolvePath("/jobs/digits", "data/") == "/jobs/digits/data");
  CHECK(ResolvePath("/jobs/digits", "../shared/./x") == "/jobs/shared/x");
  CHECK(ResolvePath("/jobs/digits", "/abs/path/") == "/abs/path");
}

TEST_CASE("ApplyOverride sets nested keys, list items and dotted variable names", "[job_yaml]") {
  YAML::Node root = YAML::Load("inputs: [{path: a}]");
  REQUIRE(ApplyOverride(root, "environment.variables.a.b=1").ok());
  REQUIRE(ApplyOverride(root, "inputs.0.path=b").ok());
  CHECK(root["environment"]["variables"]["a.b"].Scalar() == "1");
  CHECK(root["inputs"][0]["path"].Scalar() == "b");
  CHECK(ApplyOverride(root, "inputs.3.path=c").message() ==
        "--set 'inputs.3.path=c': 'inputs' is a list of 1 items; '3' is not an index of it "
        "(they start at 0)");
  CHECK_THAT(std::string(ApplyOverride(root, "inputs.0.path.x=c").message()),
             Contains("'inputs.0.path' holds a single value, not keys"));
}

}  // namespace
}  // namespace prs::job_yaml
