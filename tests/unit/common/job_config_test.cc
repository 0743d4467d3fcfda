#include "common/job_config.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>
#include "tests/unit/test_util.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace prs {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

using prs::testing::TempDir;

constexpr char kBaseDir[] = "/jobs/digits";

// The smallest valid job file.
constexpr char kMinimal[] = R"(
name: predict-digits
entry_script: score.py
source_directory: ./scripts
inputs: ./data
output: ./out
)";

absl::StatusOr<v1::JobSpec> Parse(const std::string& yaml,
                                  const std::vector<std::string>& overrides = {}) {
  return ParseJobYaml(yaml, kBaseDir, overrides);
}

// Parses and returns the error message, requiring INVALID_ARGUMENT.
std::string ErrorOf(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  const absl::StatusOr<v1::JobSpec> spec = Parse(yaml, overrides);
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

// kMinimal plus more lines.
std::string Minimal(const std::string& more) { return absl::StrCat(kMinimal, more); }

TEST_CASE("A minimal job file gets ParallelRunStep's defaults", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(kMinimal);
  REQUIRE(spec.ok());
  CHECK(spec->name() == "predict-digits");
  CHECK(spec->entry_script() == "score.py");
  CHECK(spec->source_directory() == "/jobs/digits/scripts");
  REQUIRE(spec->inputs_size() == 1);
  CHECK(spec->inputs(0).name() == "input0");
  CHECK(spec->inputs(0).type() == "file");
  CHECK(spec->inputs(0).path() == "/jobs/digits/data");
  CHECK(spec->output() == "/jobs/digits/out");
  CHECK(spec->output_action() == "append_row");
  CHECK(spec->append_row_file_name() == "parallel_run_step.txt");
  CHECK(spec->mini_batch_size() == 10);
  CHECK(spec->mini_batch_size_text() == "10");
  CHECK(spec->error_threshold() == -1);
  CHECK(spec->allowed_failed_count() == -1);
  CHECK(spec->allowed_failed_percent() == 100);
  CHECK(spec->node_count() == 1);
  CHECK(spec->process_count_per_node() == 1);
  CHECK(spec->run_invocation_timeout() == 60);
  CHECK(spec->run_max_try() == 3);
  CHECK(spec->logging_level() == "INFO");
  CHECK(spec->resource_monitor_interval() == 600);
  CHECK(spec->allow_reuse());
  CHECK(spec->arguments().empty());
  CHECK(spec->side_inputs().empty());
  CHECK(spec->environment().python().empty());
  CHECK(spec->environment().variables().empty());
}

TEST_CASE("The job file of the design brief parses in full", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(R"(
name: predict-digits            # 3-32 chars, ^[a-z]([-a-z0-9]*[a-z0-9])?$
entry_script: digit_identification.py
source_directory: ./scripts     # snapshotted at submit; the job runs the snapshot
inputs:
  - name: images
    type: file                  # file | tabular
    path: ./data/digits         # folder, glob, or a text file listing paths
side_inputs:
  - name: labels
    path: ./data/labels         # not partitioned; available on every node
arguments: [--labels_dir, "${side_inputs.labels}"]
output: ./out
output_action: append_row       # append_row | summary_only
append_row_file_name: parallel_run_step.txt
mini_batch_size: 10             # files; for tabular "1MB" (1024-based KB/MB/GB)
error_threshold: 10             # failed items over the whole job; -1 ignores all
allowed_failed_count: -1        # failed mini-batches
allowed_failed_percent: 100
node_count: 2
process_count_per_node: 2
run_invocation_timeout: 60      # seconds, one run() call
run_max_try: 3                  # tries in all, not retries
logging_level: INFO             # WARNING | INFO | DEBUG
resource_monitor_interval: 600  # seconds; 0 turns it off
allow_reuse: true
environment:
  python: /usr/bin/python3   # the interpreter that has the packages the script needs
  variables: {OMP_NUM_THREADS: "1"}
)");
  REQUIRE(spec.ok());
  CHECK(spec->entry_script() == "digit_identification.py");
  REQUIRE(spec->inputs_size() == 1);
  CHECK(spec->inputs(0).name() == "images");
  CHECK(spec->inputs(0).path() == "/jobs/digits/data/digits");
  REQUIRE(spec->side_inputs_size() == 1);
  CHECK(spec->side_inputs(0).name() == "labels");
  CHECK(spec->side_inputs(0).path() == "/jobs/digits/data/labels");
  REQUIRE(spec->arguments_size() == 2);
  CHECK(spec->arguments(0) == "--labels_dir");
  CHECK(spec->arguments(1) == "/jobs/digits/data/labels");
  CHECK(spec->error_threshold() == 10);
  CHECK(spec->node_count() == 2);
  CHECK(spec->process_count_per_node() == 2);
  CHECK(spec->environment().python() == "/usr/bin/python3");
  CHECK(spec->environment().variables().at("OMP_NUM_THREADS") == "1");
}

TEST_CASE("YAML syntax errors give the line and column", "[job_config]") {
  const std::string message = ErrorOf("name: a\nentry_script: [score.py\nnode_count: 2\n");
  CHECK_THAT(message, Contains("job file line "));
  CHECK_THAT(message, Contains(", column "));

  CHECK_THAT(ErrorOf("name: a\n  bad: indent: here\n"), Contains("job file line 2, column "));
}

TEST_CASE("Several YAML documents in one job file are refused", "[job_config]") {
  CHECK_THAT(ErrorOf(absl::StrCat(kMinimal, "---\nname: other\n")),
             Contains("job file holds 2 YAML documents"));
}

// Found by fuzz/job_file_fuzzer: yaml-cpp 0.7's LoadAll() never returned on
// these, filling memory with empty documents.
TEST_CASE("A token the YAML parser cannot get past is a syntax error instead of a hang",
          "[job_config]") {
  CHECK_THAT(ErrorOf(","), StartsWith("job file line 1, column 1: unexpected ','"));
  CHECK_THAT(ErrorOf(absl::StrCat(kMinimal, "---\n,\n")),
             StartsWith("job file line 8, column 1: unexpected ','"));
}

TEST_CASE("The top level must be a map", "[job_config]") {
  CHECK_THAT(ErrorOf("- name: a\n"), Contains("the job file must be a map of keys"));
  CHECK_THAT(ErrorOf("just text\n"), Contains("got 'just text'"));
}

TEST_CASE("An empty job file reports the first missing key", "[job_config]") {
  CHECK_THAT(ErrorOf(""), Contains("missing required key 'name'"));
}

TEST_CASE("Unknown keys are refused with the nearest known key", "[job_config]") {
  CHECK(ErrorOf(Minimal("mini_batch_sise: 5\n")) ==
        "unknown key 'mini_batch_sise'; did you mean 'mini_batch_size'?");
  CHECK(ErrorOf(Minimal("Node_Count: 5\n")) ==
        "unknown key 'Node_Count'; did you mean 'node_count'?");
  CHECK(ErrorOf(Minimal("process_count: 5\n")) ==
        "unknown key 'process_count'; did you mean 'process_count_per_node'?");
  CHECK(ErrorOf(Minimal("instance_cont: 5\n")) ==
        "unknown key 'instance_cont'; did you mean 'instance_count'?");
  // Nothing close: the primary keys are listed, not the other spellings.
  CHECK(ErrorOf(Minimal("colour: blue\n")) ==
        "unknown key 'colour'; the known keys are name, entry_script, source_directory, inputs, "
        "side_inputs, arguments, output, output_action, append_row_file_name, mini_batch_size, "
        "partition_keys, append_row_format, error_threshold, allowed_failed_count, "
        "allowed_failed_percent, node_count, "
        "process_count_per_node, run_invocation_timeout, run_max_try, logging_level, "
        "resource_monitor_interval, progress_update_timeout, first_task_creation_timeout, "
        "gpus_per_process, allow_reuse, environment");
}

TEST_CASE("Unknown keys inside inputs, side_inputs and environment are refused", "[job_config]") {
  CHECK(ErrorOf("name: abc\ninputs:\n  - {name: a, pth: ./x}\n") ==
        "inputs[0]: unknown key 'pth'; did you mean 'path'?");
  CHECK(ErrorOf(Minimal("side_inputs:\n  - {name: a, paht: ./x}\n")) ==
        "side_inputs[0]: unknown key 'paht'; did you mean 'path'?");
  CHECK(ErrorOf(Minimal("environment:\n  pyhton: /usr/bin/python3\n")) ==
        "environment: unknown key 'pyhton'; did you mean 'python'?");
  CHECK(ErrorOf(Minimal("retry_settings: {max_retry: 2}\n")) ==
        "retry_settings: unknown key 'max_retry'; did you mean 'max_retries'?");
}

TEST_CASE("A key given twice is refused", "[job_config]") {
  CHECK_THAT(ErrorOf(Minimal("node_count: 2\nnode_count: 3\n")),
             Contains("key 'node_count' is given twice; keep one"));
}

TEST_CASE("Missing required keys say what the key is for", "[job_config]") {
  CHECK(ErrorOf("entry_script: s.py\nsource_directory: .\ninputs: ./d\noutput: ./o\n") ==
        "missing required key 'name': the job's name, 3-32 characters like predict-digits");
  CHECK(ErrorOf("name: abc\nsource_directory: .\ninputs: ./d\noutput: ./o\n") ==
        "missing required key 'entry_script': the script with init() and run(mini_batch), "
        "relative to source_directory");
  CHECK_THAT(ErrorOf("name: abc\nentry_script: s.py\ninputs: ./d\noutput: ./o\n"),
             Contains("missing required key 'source_directory': the folder that holds"));
  CHECK_THAT(ErrorOf("name: abc\nentry_script: s.py\nsource_directory: .\noutput: ./o\n"),
             Contains("missing required key 'inputs'"));
  CHECK_THAT(ErrorOf("name: abc\nentry_script: s.py\nsource_directory: .\ninputs: []\n"
                     "output: ./o\n"),
             Contains("missing required key 'inputs'"));
  CHECK_THAT(ErrorOf("name: abc\nentry_script: s.py\nsource_directory: .\ninputs: ./d\n"),
             Contains("missing required key 'output': the folder for the append_row output "
                      "file; or set output_action: summary_only"));
  // An empty string is the same as a missing key.
  CHECK_THAT(ErrorOf("name: ''\nentry_script: s.py\nsource_directory: .\ninputs: ./d\n"),
             Contains("missing required key 'name'"));
}

TEST_CASE("summary_only needs no output", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(
      "name: abc\nentry_script: s.py\nsource_directory: .\ninputs: ./d\n"
      "output_action: Summary_Only\n");
  REQUIRE(spec.ok());
  CHECK(spec->output_action() == "summary_only");
  CHECK(spec->output().empty());
  CHECK(spec->source_directory() == "/jobs/digits");
}

TEST_CASE("A bad job name is refused", "[job_config]") {
  CHECK_THAT(ErrorOf("name: Predict_Digits\nentry_script: s.py\nsource_directory: .\n"
                     "inputs: ./d\noutput: ./o\n"),
             Contains("name: 'Predict_Digits' is not a valid job name"));
}

TEST_CASE("Integer keys must hold integers", "[job_config]") {
  CHECK(ErrorOf(Minimal("node_count: two\n")) == "node_count: 'two' is not an integer");
  CHECK(ErrorOf(Minimal("run_max_try: 1.5\n")) == "run_max_try: '1.5' is not an integer");
  CHECK(ErrorOf(Minimal("error_threshold: [1]\n")) ==
        "error_threshold: must be a single value, got a list");
  CHECK_THAT(ErrorOf(Minimal("node_count: 99999999999\n")),
             Contains("node_count: 99999999999 is out of range"));
  CHECK_THAT(ErrorOf(Minimal("error_threshold: 99999999999999999999\n")),
             Contains("error_threshold: 99999999999999999999 is out of range"));
  // Quoted numbers are numbers too.
  const absl::StatusOr<v1::JobSpec> spec = Parse(Minimal("node_count: \"4\"\n"));
  REQUIRE(spec.ok());
  CHECK(spec->node_count() == 4);
}

TEST_CASE("Integer keys are range-checked with the fix", "[job_config]") {
  CHECK(ErrorOf(Minimal("node_count: 0\n")) == "node_count: must be a positive integer, got 0");
  CHECK(ErrorOf(Minimal("process_count_per_node: -1\n")) ==
        "process_count_per_node: must be a positive integer, got -1");
  CHECK(ErrorOf(Minimal("run_invocation_timeout: 0\n")) ==
        "run_invocation_timeout: must be a positive integer, got 0");
  CHECK(ErrorOf(Minimal("run_max_try: 0\n")) == "run_max_try: must be a positive integer, got 0");
  CHECK(ErrorOf(Minimal("mini_batch_size: 0\n")) ==
        "mini_batch_size: must be positive, got '0'; use a count like 10 or a size like 1MB");
  CHECK_THAT(ErrorOf(Minimal("error_threshold: -2\n")),
             Contains("error_threshold: must be -1 (ignore failed items) or a count of 0 or more, "
                      "got -2"));
  CHECK_THAT(ErrorOf(Minimal("allowed_failed_count: -5\n")),
             Contains("allowed_failed_count: must be -1"));
  CHECK(ErrorOf(Minimal("allowed_failed_percent: 101\n")) ==
        "allowed_failed_percent: must be between 0 and 100, got 101");
  CHECK_THAT(ErrorOf(Minimal("resource_monitor_interval: -1\n")),
             Contains("resource_monitor_interval: must be 0 (off)"));

  const absl::StatusOr<v1::JobSpec> spec =
      Parse(Minimal("error_threshold: 0\nallowed_failed_count: 0\nallowed_failed_percent: 0\n"
                    "resource_monitor_interval: 0\n"));
  REQUIRE(spec.ok());
  CHECK(spec->error_threshold() == 0);
  CHECK(spec->allowed_failed_count() == 0);
  CHECK(spec->allowed_failed_percent() == 0);
  CHECK(spec->resource_monitor_interval() == 0);
}

TEST_CASE("allow_reuse must be a boolean", "[job_config]") {
  CHECK(ErrorOf(Minimal("allow_reuse: maybe\n")) ==
        "allow_reuse: 'maybe' is not a boolean; use true or false");
  const absl::StatusOr<v1::JobSpec> spec = Parse(Minimal("allow_reuse: false\n"));
  REQUIRE(spec.ok());
  CHECK_FALSE(spec->allow_reuse());
}

TEST_CASE("logging_level and output_action are case-insensitive and checked", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(Minimal("logging_level: debug\n"));
  REQUIRE(spec.ok());
  CHECK(spec->logging_level() == "DEBUG");
  CHECK(ErrorOf(Minimal("logging_level: trace\n")) ==
        "logging_level: 'TRACE' must be WARNING, INFO or DEBUG");
  CHECK(ErrorOf(Minimal("output_action: append\n")) ==
        "output_action: 'append' must be append_row or summary_only");
}

TEST_CASE("append_row_file_name is checked", "[job_config]") {
  CHECK_THAT(ErrorOf(Minimal("append_row_file_name: out/rows.txt\n")),
             Contains("append_row_file_name: 'out/rows.txt' contains '/'"));
  const absl::StatusOr<v1::JobSpec> spec = Parse(Minimal("append_row_file_name: rows.csv\n"));
  REQUIRE(spec.ok());
  CHECK(spec->append_row_file_name() == "rows.csv");
}

TEST_CASE("mini_batch_size of file inputs is a count", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(Minimal("mini_batch_size: \" 25 \"\n"));
  REQUIRE(spec.ok());
  CHECK(spec->mini_batch_size() == 25);
  CHECK(spec->mini_batch_size_text() == "25");

  CHECK(ErrorOf(Minimal("mini_batch_size: 10XB\n")) ==
        "mini_batch_size: '10XB' is not a size; use a count like 10 or a size like 1MB");
  CHECK_THAT(ErrorOf(Minimal("mini_batch_size: 1MB\n")),
             Contains("mini_batch_size: '1MB' is a size in bytes, which applies to tabular "
                      "inputs; for file inputs use a count of files like 10"));
  CHECK_THAT(ErrorOf(Minimal("mini_batch_size: 5000 rows\n")),
             Contains("mini_batch_size: '5000 rows' counts rows"));
}

TEST_CASE("inputs take a list of maps, a list of paths, or one path", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(
      "name: abc\nentry_script: s.py\nsource_directory: .\noutput: ./o\n"
      "inputs:\n"
      "  - ./first/\n"
      "  - {path: /abs/second/*.png}\n"
      "  - {name: third, type: FILE, path: ../shared/list.txt}\n");
  REQUIRE(spec.ok());
  REQUIRE(spec->inputs_size() == 3);
  CHECK(spec->inputs(0).name() == "input0");
  CHECK(spec->inputs(0).path() == "/jobs/digits/first");
  CHECK(spec->inputs(1).name() == "input1");
  CHECK(spec->inputs(1).path() == "/abs/second/*.png");
  CHECK(spec->inputs(2).name() == "third");
  CHECK(spec->inputs(2).type() == "file");
  CHECK(spec->inputs(2).path() == "/jobs/shared/list.txt");
}

TEST_CASE("Bad inputs are refused with the fix", "[job_config]") {
  const std::string head = "name: abc\nentry_script: s.py\nsource_directory: .\noutput: ./o\n";
  CHECK(ErrorOf(head + "inputs:\n  - {type: folder, path: ./x}\n") ==
        "inputs[0]: type 'folder' is not known; use type: file or type: tabular");
  CHECK(ErrorOf(head + "inputs:\n  - {type: tabular, path: ./x}\n  - {path: ./y}\n") ==
        "inputs[1]: type 'file' differs from inputs[0]'s 'tabular'; a job's inputs are all "
        "files or all tabular");
  CHECK(ErrorOf(head + "inputs:\n  - {type: tabular, path: ./x, format: parquet}\n") ==
        "inputs[0]: format 'parquet' is not known; use csv, tsv or jsonl (or leave it out to go "
        "by the file extension)");
  CHECK(ErrorOf(head + "inputs:\n  - {path: ./x, format: csv}\n") ==
        "inputs[0]: format applies to type: tabular inputs; remove it or set type: tabular");
  CHECK(ErrorOf(head + "inputs:\n  - ./a\n  - {name: images}\n") ==
        "inputs[1]: missing required key 'path': a folder, a glob or one file (or list_file: a "
        "text file listing paths)");
  CHECK(ErrorOf(head + "inputs:\n  - {name: a, path: ./x}\n  - {name: a, path: ./y}\n") ==
        "inputs[1]: the name 'a' is used twice; give each input its own name");
  CHECK_THAT(ErrorOf(head + "inputs: {path: ./x}\n"),
             Contains("inputs: must be a list of {name, type, path} or a single path"));
  CHECK_THAT(ErrorOf(head + "inputs:\n  - [./x]\n"),
             Contains("inputs[0]: must be a path or a map {name, type, path}, got a list"));
}

TEST_CASE("${side_inputs.NAME} in arguments becomes the side input's path", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(
      Minimal("side_inputs:\n"
              "  - {name: labels, path: ./data/labels}\n"
              "  - {name: model, path: /models/m.pkl}\n"
              "arguments: [--labels_dir, \"${side_inputs.labels}\", "
              "\"--both=${side_inputs.model}:${side_inputs.labels}\", --keep, \"${other}\"]\n"));
  REQUIRE(spec.ok());
  REQUIRE(spec->arguments_size() == 5);
  CHECK(spec->arguments(1) == "/jobs/digits/data/labels");
  CHECK(spec->arguments(2) == "--both=/models/m.pkl:/jobs/digits/data/labels");
  CHECK(spec->arguments(4) == "${other}");
}

TEST_CASE("Bad side inputs and substitutions are refused", "[job_config]") {
  CHECK(ErrorOf(Minimal("side_inputs:\n  - {name: labels, path: ./l}\n"
                        "arguments: [--x, \"${side_inputs.lables}\"]\n")) ==
        "arguments[1]: '${side_inputs.lables}' names no side input; the side inputs are labels");
  CHECK(ErrorOf(Minimal("arguments: [--x, \"${side_inputs.a}\"]\n")) ==
        "arguments[1]: '${side_inputs.a}' names no side input; side_inputs is empty");
  CHECK_THAT(ErrorOf(Minimal("side_inputs:\n  - {name: a, path: ./l}\n"
                             "arguments: [--x, \"${side_inputs.a\"]\n")),
             Contains("arguments[1]: '${side_inputs.a' has no closing '}'"));
  CHECK_THAT(ErrorOf(Minimal("side_inputs:\n  - {path: ./l}\n")),
             Contains("side_inputs[0]: missing required key 'name'"));
  CHECK_THAT(ErrorOf(Minimal("side_inputs:\n  - {name: l}\n")),
             Contains("side_inputs[0]: missing required key 'path'"));
  CHECK_THAT(ErrorOf(Minimal("side_inputs:\n  - ./l\n")),
             Contains("side_inputs[0]: must be a map like {name: labels, path: ./data/labels}"));
  CHECK_THAT(ErrorOf(Minimal("side_inputs:\n  - {name: my labels, path: ./l}\n")),
             Contains("side_inputs[0]: the name 'my labels' must be non-empty and hold only"));
  CHECK_THAT(ErrorOf(Minimal("side_inputs:\n  - {name: a, path: ./l}\n  - {name: a, path: ./m}\n")),
             Contains("side_inputs[1]: the name 'a' is used twice"));
  CHECK_THAT(ErrorOf(Minimal("side_inputs: ./l\n")), Contains("side_inputs: must be a list"));
}

TEST_CASE("arguments are strings; numbers keep their text", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec =
      Parse(Minimal("arguments: [--batch, 32, --rate, 0.50, --flag, true]\n"));
  REQUIRE(spec.ok());
  CHECK(std::vector<std::string>(spec->arguments().begin(), spec->arguments().end()) ==
        std::vector<std::string>{"--batch", "32", "--rate", "0.50", "--flag", "true"});
}

TEST_CASE("The first argument must start with '-'", "[job_config]") {
  CHECK_THAT(ErrorOf(Minimal("arguments: [labels, --x]\n")),
             Contains("arguments[0]: 'labels' must start with '-'"));
}

TEST_CASE("Reserved argument names are refused, with or without dashes", "[job_config]") {
  CHECK(ErrorOf(Minimal("arguments: [--x, 1, --mini_batch_size, 5]\n")) ==
        "arguments[2]: '--mini_batch_size' is a reserved name; set mini_batch_size in the job "
        "file instead (or --set mini_batch_size=...)");
  CHECK_THAT(ErrorOf(Minimal("arguments: [--x, output]\n")),
             Contains("arguments[1]: 'output' is a reserved name; set output in the job file"));
  CHECK_THAT(ErrorOf(Minimal("arguments: [\"--run_max_try=5\"]\n")),
             Contains("arguments[0]: '--run_max_try=5' is a reserved name; set run_max_try"));
  CHECK_THAT(ErrorOf(Minimal("arguments: [-error_threshold, 5]\n")),
             Contains("set error_threshold in the job file"));
  for (const char* reserved :
       {"mini_batch_size", "error_threshold", "allowed_failed_count", "allowed_failed_percent",
        "output", "output_action", "logging_level", "process_count_per_node",
        "run_invocation_timeout", "run_max_try", "append_row_file_name"}) {
    INFO(reserved);
    CHECK_THAT(ErrorOf(Minimal(absl::StrCat("arguments: [--", reserved, "]\n"))),
               Contains("is a reserved name"));
  }
  // Names that merely start like a reserved one are fine.
  CHECK(Parse(Minimal("arguments: [--output_dir, /tmp, --mini_batch_size_hint, 3]\n")).ok());
}

TEST_CASE("arguments must be a list of single values", "[job_config]") {
  CHECK_THAT(ErrorOf(Minimal("arguments: --x\n")), Contains("arguments: must be a list like"));
  CHECK(ErrorOf(Minimal("arguments: [--x, [1, 2]]\n")) ==
        "arguments[1]: must be a single value, got a list");
  CHECK_THAT(ErrorOf(Minimal("arguments: [--x, ~]\n")), Contains("arguments[1]: is empty"));
}

TEST_CASE("environment sets the interpreter and variables", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(
      Minimal("environment:\n  python: ./venv/bin/python\n  variables: {A: 1, B: x, C: ~}\n"));
  REQUIRE(spec.ok());
  CHECK(spec->environment().python() == "/jobs/digits/venv/bin/python");
  CHECK(spec->environment().variables().at("A") == "1");
  CHECK(spec->environment().variables().at("B") == "x");
  CHECK(spec->environment().variables().at("C").empty());

  const absl::StatusOr<v1::JobSpec> bare = Parse(Minimal("environment: {python: python3}\n"));
  REQUIRE(bare.ok());
  CHECK(bare->environment().python() == "python3");

  CHECK(ErrorOf(Minimal("environment:\n  variables: {A: [1]}\n")) ==
        "environment.variables.A: must be a single value, got a list");
  CHECK_THAT(ErrorOf(Minimal("environment: /usr/bin/python3\n")),
             Contains("environment: must be a map of keys"));
}

TEST_CASE("environment_variables is ParallelRunConfig's name for the variables", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(Minimal("environment_variables: {A: '1'}\n"));
  REQUIRE(spec.ok());
  CHECK(spec->environment().variables().at("A") == "1");
  CHECK_THAT(ErrorOf(Minimal("environment_variables: {A: 1}\nenvironment: {variables: {B: 2}}\n")),
             Contains("environment.variables and environment_variables are the same setting"));
}

TEST_CASE("v2 names map onto the v1 keys", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = Parse(
      Minimal("instance_count: 3\nmax_concurrency_per_instance: 4\n"
              "mini_batch_error_threshold: 5\nretry_settings: {max_retries: 1, timeout: 30}\n"));
  REQUIRE(spec.ok());
  CHECK(spec->node_count() == 3);
  CHECK(spec->process_count_per_node() == 4);
  CHECK(spec->allowed_failed_count() == 5);
  CHECK(spec->run_max_try() == 2);
  CHECK(spec->run_invocation_timeout() == 30);

  CHECK(ErrorOf(Minimal("instance_count: 3\nnode_count: 3\n")) ==
        "node_count and instance_count are the same setting; keep one of them");
  const absl::StatusOr<v1::JobSpec> unset =
      Parse(Minimal("instance_count: 3\n"), {"instance_count=", "node_count=6"});
  REQUIRE(unset.ok());
  CHECK(unset->node_count() == 6);
  CHECK(ErrorOf(Minimal("instance_count: three\n")) == "instance_count: 'three' is not an integer");
  CHECK(ErrorOf(Minimal("instance_count: 0\n")) == "node_count: must be a positive integer, got 0");
  CHECK_THAT(ErrorOf(Minimal("run_max_try: 2\nretry_settings: {max_retries: 1}\n")),
             Contains("run_max_try and retry_settings.max_retries both set the tries"));
  CHECK_THAT(ErrorOf(Minimal("retry_settings: {max_retries: -1}\n")),
             Contains("retry_settings.max_retries: -1 is out of range"));
}

TEST_CASE("Tabular inputs: sizes, rows, partition_keys and append_row_format", "[job_config]") {
  const std::string head =
      "name: abc\nentry_script: s.py\nsource_directory: .\noutput: ./o\n"
      "inputs: [{type: tabular, path: ./data, format: TSV}]\n";
  {
    auto spec = Parse(head);
    REQUIRE(spec.ok());
    CHECK(IsTabular(*spec));
    CHECK(spec->inputs(0).format() == "tsv");
    // ParallelRunStep's default for tabular inputs.
    CHECK(spec->mini_batch_unit() == v1::MINI_BATCH_BYTES);
    CHECK(spec->mini_batch_size() == 1 << 20);
    CHECK(spec->mini_batch_size_text() == "1MB");
    CHECK_FALSE(spec->has_append_row_format());
  }
  {
    auto spec = Parse(head + "mini_batch_size: 5000 rows\n");
    REQUIRE(spec.ok());
    CHECK(spec->mini_batch_unit() == v1::MINI_BATCH_ROWS);
    CHECK(spec->mini_batch_size() == 5000);
  }
  {
    auto spec = Parse(head +
                      "mini_batch_size: 2GB\npartition_keys: [store, brand]\n"
                      "append_row_format: {header: true}\n");
    REQUIRE(spec.ok());
    CHECK(spec->mini_batch_size() == int64_t{2} << 30);
    REQUIRE(spec->partition_keys_size() == 2);
    CHECK(spec->partition_keys(1) == "brand");
    CHECK(spec->append_row_format().delimiter() == ",");
    CHECK(spec->append_row_format().header());
  }
  {
    auto spec = Parse(head + "partition_keys: store\nappend_row_format: {delimiter: \"\\t\"}\n");
    REQUIRE(spec.ok());
    CHECK(spec->partition_keys(0) == "store");
    CHECK(spec->append_row_format().delimiter() == "\t");
    CHECK_FALSE(spec->append_row_format().header());
  }
  CHECK(ErrorOf(head + "mini_batch_size: 10\n") ==
        "mini_batch_size: '10' is a count of files; for tabular inputs use a size like 1MB or a "
        "count of rows like '5000 rows'");
  CHECK(ErrorOf(head + "partition_keys: [a, a]\n") ==
        "partition_keys[1]: 'a' is listed twice; list each column once");
  CHECK(ErrorOf(head + "partition_keys: [\"\"]\n") ==
        "partition_keys[0]: is empty; give a column name");
  CHECK(ErrorOf(head + "partition_keys: {a: 1}\n") ==
        "partition_keys: must be a list of column names, e.g. [store, brand, week], got a map");
  CHECK(ErrorOf(head + "append_row_format: {delimiter: ;;}\n") ==
        "append_row_format.delimiter: ';;' must be one character other than a quote or a line "
        "end, e.g. \",\" or \"\\t\" (or empty for values joined by a space, unquoted)");
  CHECK(ErrorOf(head + "append_row_format: {header: maybe}\n") ==
        "append_row_format.header: 'maybe' is not a boolean; use true or false");
  CHECK(ErrorOf(head + "append_row_format: {quote: none}\n") ==
        "append_row_format: unknown key 'quote'; the known keys are delimiter, header");
  CHECK(ErrorOf(head + "output_action: summary_only\nappend_row_format: {header: true}\n") ==
        "append_row_format: applies to output_action: append_row; remove it for summary_only");
  // ParallelRunStep's argument asks for the header with its space-separated rows.
  {
    auto spec = Parse(head + "arguments: [--append_row_dataframe_header, \"True\"]\n");
    REQUIRE(spec.ok());
    CHECK(spec->append_row_format().delimiter().empty());  // space-joined, unquoted
    CHECK(spec->append_row_format().header());
    spec = Parse(head + "arguments: [--append_row_dataframe_header=False]\n");
    REQUIRE(spec.ok());
    CHECK_FALSE(spec->has_append_row_format());
    spec = Parse(head + "arguments: [--append_row_dataframe_header, \"false\", --x, \"1\"]\n");
    REQUIRE(spec.ok());
    CHECK_FALSE(spec->has_append_row_format());
    spec = Parse(head + "arguments: [--append_row_dataframe_header]\n");
    REQUIRE(spec.ok());
    CHECK(spec->append_row_format().header());
    spec = Parse(head + "arguments: [--append_row_dataframe_header, --x, \"1\"]\n");
    REQUIRE(spec.ok());
    CHECK(spec->append_row_format().header());
    // YAML's no, and the last occurrence wins.
    spec = Parse(head + "arguments: [--append_row_dataframe_header, \"no\"]\n");
    REQUIRE(spec.ok());
    CHECK_FALSE(spec->has_append_row_format());
    spec = Parse(head +
                 "arguments: [--append_row_dataframe_header, --append_row_dataframe_header=off]\n");
    REQUIRE(spec.ok());
    CHECK_FALSE(spec->has_append_row_format());
    // Without an output file it means nothing, and is no error.
    spec =
        Parse(head + "output_action: summary_only\narguments: [--append_row_dataframe_header]\n");
    REQUIRE(spec.ok());
    CHECK_FALSE(spec->has_append_row_format());
  }
  // partition_keys and byte sizes belong to tabular inputs.
  CHECK_THAT(ErrorOf(Minimal("partition_keys: [a]\n")),
             Contains("partition_keys: partitioning by column values applies to type: tabular"));
  CHECK_THAT(ErrorOf(Minimal("mini_batch_size: 1MB\n")),
             Contains("is a size in bytes, which applies to tabular inputs"));
}

TEST_CASE("Paths are made absolute and normalized against the base folder", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = ParseJobYaml(
      "name: abc\nentry_script: ./sub/../score.py\nsource_directory: ./a/./b/../scripts/\n"
      "inputs: /data//images/\noutput: ../out\n",
      "/jobs/x/", {});
  REQUIRE(spec.ok());
  CHECK(spec->entry_script() == "score.py");
  CHECK(spec->source_directory() == "/jobs/x/a/scripts");
  CHECK(spec->inputs(0).path() == "/data/images");
  CHECK(spec->output() == "/jobs/out");
}

TEST_CASE("A relative base folder is taken from the current directory", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec = ParseJobYaml(kMinimal, "", {});
  REQUIRE(spec.ok());
  CHECK(spec->source_directory() == (fs::current_path() / "scripts").lexically_normal().string());
}

TEST_CASE("~/ is the home folder", "[job_config]") {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return;
  const absl::StatusOr<v1::JobSpec> spec = Parse(Minimal("side_inputs: [{name: m, path: ~/m}]\n"));
  REQUIRE(spec.ok());
  CHECK(spec->side_inputs(0).path() == (fs::path(home) / "m").lexically_normal().string());
}

TEST_CASE("entry_script must stay inside source_directory", "[job_config]") {
  CHECK(ErrorOf("name: abc\nentry_script: /abs/score.py\nsource_directory: .\ninputs: ./d\n"
                "output: ./o\n") ==
        "entry_script: '/abs/score.py' must be relative to source_directory, e.g. score.py");
  CHECK(ErrorOf("name: abc\nentry_script: ../score.py\nsource_directory: .\ninputs: ./d\n"
                "output: ./o\n") ==
        "entry_script: '../score.py' must stay inside source_directory (no '..')");
}

TEST_CASE("Overrides set keys before conversion", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec =
      Parse(kMinimal, {"node_count=4", "environment.python=/usr/bin/python3",
                       "environment.variables.OMP_NUM_THREADS=1", "environment.variables.a.b=2",
                       "arguments=[--a, 1]", "mini_batch_size=5", " logging_level = debug",
                       "output=./elsewhere", "inputs=./other"});
  REQUIRE(spec.ok());
  CHECK(spec->node_count() == 4);
  CHECK(spec->environment().python() == "/usr/bin/python3");
  CHECK(spec->environment().variables().at("OMP_NUM_THREADS") == "1");
  CHECK(spec->environment().variables().at("a.b") == "2");
  CHECK(std::vector<std::string>(spec->arguments().begin(), spec->arguments().end()) ==
        std::vector<std::string>{"--a", "1"});
  CHECK(spec->mini_batch_size() == 5);
  CHECK(spec->logging_level() == "DEBUG");
  CHECK(spec->output() == "/jobs/digits/elsewhere");
  CHECK(spec->inputs(0).path() == "/jobs/digits/other");
}

TEST_CASE("Overrides reach into lists and existing maps", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec =
      Parse(Minimal("environment:\n  python: python3\n  variables: {A: '1'}\n"
                    "side_inputs: [{name: s, path: ./s}]\n"),
            {"inputs=[{name: a, path: ./a}, {name: b, path: ./b}]", "inputs.1.path=/data/b2",
             "side_inputs.0.name=t", "environment.variables.B=2",
             "arguments=[--x, \"${side_inputs.t}\"]"});
  REQUIRE(spec.ok());
  CHECK(spec->inputs(0).path() == "/jobs/digits/a");
  CHECK(spec->inputs(1).path() == "/data/b2");
  CHECK(spec->side_inputs(0).name() == "t");
  CHECK(spec->environment().python() == "python3");
  CHECK(spec->environment().variables().at("A") == "1");
  CHECK(spec->environment().variables().at("B") == "2");
  CHECK(spec->arguments(1) == "/jobs/digits/s");
}

TEST_CASE("Overrides apply to an empty job file", "[job_config]") {
  const absl::StatusOr<v1::JobSpec> spec =
      Parse("", {"name=abc", "entry_script=s.py", "source_directory=.", "inputs=./d",
                 "output_action=summary_only"});
  REQUIRE(spec.ok());
  CHECK(spec->name() == "abc");
}

TEST_CASE("An override with an empty value unsets the key", "[job_config]") {
  CHECK_THAT(ErrorOf(kMinimal, {"output="}), Contains("missing required key 'output'"));
  const absl::StatusOr<v1::JobSpec> spec = Parse(Minimal("node_count: 5\n"), {"node_count="});
  REQUIRE(spec.ok());
  CHECK(spec->node_count() == 1);
}

TEST_CASE("Malformed overrides are refused, naming them", "[job_config]") {
  CHECK(ErrorOf(kMinimal, {"node_count"}) ==
        "--set 'node_count': expected key=value, e.g. node_count=4 or "
        "environment.variables.OMP_NUM_THREADS=1");
  CHECK_THAT(ErrorOf(kMinimal, {"=4"}), Contains("--set '=4': the key has an empty part"));
  CHECK_THAT(ErrorOf(kMinimal, {"environment..python=x"}),
             Contains("--set 'environment..python=x': the key has an empty part"));
  CHECK_THAT(ErrorOf(kMinimal, {"arguments=[--a"}),
             Contains("--set 'arguments=[--a': the value is not valid YAML"));
  CHECK_THAT(ErrorOf(kMinimal, {"name.first=x"}),
             Contains("--set 'name.first=x': 'name' holds a single value, not keys"));
  CHECK_THAT(ErrorOf(Minimal("arguments: [--a]\n"), {"arguments.3=x"}),
             Contains("--set 'arguments.3=x': 'arguments' is a list of 1 items; '3' is not an "
                      "index of it"));
  CHECK(ErrorOf(kMinimal, {"nod_count=4"}) ==
        "unknown key 'nod_count'; did you mean 'node_count'?");
  CHECK(ErrorOf(kMinimal, {"node_count=two"}) == "node_count: 'two' is not an integer");
  CHECK_THAT(ErrorOf("- a\n", {"5.x=1"}),
             Contains("--set '5.x=1': the job file is a list of 1 items; '5' is not an index"));
}

TEST_CASE("gpus_per_process: unset means 1 GPU each; 0 hides them; out of range refused",
          "[job_config]") {
  auto spec = Parse(kMinimal);
  REQUIRE(spec.ok());
  CHECK_FALSE(spec->has_gpus_per_process());
  spec = Parse(Minimal("gpus_per_process: 2\n"));
  REQUIRE(spec.ok());
  CHECK(spec->gpus_per_process() == 2);
  spec = Parse(kMinimal, {"gpus_per_process=0"});
  REQUIRE(spec.ok());
  REQUIRE(spec->has_gpus_per_process());
  CHECK(spec->gpus_per_process() == 0);
  CHECK(ValidateJobSpec(*spec, false).ok());
  for (int bad : {-1, 65}) {
    spec->set_gpus_per_process(bad);
    CHECK_THAT(std::string(ValidateJobSpec(*spec, false).message()),
               Contains("gpus_per_process: must be between 0 (no GPU) and 64"));
  }
}

TEST_CASE("ValidateJobSpec checks specs built by any client", "[job_config]") {
  absl::StatusOr<v1::JobSpec> parsed = Parse(kMinimal);
  REQUIRE(parsed.ok());
  const v1::JobSpec good = *parsed;
  CHECK(ValidateJobSpec(good, false).ok());

  v1::JobSpec spec = good;
  spec.set_source_directory("scripts");
  CHECK_THAT(std::string(ValidateJobSpec(spec, false).message()),
             Contains("source_directory: 'scripts' must be an absolute path"));

  spec = good;
  spec.mutable_inputs(0)->set_path("data");
  CHECK_THAT(std::string(ValidateJobSpec(spec, false).message()),
             Contains("inputs[0].path: 'data' must be an absolute path"));

  spec = good;
  spec.set_output("out");
  CHECK_THAT(std::string(ValidateJobSpec(spec, false).message()),
             Contains("output: 'out' must be an absolute path"));

  spec = good;
  spec.set_logging_level("info");
  CHECK(ValidateJobSpec(spec, false).message() ==
        "logging_level: 'info' must be WARNING, INFO or DEBUG");

  spec = good;
  spec.mutable_inputs(0)->set_type("");
  CHECK(ValidateJobSpec(spec, false).ok());
  spec.mutable_inputs(0)->set_name("");
  CHECK_THAT(std::string(ValidateJobSpec(spec, false).message()),
             Contains("inputs[0]: the name is empty"));

  spec = good;
  (*spec.mutable_environment()->mutable_variables())["A=B"] = "1";
  CHECK_THAT(std::string(ValidateJobSpec(spec, false).message()),
             Contains("environment.variables: 'A=B' is not a variable name"));

  spec = good;
  spec.set_append_row_file_name("");
  CHECK_THAT(std::string(ValidateJobSpec(spec, false).message()),
             Contains("append_row_file_name: is empty"));

  spec = good;
  spec.set_node_count(0);
  const absl::Status status = ValidateJobSpec(spec, false);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(status.message() == "node_count: must be a positive integer, got 0");

  CHECK(ValidateJobSpec(v1::JobSpec(), false).message() ==
        "missing required key 'name': the job's name, 3-32 characters like predict-digits");
}

TEST_CASE("ValidateJobSpec with check_files looks at the filesystem", "[job_config]") {
  TempDir dir;
  dir.Write("scripts/score.py", "def run(mini_batch):\n    return mini_batch\n");
  dir.Write("data/a.png", "a");
  dir.Write("list.txt", "/x/a.png\n");
  const std::string job =
      "name: abc\nentry_script: score.py\nsource_directory: ./scripts\n"
      "inputs: [./data, ./list.txt, ./later/*.png]\noutput: ./out\n";
  absl::StatusOr<v1::JobSpec> parsed = ParseJobYaml(job, dir.path().string(), {});
  REQUIRE(parsed.ok());
  const v1::JobSpec good = *parsed;
  CHECK(ValidateJobSpec(good, true).ok());

  v1::JobSpec spec = good;
  spec.set_source_directory((dir.path() / "nope").string());
  CHECK(ValidateJobSpec(spec, true).message() ==
        absl::StrCat("source_directory: '", (dir.path() / "nope").string(), "' does not exist"));
  CHECK(ValidateJobSpec(spec, false).ok());

  spec = good;
  spec.set_source_directory((dir.path() / "list.txt").string());
  CHECK_THAT(std::string(ValidateJobSpec(spec, true).message()), Contains("' is not a folder"));

  spec = good;
  spec.set_entry_script("missing.py");
  CHECK(ValidateJobSpec(spec, true).message() ==
        absl::StrCat("entry_script: 'missing.py' is not in source_directory '",
                     (dir.path() / "scripts").string(), "'"));

  fs::create_directories(dir.path() / "scripts" / "pkg");
  spec = good;
  spec.set_entry_script("pkg");
  CHECK_THAT(std::string(ValidateJobSpec(spec, true).message()),
             Contains("pkg' is not a regular file"));

  spec = good;
  spec.mutable_inputs(0)->set_path((dir.path() / "missing").string());
  const absl::Status status = ValidateJobSpec(spec, true);
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK(status.message() ==
        absl::StrCat("inputs[0] (input0): '", (dir.path() / "missing").string(),
                     "' does not exist; give a folder, a glob or one file (or a list as "
                     "list_file)"));
}

TEST_CASE("LoadJobFile reads the file and resolves paths against its folder", "[job_config]") {
  TempDir dir;
  const fs::path file = dir.Write("jobs/job.yaml", kMinimal);
  const absl::StatusOr<v1::JobSpec> spec = LoadJobFile(file.string(), {"node_count=7"});
  REQUIRE(spec.ok());
  CHECK(spec->source_directory() == (dir.path() / "jobs" / "scripts").string());
  CHECK(spec->inputs(0).path() == (dir.path() / "jobs" / "data").string());
  CHECK(spec->node_count() == 7);
}

TEST_CASE("LoadJobFile reports missing and unreadable files with the path", "[job_config]") {
  TempDir dir;
  const std::string missing = (dir.path() / "nope.yaml").string();
  const absl::Status not_found = LoadJobFile(missing, {}).status();
  CHECK(not_found.code() == absl::StatusCode::kNotFound);
  CHECK(not_found.message() == absl::StrCat("job file '", missing, "' does not exist"));

  const absl::Status folder = LoadJobFile(dir.path().string(), {}).status();
  CHECK(folder.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(folder.message()), Contains("is a folder; give the path of the .yaml"));

  const fs::path bad = dir.Write("bad.yaml", "name: [\n");
  const absl::Status syntax = LoadJobFile(bad.string(), {}).status();
  CHECK(syntax.code() == absl::StatusCode::kInvalidArgument);
  // A syntax error names the file, and says what to look for.
  CHECK_THAT(std::string(syntax.message()), Catch::StartsWith(bad.string() + " line 2, column "));
  CHECK_THAT(std::string(syntax.message()), Contains("(YAML syntax: check the indentation"));
}

}  // namespace
}  // namespace prs

