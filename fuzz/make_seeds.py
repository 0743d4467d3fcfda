#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Seeds are small, meaningful inputs: the example job files and variations of
them, frames as the agent and the worker send them, snapshots of tiny folders,
the golden tabular descriptors, log paths good and bad. The files are
committed; run this again after changing it (it rewrites only the files it
names). Inputs the fuzzers found are kept beside the seeds under names of
their own (found-*), and this script leaves them alone.

Standard library only: frames and snapshots are encoded here as
docs/worker-protocol.md and proto/prs/v1/job.proto describe them, and the
replay tests (ctest -R fuzz_replay) check that the valid ones decode.
"""
import json
import os
import stat
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# --- job_file_fuzzer: a job file, after leading "--set KEY=VALUE" lines ----

MINIMAL = """name: predict-digits
entry_script: score.py
source_directory: ./scripts
inputs: ./data
output: ./out
"""


def job_files():
    for example in ("digits", "sales"):
        with open(os.path.join(ROOT, "examples", example, "job.yaml"), encoding="utf-8") as f:
            write("job_file_fuzzer", f"example_{example}.yaml", f.read())
    seeds = {
        "minimal.yaml": MINIMAL,
        "all_keys.yaml": MINIMAL + """side_inputs:
  - {name: labels, path: ./labels.txt}
arguments: [--labels, "${side_inputs.labels}", --batch, 32]
output_action: append_row
append_row_file_name: rows.txt
mini_batch_size: 25
error_threshold: 5
allowed_failed_count: 3
allowed_failed_percent: 50
node_count: 2
process_count_per_node: 4
run_invocation_timeout: 120
progress_update_timeout: 600
first_task_creation_timeout: 300
run_max_try: 2
logging_level: debug
resource_monitor_interval: 0
allow_reuse: false
environment:
  python: ./venv/bin/python
  variables: {OMP_NUM_THREADS: "1", A: 2}
""",
        "aliases.yaml": MINIMAL + """instance_count: 3
max_concurrency_per_instance: 2
mini_batch_error_threshold: 4
environment_variables: {A: '1'}
retry_settings: {max_retries: 2, timeout: 30}
""",
        "tabular_rows.yaml": """name: forecast
entry_script: f.py
source_directory: .
inputs:
  - {name: sales, type: tabular, format: csv, path: ~/data/sales}
  - {name: more, type: tabular, format: jsonl, path: /data/more.jsonl}
output: ./out
mini_batch_size: 5000 rows
append_row_format: {delimiter: ";", header: true}
""",
        "tabular_keys.yaml": """name: many-models
entry_script: f.py
source_directory: .
inputs: [{name: s, type: tabular, format: tsv, path: ./d}]
output_action: summary_only
partition_keys: [store, brand]
mini_batch_size: 1MB
""",
        "list_file.yaml": """name: listed
