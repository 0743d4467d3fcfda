#ifndef PRS_TESTS_UNIT_JOB_REQUEST_H_
#define PRS_TESTS_UNIT_JOB_REQUEST_H_

// A file job as the tests submit it, shared by the unit and in-process tiers.

#include <cstdio>
#include <string>

#include "prs/v1/job_service.pb.h"
#include "tests/unit/test_util.h"

namespace prs::testing {

// A job over `files` inputs in `dir`/data (f0000.txt holding "0", ...), output
// in `dir`/out/rows.txt, with an entry script whose run() returns its
// mini-batch.
inline v1::SubmitJobRequest MakeRequest(const TempDir& dir, int files, int mini_batch_size) {
  for (int i = 0; i < files; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "data/f%04d.txt", i);
    dir.Write(name, std::to_string(i));
  }
  v1::SubmitJobRequest req;
  auto* spec = req.mutable_spec();
  spec->set_name("unit-job");
  spec->set_entry_script("score.py");
  spec->set_source_directory(dir.Sub("src"));
  auto* in = spec->add_inputs();
  in->set_name("files");
  in->set_type("file");
  in->set_path(dir.Sub("data"));
  spec->set_output(dir.Sub("out"));
  spec->set_output_action("append_row");
  spec->set_append_row_file_name("rows.txt");
  spec->set_mini_batch_size(mini_batch_size);
  spec->set_mini_batch_size_text(std::to_string(mini_batch_size));
  spec->set_error_threshold(-1);
  spec->set_allowed_failed_count(-1);
  spec->set_allowed_failed_percent(100);
  spec->set_node_count(2);
  spec->set_process_count_per_node(1);
  spec->set_run_invocation_timeout(60);
  spec->set_run_max_try(2);
  spec->set_logging_level("INFO");
  auto* f = req.mutable_snapshot()->add_files();
  f->set_path("score.py");
  f->set_content("def run(b):\n    return b\n");
  return req;
}

}  // namespace prs::testing

#endif  // PRS_TESTS_UNIT_JOB_REQUEST_H_