namespace prs {
namespace {

TEST_CASE("Counts have sane upper bounds, checked at submit", "[job_config]") {
  CHECK(ErrorOf(Minimal("process_count_per_node: 100000\n")) ==
        "process_count_per_node: 100000 is over the limit of 1024 worker processes per node");
  CHECK(ErrorOf(Minimal("node_count: 20000\n")) ==
        "node_count: 20000 is over the limit of 10000 nodes");
  CHECK(ErrorOf(Minimal("run_invocation_timeout: 2147483647\n")) ==
        "run_invocation_timeout: 2147483647 is over the limit of 604800 seconds (7 days) for one "
        "run() call");
  CHECK(ErrorOf(Minimal("run_max_try: 1000\n")) ==
        "run_max_try: 1000 is over the limit of 100 tries of one mini-batch");
  CHECK_THAT(ErrorOf(Minimal("mini_batch_size: 1000000\n")),
             Contains("mini_batch_size: 1000000 is over the limit of 100000 files per mini-batch"));
  CHECK_THAT(ErrorOf(Minimal("resource_monitor_interval: 100000000\n")),
             Contains("resource_monitor_interval: must be 0 (off) or a number of seconds up to "
                      "604800"));
  REQUIRE(Parse(Minimal("process_count_per_node: 1024\nrun_invocation_timeout: 604800\n")).ok());
}

TEST_CASE("Arguments a worker could not be started with are refused", "[job_config]") {
  const std::string big(10 << 20, 'x');
  const std::string message = ErrorOf(Minimal("arguments: [--data, '" + big + "']\n"));
  CHECK_THAT(message, Contains("arguments[1]: 10485760 bytes, over the limit of 65536 bytes for "
                               "one argument or variable"));
  CHECK(message.size() < 400);  // the value is not echoed
  std::string many = "arguments: [--a";
  for (int i = 0; i < 10; ++i) absl::StrAppend(&many, ", '", std::string(60 << 10, 'y'), "'");
  CHECK_THAT(ErrorOf(Minimal(many + "]\n")),
             Contains("the arguments and environment variables hold more than 524288 bytes"));
  CHECK_THAT(
      ErrorOf(Minimal("environment: {variables: {BIG: '" + std::string(70 << 10, 'z') + "'}}\n")),
      Contains("environment.variables.BIG: 71684 bytes"));
}

TEST_CASE("URIs are refused where a path is expected", "[job_config]") {
  const std::string uri_hint =
      "is a URI; URIs are not supported yet: use a path the master and agents can read";
  CHECK_THAT(ErrorOf(Minimal("").replace(Minimal("").find("output: ./out"), 13,
                                         "output: azureml://datastores/out/paths/x")),
             Contains("output: 'azureml://datastores/out/paths/x' " + uri_hint));
  CHECK_THAT(ErrorOf("name: abc\nentry_script: s.py\nsource_directory: .\noutput: ./o\n"
                     "inputs: [{name: d, path: 's3://bucket/data'}]\n"),
             Contains("inputs[0].path: 's3://bucket/data' " + uri_hint));
  CHECK_THAT(ErrorOf("name: abc\nentry_script: s.py\nsource_directory: .\noutput: ./o\n"
                     "inputs: [{name: d, list_file: 'https://x/list.txt'}]\n"),
             Contains("inputs[0].list_file: 'https://x/list.txt' " + uri_hint));
  CHECK_THAT(ErrorOf(Minimal("side_inputs: [{name: m, path: 'azureml://models/m'}]\n")),
             Contains("side_inputs[0].path: 'azureml://models/m' " + uri_hint));
  // A spec from another client, with the URI unresolved.
  auto spec = Parse(kMinimal);
  REQUIRE(spec.ok());
  spec->set_output("azureml://x");
  CHECK_THAT(std::string(ValidateJobSpec(*spec, false).message()),
             Contains("output: 'azureml://x' " + uri_hint));
  // A colon in a file name is not a URI.
  CHECK(Parse(Minimal("side_inputs: [{name: m, path: './a:b'}]\n")).ok());
}

TEST_CASE("Messages show whole characters and no raw control bytes", "[job_config]") {
  CHECK_THAT(ErrorOf("name: café\nentry_script: s.py\nsource_directory: .\ninputs: ./d\n"
                     "output: ./o\n"),
             Contains("name: 'café' is not a valid job name (it contains 'é')"));
  CHECK_THAT(ErrorOf(Minimal("\x7f"
                             "ELF\x01\x02: 1\n")),
             Contains("unknown key '\\x7fELF\\x01\\x02'"));
  std::string deep = "a:\n";
  for (int i = 1; i < 3000; ++i) absl::StrAppend(&deep, std::string(i, ' '), "b:\n");
  CHECK_THAT(ErrorOf(deep), Contains("the YAML is nested too deeply"));
}

TEST_CASE("append_row_file_name may hold {job_id} and {name}, no other braces", "[job_config]") {
  auto spec = Parse(Minimal("append_row_file_name: '{name}-{job_id}.txt'\n"));
  REQUIRE(spec.ok());
  CHECK(spec->append_row_file_name() == "{name}-{job_id}.txt");
  CHECK_THAT(ErrorOf(Minimal("append_row_file_name: '{date}.txt'\n")),
             Contains("({job_id} and {name} are the placeholders it may hold)"));
}

}  // namespace
}  // namespace prs

