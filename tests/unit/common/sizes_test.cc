#include "common/sizes.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/status/status.h"

namespace prs {
namespace {

using Catch::Matchers::Contains;

TEST_CASE("ValidateJobName accepts names that follow the rule", "[sizes]") {
  for (const char* name :
       {"abc", "predict-digits", "a1-b", "job-2", "a--b", "abcdefghijklmnopqrstuvwxyz012345"}) {
    INFO(name);
    CHECK(ValidateJobName(name).ok());
  }
}

TEST_CASE("ValidateJobName refuses names that break the rule, saying why", "[sizes]") {
  struct Case {
    const char* name;
    const char* why;
  };
  const Case cases[] = {
      {"ab", "too short: 2 characters"},
      {"", "too short: 0 characters"},
      {"abcdefghijklmnopqrstuvwxyz0123456", "too long: 33 characters"},
      {"1abc", "must start with a lowercase letter"},
      {"-abc", "must start with a lowercase letter"},
      {"Predict", "must start with a lowercase letter"},
      {"predictDigits", "contains uppercase letters"},
      {"predict_digits", "contains '_'"},
      {"predict digits", "contains ' '"},
      {"predict-", "must not end with '-'"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const absl::Status status = ValidateJobName(c.name);
    REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains(c.why));
    CHECK_THAT(std::string(status.message()), Contains("name: '" + std::string(c.name) + "'"));
    CHECK_THAT(std::string(status.message()), Contains("e.g. predict-digits"));
  }
}

TEST_CASE("ParseMiniBatchSize reads counts", "[sizes]") {
  for (const auto& [text, value] : std::initializer_list<std::pair<const char*, int64_t>>{
           {"10", 10}, {" 25 ", 25}, {"1024", 1024}, {"1", 1}, {"007", 7}}) {
    INFO(text);
    const absl::StatusOr<MiniBatchSize> size = ParseMiniBatchSize(text);
    REQUIRE(size.ok());
    CHECK(size->kind == MiniBatchSize::kCount);
    CHECK(size->value == value);
  }
}

TEST_CASE("ParseMiniBatchSize reads 1024-based byte sizes in any case", "[sizes]") {
  for (const auto& [text, value] :
       std::initializer_list<std::pair<const char*, int64_t>>{{"1KB", 1024},
                                                              {"512KB", 512 * 1024},
                                                              {"1MB", 1024 * 1024},
                                                              {"1mb", 1024 * 1024},
                                                              {"1Mb", 1024 * 1024},
                                                              {"2GB", int64_t{2} << 30},
                                                              {"3gB", int64_t{3} << 30}}) {
    INFO(text);
    const absl::StatusOr<MiniBatchSize> size = ParseMiniBatchSize(text);
    REQUIRE(size.ok());
    CHECK(size->kind == MiniBatchSize::kBytes);
    CHECK(size->value == value);
  }
}

TEST_CASE("ParseMiniBatchSize reads row counts", "[sizes]") {
  for (const auto& [text, value] : std::initializer_list<std::pair<const char*, int64_t>>{
           {"5000 rows", 5000}, {"1 row", 1}, {"5000rows", 5000}, {"20 ROWS", 20}}) {
    INFO(text);
    const absl::StatusOr<MiniBatchSize> size = ParseMiniBatchSize(text);
    REQUIRE(size.ok());
    CHECK(size->kind == MiniBatchSize::kRows);
    CHECK(size->value == value);
  }
}

TEST_CASE("ParseMiniBatchSize refuses garbage with the fix", "[sizes]") {
  const absl::StatusOr<MiniBatchSize> size = ParseMiniBatchSize("10XB");
  REQUIRE(size.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(size.status().message() ==
        "mini_batch_size: '10XB' is not a size; use a count like 10 or a size like 1MB");

  for (const char* text :
       {"1B", "1b", "1.5MB", "MB", "1KBMB", "ten", "1 MB", "1TB", "x rows", "rows", "0x10"}) {
    INFO(text);
    const absl::Status status = ParseMiniBatchSize(text).status();
    REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains("is not a size"));
  }
}

TEST_CASE("ParseMiniBatchSize refuses empty, non-positive and overflowing sizes", "[sizes]") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "mini_batch_size: is empty; use a count like 10"},
      {"   ", "mini_batch_size: is empty"},
      {"0", "mini_batch_size: must be positive, got '0'"},
      {"0MB", "must be positive, got '0MB'"},
      {"0 rows", "must be positive, got '0 rows'"},
      {"-5", "mini_batch_size: must be positive, got '-5'"},
      {"99999999999999999999", "'99999999999999999999' is too large"},
      {"9999999999GB", "'9999999999GB' is too large"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    const absl::Status status = ParseMiniBatchSize(c.text).status();
    REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()), Contains(c.message));
  }
}

TEST_CASE("ParseMiniBatchSize accepts the largest sizes that fit", "[sizes]") {
  const absl::StatusOr<MiniBatchSize> count = ParseMiniBatchSize("9223372036854775807");
  REQUIRE(count.ok());
  CHECK(count->value == INT64_MAX);
  const absl::StatusOr<MiniBatchSize> bytes = ParseMiniBatchSize("8589934591GB");
  REQUIRE(bytes.ok());
  CHECK(bytes->value == int64_t{8589934591} << 30);
}

TEST_CASE("ValidateFileName accepts plain file names", "[sizes]") {
  for (const char* name : {"parallel_run_step.txt", "out.csv", "a", "results-2024 v1.txt", "..a"}) {
    INFO(name);
    CHECK(ValidateFileName(name).ok());
  }
}

TEST_CASE("ValidateFileName refuses each forbidden character", "[sizes]") {
  for (char c : std::string("~\"#%&*:<>?/\\{|}")) {
    const std::string name = std::string("out") + c + "put.txt";
    INFO(name);
    const absl::Status status = ValidateFileName(name);
    REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(status.message()),
               Contains("append_row_file_name: '" + name + "' contains '" + c + "'"));
    CHECK_THAT(std::string(status.message()), Contains("e.g. parallel_run_step.txt"));
  }
}

TEST_CASE("ValidateFileName refuses empty, dot names and control characters", "[sizes]") {
  CHECK_THAT(std::string(ValidateFileName("").message()),
             Contains("append_row_file_name: is empty"));
  CHECK_THAT(std::string(ValidateFileName("..").message()), Contains("is not a file name"));
  CHECK_THAT(std::string(ValidateFileName(".").message()), Contains("is not a file name"));
  const absl::Status status = ValidateFileName("out\nput.txt");
  REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()),
             Contains("out\\nput.txt' contains a control character"));
}

TEST_CASE("FormatBytes uses 1024-based units", "[sizes]") {
  CHECK(FormatBytes(0) == "0 B");
  CHECK(FormatBytes(-3) == "0 B");
  CHECK(FormatBytes(1023) == "1023 B");
  CHECK(FormatBytes(1024) == "1 KB");
  CHECK(FormatBytes(1536) == "1.5 KB");
  CHECK(FormatBytes(64 << 20) == "64 MB");
  CHECK(FormatBytes((int64_t{5} << 30) / 2) == "2.5 GB");
}

}  // namespace
}  // namespace prs