entry_script: s.py
source_directory: ../src/./a/..
inputs:
  - {name: files, list_file: ./files.txt}
  - ./data/*.png
output: /abs/out/
""",
        "sets_only.yaml": """--set name=abc
--set entry_script=s.py
--set source_directory=.
--set inputs=./d
--set output_action=summary_only
""",
        "sets_into_lists.yaml": """--set inputs=[{name: a, path: ./a}, {name: b, path: ./b}]
--set inputs.1.path=/data/b2
--set side_inputs.0.name=t
--set environment.variables.B=2
--set arguments=[--x, "${side_inputs.t}"]
""" + MINIMAL + """environment:
  python: python3
  variables: {A: '1'}
side_inputs: [{name: s, path: ./s}]
""",
        "sets_scalars.yaml": """--set node_count=4
--set environment.python=/usr/bin/python3
--set  logging_level = debug
--set output=./elsewhere
--set mini_batch_size=
""" + MINIMAL,
        "bad_set.yaml": "--set environment..python=x\n--set 5.x=1\n" + MINIMAL,
        "bad_unknown_key.yaml": MINIMAL + "mini_batch_sise: 5\n",
        "bad_types.yaml": MINIMAL + "node_count: two\nrun_max_try: 1.5\nerror_threshold: [1]\n",
        "bad_syntax.yaml": "name: a\nentry_script: [score.py\nnode_count: 2\n",
        "bad_two_documents.yaml": MINIMAL + "---\nname: other\n",
        "bad_nested.yaml": MINIMAL + "arguments: " + "[" * 64 + "]" * 64 + "\n",
        "bad_too_deep.yaml": "arguments: " + "[" * 2001 + "\n",
        "anchors_tags.yaml": "name: &n abc\nentry_script: *n\nsource_directory: !!str .\n"
                             "inputs: {<<: {path: ./d}}\noutput: ./o\n",
        "bad_entry_script.yaml": "name: abc\nentry_script: ../score.py\nsource_directory: .\n"
                                 "inputs: ./d\noutput: ./o\n",
        "bad_arguments.yaml": MINIMAL + "arguments: [--x, 1, --mini_batch_size, 5, [1, 2], ~]\n",
        "bad_uri.yaml": MINIMAL.replace("./data", "azureml://datastores/d/paths/x"),
        "bad_not_utf8.yaml": MINIMAL.replace("predict-digits", "caf\udce9"),
        "empty.yaml": "",
    }
    for name, text in seeds.items():
        write("job_file_fuzzer", name, text.encode("utf-8", "surrogateescape"))


# --- frame_fuzzer: a byte stream of frames ---------------------------------

RUN, SHUTDOWN, READY, INIT_FAILED, RESULT, BYE = 1, 2, 64, 65, 66, 67


def frame(kind, *fields):
    body = bytes([kind])
    for field in fields:
        if isinstance(field, str):
            field = field.encode("utf-8", "surrogateescape")
        body += struct.pack(">I", len(field)) + field
    return struct.pack(">I", len(body)) + body


def frames():
    run_files = frame(RUN, "task-1", "/data/digits/0.png", "/data/digits/1.png")
    run_tabular = frame(RUN, "task-2", "range\tcsv:4295:1796\t0\t-1\t/data/sales.csv",
                        "plan\tbytes\tcsv:100:7\t1048576\t/d/big.csv")
    result_ok = frame(RESULT, "task-1", "ok", "2", "2", "0.png 0\n1.png 1\n", "", "", "0.012345",
                      "0.010000", "2", "")
    result_error = frame(RESULT, "task-2", "exception", "0", "0", "", "ValueError: bad row",
                         "Traceback (most recent call last):\n  ...\nValueError: bad row\n",
                         "0.5", "0.4", "", "")
    seeds = {
        "ready.bin": frame(READY, "4242"),
        "init_failed.bin": frame(INIT_FAILED, "ModuleNotFoundError: No module named 'x'",
                                 "Traceback ...", "load"),
        "run_files.bin": run_files,
        "run_tabular.bin": run_tabular,
        "run_empty.bin": frame(RUN, "task-3"),
        "run_not_utf8.bin": frame(RUN, "t", b"/data/caf\xe9.png"),
        "result_ok.bin": result_ok,
        "result_exception.bin": result_error,
        "shutdown_bye.bin": frame(SHUTDOWN) + frame(BYE),
        "worker_session.bin": frame(READY, "17") + result_ok + result_error + frame(BYE),
        "agent_session.bin": run_files + run_tabular + frame(SHUTDOWN),
        "empty_fields.bin": frame(RESULT, *([""] * 11)),
        "truncated.bin": run_files[:-3],
        "bad_type.bin": struct.pack(">I", 1) + bytes([9]),
        "bad_zero_length.bin": struct.pack(">I", 0),
        "bad_too_long.bin": struct.pack(">I", (1 << 30) + 1) + bytes([RUN]),
        "bad_field_length.bin": struct.pack(">I", 6) + bytes([RUN]) + struct.pack(">I", 9) + b"a",
        "bad_after_good.bin": frame(READY, "1") + struct.pack(">I", 3) + bytes([RUN, 0, 0]),
    }
    for name, data in seeds.items():
        write("frame_fuzzer", name, data)


# --- snapshot_fuzzer: a serialized prs.v1.SourceSnapshot -------------------


def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def length_delimited(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def snapshot(files):
    """files: (path, mode, content) triples, as SnapshotFile {path=1, mode=2, content=3}."""
    out = b""
    for path, mode, content in files:
        if isinstance(path, str):
            path = path.encode("utf-8")
        if isinstance(content, str):
            content = content.encode("utf-8")
        entry = length_delimited(1, path)
        if mode:
            entry += varint(2 << 3) + varint(mode)
        if content:
            entry += length_delimited(3, content)
        out += length_delimited(1, entry)
    return out


def pack(folder):
    """What PackDirectory makes of a folder of the repository (regular files)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", ".git")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                files.append((os.path.relpath(path, folder).replace(os.sep, "/"),
                              stat.S_IMODE(os.stat(path).st_mode), f.read()))
    return snapshot(sorted(files))


def snapshots():
    seeds = {
        "example_digits.pb": pack(os.path.join(ROOT, "examples", "digits", "scripts")),
        "example_sales.pb": pack(os.path.join(ROOT, "examples", "sales", "scripts")),
        "empty.pb": b"",
        "tree.pb": snapshot([("score.py", 0o644, "def run(b):\n    return b\n"),
                             ("lib/__init__.py", 0o644, ""),
                             ("lib/util/helpers.py", 0o600, "X = 1\n"),
                             ("bin/run.sh", 0o755, "#!/bin/sh\nexec python3 score.py\n"),
                             ("data/empty", 0, "")]),
        "modes.pb": snapshot([("a", 0o400, "r"), ("b", 0o7777, "all"), ("c", 0o200, "w")]),
        "odd_names.pb": snapshot([(b"caf\xe9.py", 0o644, "x"), ("a b/c\td\n.txt", 0o644, "y"),
                                  ("...", 0o644, "dots"), (".hidden/.x", 0o644, "h")]),
        "bad_dotdot.pb": snapshot([("../escape.py", 0o644, "x")]),
        "bad_absolute.pb": snapshot([("/etc/passwd", 0o644, "x")]),
        "bad_inner_dotdot.pb": snapshot([("a/../../b", 0o644, "x")]),
        "bad_dot.pb": snapshot([("a/./b", 0o644, "x")]),
        "bad_empty_part.pb": snapshot([("a//b", 0o644, "x")]),
        "bad_trailing_slash.pb": snapshot([("a/", 0o644, "x")]),
        "bad_empty_path.pb": snapshot([("", 0o644, "x")]),
        "bad_nul.pb": snapshot([(b"a\x00b", 0o644, "x")]),
        "bad_twice.pb": snapshot([("a.py", 0o644, "1"), ("a.py", 0o644, "2")]),
        "bad_file_and_folder.pb": snapshot([("a", 0o644, "1"), ("a/b", 0o644, "2")]),
        "bad_long_name.pb": snapshot([("n" * 300, 0o644, "x")]),
    }
    for name, data in seeds.items():
        write("snapshot_fuzzer", name, data)


# --- log_path_fuzzer: "NODE\nPATH", or a path alone (node "node-1") --------


def log_paths():
    seeds = {
        "own_sys.txt": "node-1\nsys/node/node-1/processes.txt",
        "own_stdout.txt": "node-1\nuser/stdout/node-1/process000.stdout.txt",
        "own_error.txt": "n2\nuser/error/n2/process001.txt",
        "own_entry_script_log.txt": "host.example_1\nuser/entry_script_log/host.example_1/a.log",
        "own_perf.txt": "node-1\nperf/node-1/node_resource_usage.csv",
        "other_node.txt": "node-1\nsys/node/node-2/processes.txt",
        "node_prefix.txt": "node\nperf/node-1/x",
        "master_file.txt": "node-1\nsys/master_role.txt",
        "shared_user.txt": "node-1\nuser/error.txt",
        "read_only.txt": "job_result.txt",
        "read_nested.txt": "sys/job_report/processed_mini-batches.csv",
        "bad_dotdot.txt": "node-1\nuser/stdout/node-1/../../../../etc/passwd",
        "bad_absolute.txt": "node-1\n/etc/passwd",
        "bad_dot.txt": "node-1\nperf/node-1/./x",
        "bad_empty_part.txt": "node-1\nsys/node//node-1/x",
        "bad_trailing_slash.txt": "node-1\nuser/stdout/node-1/",
        "bad_nul.txt": b"node-1\nperf/node-1/a\x00b",
        "bad_empty.txt": "node-1\n",
        "bad_node_dotdot.txt": "..\nsys/node/../x",
        "bad_node_empty.txt": "\nsys/node//x",
        "not_utf8.txt": b"n\xff\nperf/n\xff/\xc3(",
        "newline_in_path.txt": "node-1\nperf/node-1/a\nb",
    }
    for name, data in seeds.items():
        write("log_path_fuzzer", name, data)


# --- tabular_descriptor_fuzzer: a mini-batch item --------------------------


def descriptors():
    with open(os.path.join(ROOT, "tests", "golden", "tabular_descriptors.json"),
              encoding="utf-8") as f:
        golden = json.load(f)
    for i, case in enumerate(golden["cases"]):
        write("tabular_descriptor_fuzzer", f"golden_{i:02d}_{case['kind']}.txt", case["descriptor"])
    for i, item in enumerate(golden["malformed"]):
        write("tabular_descriptor_fuzzer", f"golden_malformed_{i:02d}.txt", item)
    more = {
        "range_records.txt": "range\tjsonl\t0@0\t4096@100\t/d/a.jsonl",
        "range_whole_records.txt": "range\tcsv\t10@3\t-1@7\t/d/a.csv",
        "group_escaped.txt": 'group\ttsv\t["a","b"]\t["x\\"y","1,2"]\t/d/t\tab.tsv',
        "group_empty_lists.txt": "group\tcsv\t[]\t[]\t/d/g.csv",
        "plan_rows_begin.txt": "plan\trows\tcsv:5:5\t100@0@0\t/d/r.csv",
        "plan_rows_no_records.txt": "plan\trows\tcsv\t100@2048@x\t/d/r.csv",
        "plan_keys_stamp.txt": 'plan\tkeys\tjsonl:1:-1\t["k"]\t/d/k.jsonl',
        "file_path.txt": "/data/digits/0.png",
        "file_path_not_utf8.txt": b"/data/caf\xe9.png",
        "big_numbers.txt": "range\tcsv:9223372036854775807:-9223372036854775808\t"
                           "9223372036854775807@9223372036854775807\t-1\t/d/x",
    }
    for name, data in more.items():
        write("tabular_descriptor_fuzzer", name, data)


def main():
    job_files()
    frames()
    snapshots()
    log_paths()
    descriptors()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(CORPUS) for f in fs)
    print(f"wrote the seeds under {os.path.relpath(CORPUS, ROOT)} ({total} bytes in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