namespace prs {
namespace {

TEST_CASE("ParallelRunStep's runtime options in arguments set their keys", "[job_config]") {
  auto spec =
      Parse(Minimal("arguments: [--progress_update_timeout, '900', "
                    "--first_task_creation_timeout=120, --resource_monitor_interval, '5', "
                    "--model, m.pkl]\n"));
  REQUIRE(spec.ok());
  CHECK(spec->progress_update_timeout() == 900);
  CHECK(spec->first_task_creation_timeout() == 120);
  CHECK(spec->resource_monitor_interval() == 5);
  CHECK(spec->arguments_size() == 7);  // the script still gets them
  auto defaults = Parse(kMinimal);
  REQUIRE(defaults.ok());
  CHECK(defaults->progress_update_timeout() == 0);
  CHECK(defaults->first_task_creation_timeout() == 600);
  CHECK(ErrorOf(Minimal("progress_update_timeout: 60\narguments: [--progress_update_timeout, "
                        "'90']\n")) ==
        "progress_update_timeout: the job file says 60 and arguments say "
        "--progress_update_timeout 90; set it once");
  CHECK_THAT(ErrorOf(Minimal("arguments: [--progress_update_timeout, soon]\n")),
             Contains("arguments: --progress_update_timeout 'soon' is not a number of seconds"));
}

}  // namespace
}  // namespace prs
