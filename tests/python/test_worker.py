"""Tests of the Python worker runtime (python/prs/_worker.py) against
docs/worker-protocol.md. Each test starts the real worker as a child process
over a socketpair, as prs-agent does."""

import json
import os
import struct
import subprocess

import pytest

from worker_harness import BYE, PYTHON, PYTHON_DIR, TIMEOUT, encode, recv_frame

# ---------------------------------------------------------------------------
# frames


def test_protocol_module_matches_the_documented_bytes():
    from prs import _protocol as P

    frame = P.encode_frame(P.RESULT, ["12", b"ok", 3])
    assert frame == (struct.pack(">I", 1 + 3 * 4 + 2 + 2 + 1) + bytes([66]) +
                     b"\x00\x00\x00\x0212" + b"\x00\x00\x00\x02ok" + b"\x00\x00\x00\x013")
    assert frame == encode(66, ["12", "ok", "3"])
    assert P.decode_frame(frame) == (66, [b"12", b"ok", b"3"])
    assert P.decode_frame(P.encode_frame(P.BYE)) == (67, [])
    assert P.decode_frame(P.encode_frame(P.RUN, [b"", b"x"])) == (1, [b"", b"x"])
    assert (P.RUN, P.SHUTDOWN, P.READY, P.INIT_FAILED, P.RESULT, P.BYE) == (1, 2, 64, 65, 66, 67)


def test_result_frame_has_eleven_fields_in_the_documented_order():
    from prs import _protocol as P

    fields = dict(task_id=b"7", status="ok", succeeded=2, row_count=2, rows=b"a\nb\n", error="",
                  traceback="", run_seconds=0.5, cpu_seconds=0.25, items_total=3, header=b"h\n")
    assert P.decode_frame(P.encode_result(**fields)) == (66, [
        b"7", b"ok", b"2", b"2", b"a\nb\n", b"", b"", b"0.500000", b"0.250000", b"3", b"h\n"])
    fields["items_total"] = None  # the data could not be read
    assert P.decode_frame(P.encode_result(**fields))[1][9] == b""
    del fields["header"]
    with pytest.raises(TypeError, match="header"):
        P.encode_result(**fields)


def test_protocol_module_refuses_bad_frames():
    from prs import _protocol as P

    with pytest.raises(P.ProtocolError):
        P.decode_frame(struct.pack(">I", 5) + bytes([1]) + struct.pack(">I", 9))  # field overruns
    with pytest.raises(P.ProtocolError):
        P.decode_frame(struct.pack(">I", 3) + bytes([1]) + b"\x00\x00")  # truncated length
    with pytest.raises(P.ProtocolError):
        P.decode_frame(struct.pack(">I", (1 << 30) + 1) + bytes([1]))  # over 1 GiB


def test_frame_reader_handles_split_and_coalesced_frames():
    import socket

    from prs import _protocol as P

    a, b = socket.socketpair()
    a.settimeout(TIMEOUT)
    b.settimeout(TIMEOUT)
    try:
        data = P.encode_frame(P.RUN, ["1", "/x"]) + P.encode_frame(P.SHUTDOWN)
        b.sendall(data[:3])
        b.sendall(data[3:9])
        b.sendall(data[9:])
        b.shutdown(socket.SHUT_WR)
        reader = P.FrameReader(a, chunk_size=4)
        assert reader.read() == (P.RUN, [b"1", b"/x"])
        assert reader.read() == (P.SHUTDOWN, [])
        assert reader.read() is None
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------------------
# results

LIST_SCRIPT = """
    import os, sys, time

    def init():
        global calls
        calls = 0

    def run(mini_batch):
        global calls
        calls += 1
        assert isinstance(mini_batch, list), type(mini_batch)
        time.sleep(0.05)
        t = time.process_time()
        while time.process_time() - t < 0.02:
            pass
        return ["%s: %d %s" % (os.path.basename(p), calls, os.path.isabs(p)) for p in mini_batch]
"""


def test_ready_then_one_row_per_returned_element(start_worker, tmp_path):
    w = start_worker(LIST_SCRIPT).expect_ready()
    items = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    r = w.run(7, items)
    assert r.task_id == "7"
    assert r.status == "ok"
    assert (r.succeeded, r.row_count) == (3, 3)
    assert r.rows == "a.png: 1 True\nb.png: 1 True\nc.png: 1 True\n"
    assert (r.error, r.traceback) == ("", "")
    assert (r.items_total, r.header) == ("3", "")  # the number of items; no header for lists
    assert 0.05 <= r.run_seconds < TIMEOUT
    assert 0.02 <= r.cpu_seconds < TIMEOUT
    # RESULTs answer RUNs one for one, in order, and the module state persists.
    r = w.run(8, items[:1])
    assert (r.task_id, r.rows) == ("8", "a.png: 2 True\n")
    assert w.shutdown() == 0


def test_fewer_elements_than_inputs_count_as_items_succeeded(start_worker):
    w = start_worker("""
        def run(mini_batch):
            return tuple(p.upper() for p in mini_batch[:2])
    """).expect_ready()
    r = w.run(1, ["/d/x1", "/d/x2", "/d/x3", "/d/x4"])
    assert r.status == "ok"
    assert (r.succeeded, r.row_count, r.rows) == (2, 2, "/D/X1\n/D/X2\n")
    r = w.run(2, ["/d/x1"])
    assert (r.status, r.succeeded, r.rows) == ("ok", 1, "/D/X1\n")


def test_more_elements_than_inputs_is_an_exception(start_worker):
    w = start_worker("""
        def run(mini_batch):
            return mini_batch * 2
    """).expect_ready()
    r = w.run(3, ["/a", "/b"])
    assert r.status == "exception"
    assert r.error == "run() returned 4 elements for 2 inputs; return at most one element per input"
    assert (r.succeeded, r.row_count, r.rows) == (0, 0, "")


def test_an_element_with_a_line_break_is_refused_a_trailing_one_dropped(start_worker):
    w = start_worker("""
        def run(mini_batch):
            if mini_batch[0] == "/trailing":
                return [p + "\\n" for p in mini_batch[:2]] + ["/x\\r\\n"]
            return ["ok", "two\\nlines"]
    """).expect_ready()
    r = w.run(1, ["/trailing", "/b", "/c"])
    assert (r.status, r.succeeded, r.row_count, r.rows) == ("ok", 3, 3, "/trailing\n/b\n/x\n")
    r = w.run(2, ["/a", "/b"])
    assert r.status == "exception"
    assert r.error == ("run() returned an element with a line break (element 2 of 2: "
                       "'two\\nlines'); each element becomes one line of the output file: "
                       "remove the line breaks, or return the element escaped, e.g. with "
                       "json.dumps()")
    assert (r.succeeded, r.rows) == (0, "")


def test_a_dataframe_value_with_a_line_break_needs_the_csv_format(start_worker):
    pytest.importorskip("pandas")
    script = """
        import pandas as pd
        def run(mini_batch):
            return pd.DataFrame({"text": ["one", "two\\nlines"]})
    """
    r = start_worker(script).expect_ready().run(1, ["/a", "/b"])
    assert r.status == "exception"
    assert "row 2 holds a line break" in r.error and "append_row_format" in r.error
    r = start_worker(script, env={"PRS_APPEND_ROW_DELIMITER": ","}).expect_ready().run(
        1, ["/a", "/b"])
    assert (r.status, r.rows) == ("ok", 'one\n"two\nlines"\n')


@pytest.mark.parametrize("ret, type_name", [("None", "NoneType"), ("{'a': 1}", "dict"),
                                            ("'text'", "str"), ("(x for x in mini_batch)",
                                                                "generator")])
def test_returning_something_else_names_the_type(start_worker, ret, type_name):
    w = start_worker("""
        def run(mini_batch):
            return %s
    """ % ret).expect_ready()
    r = w.run(4, ["/a"])
    assert r.status == "exception"
    assert r.error.startswith("run() returned %s;" % type_name), r.error
    assert (r.succeeded, r.rows) == (0, "")


def test_dataframe_rows_are_values_joined_by_a_space(start_worker):
    pytest.importorskip("pandas")
    w = start_worker("""
        import os
        import pandas as pd

        def run(mini_batch):
            names = [os.path.basename(p) for p in mini_batch][:2]  # the third failed
            return pd.DataFrame({"file": names, "label": [3, 7], "score": [0.5, 0.25]})
    """).expect_ready()
    r = w.run(5, ["/img/a.png", "/img/b.png", "/img/c.png"])
    assert r.status == "ok", r.error
    assert (r.succeeded, r.row_count) == (2, 2)
    assert r.rows == "a.png 3 0.5\nb.png 7 0.25\n"


def test_list_results_do_not_import_pandas(start_worker):
    w = start_worker("""
        import sys
        def run(mini_batch):
            return [str("pandas" in sys.modules)]
    """).expect_ready()
    assert w.run(1, ["/a"]).rows == "False\n"


def test_summary_only_counts_without_rows(start_worker):
    w = start_worker("""
        def run(mini_batch):
            return mini_batch[:2]
    """, env={"PRS_OUTPUT_ACTION": "summary_only"}).expect_ready()
    r = w.run(6, ["/a", "/b", "/c"])
    assert (r.status, r.succeeded, r.row_count, r.rows) == ("ok", 2, 0, "")


def test_non_ascii_paths_and_rows_survive(start_worker):
    w = start_worker("""
        def run(mini_batch):
            return ["%s -> \u00fcber" % p for p in mini_batch]
    """).expect_ready()
    r = w.run(9, ["/data/\u00e9t\u00e9 1.png"])
    assert r.rows == "/data/\u00e9t\u00e9 1.png -> \u00fcber\n"


# ---------------------------------------------------------------------------
# errors in run()


def test_exception_in_run_is_reported_and_the_worker_goes_on(start_worker):
    w = start_worker("""
        class ModelError(Exception):
            pass

        def helper(path):
            if path.endswith("bad"):
                raise ValueError("cannot read %s\\nsecond line" % path)
            if path.endswith("model"):
                raise ModelError("custom")
            return path

        def run(mini_batch):
            return [helper(p) for p in mini_batch]
    """).expect_ready()
    r = w.run(10, ["/x/ok", "/x/bad"])
    assert (r.status, r.items_total) == ("exception", "2")
    assert r.error == "ValueError: cannot read /x/bad second line"
    assert (r.succeeded, r.row_count, r.rows) == (0, 0, "")
    assert r.traceback.startswith("Traceback (most recent call last):")
    assert "score.py" in r.traceback and "in helper" in r.traceback
    assert 'raise ValueError("cannot read' in r.traceback
    assert r.traceback.rstrip().endswith("ValueError: cannot read /x/bad\nsecond line")
    assert "_worker.py" not in r.traceback
    assert r.run_seconds >= 0

    r = w.run(11, ["/x/model"])
    assert (r.status, r.error) == ("exception", "score.ModelError: custom")

    r = w.run(12, ["/x/ok"])
    assert (r.task_id, r.status, r.rows) == ("12", "ok", "/x/ok\n")
    assert w.shutdown() == 0


def test_sys_exit_in_run_is_an_exception_not_a_dead_worker(start_worker):
    w = start_worker("""
        import sys
        def run(mini_batch):
            sys.exit(7)
    """).expect_ready()
    assert (w.run(1, ["/a"]).error) == "SystemExit: 7"
    assert w.run(2, ["/a"]).status == "exception"


# ---------------------------------------------------------------------------
# start-up failures


def test_argparse_refusing_arguments_in_init_explains_itself(start_worker):
    w = start_worker("""
        import argparse
        def init():
            parser = argparse.ArgumentParser()
            parser.add_argument("--model_file")
            parser.parse_args()
        def run(b):
            return b
    """, args=("--model_file", "m.pkl", "--unexpected", "1"))
    error, tb = w.expect_init_failed()
    assert error == ("init() raised SystemExit: 2 (argparse's parse_args() refused unrecognized "
                     "arguments: --unexpected 1; a worker gets the job's arguments and may get "
                     "more, read them with parse_known_args())")
    assert w.wait() == 3
    assert "unrecognized arguments: --unexpected 1" in w.stderr()


def test_argparse_refusing_arguments_with_parse_known_args_says_why_not_how(start_worker):
    # The script already uses parse_known_args(): the hint must not tell it to.
    w = start_worker("""
        import argparse
        def init():
            parser = argparse.ArgumentParser()
            parser.add_argument("--model_file", required=True)
            parser.add_argument("--batch", type=int)
            parser.parse_known_args()
        def run(b):
            return b
    """, args=("--batch", "ten"))
    error, tb = w.expect_init_failed()
    assert "parse_known_args()" not in error
    assert error.startswith("init() raised SystemExit: 2 (argparse refused the job's arguments: ")
    assert "invalid int value: 'ten'" in error and "they were: --batch ten" in error


def test_sys_exit_in_init_names_its_code(start_worker):
    w = start_worker("""
        import sys
        def init():
            sys.exit("no GPU here")
        def run(b):
            return b
    """)
    error, tb = w.expect_init_failed()
    assert error == ("init() raised SystemExit: no GPU here (the script called "
                     "sys.exit('no GPU here'); its output is in the worker's stderr)")


def test_sigusr1_dumps_the_python_stack_to_stderr_and_the_worker_goes_on(start_worker):
    w = start_worker("""
        import os, signal
        def stuck_here():
            os.kill(os.getpid(), signal.SIGUSR1)
        def run(mini_batch):
            stuck_here()
            return mini_batch
    """).expect_ready()
    assert w.run(1, ["/a"]).status == "ok"
    err = w.stderr()
    assert "in stuck_here" in err and "score.py" in err
    assert w.run(2, ["/b"]).rows == "/b\n"


def test_script_without_run_fails_init_with_exit_code_3(start_worker):
    w = start_worker("""
        def init():
            pass
    """, script_name="digit.py")
    error, tb = w.expect_init_failed()
    assert error == ("entry script digit.py defines no run(mini_batch) function; "
                     "an entry script must define run(mini_batch)")
    assert w.init_kind == "load"
    assert w.wait() == 3


def test_run_that_is_not_callable_fails_init(start_worker):
    w = start_worker("run = 42\n")
    error, _ = w.expect_init_failed()
    assert "score.py" in error and "run(mini_batch)" in error and "int" in error
    assert w.wait() == 3


def test_init_raising_fails_init(start_worker):
    w = start_worker("""
        def load(path):
            raise FileNotFoundError("no model at %s" % path)

        def init():
            load("/models/m.pkl")

        def run(mini_batch):
            return mini_batch
    """)
    error, tb = w.expect_init_failed()
    assert error == "init() raised FileNotFoundError: no model at /models/m.pkl"
    assert w.init_kind == "init"
    assert tb.startswith("Traceback (most recent call last):")
    assert "in init" in tb and "in load" in tb and "score.py" in tb
    assert w.wait() == 3
    # The failure is also in the worker's stderr for someone reading that log.
    assert "init() raised FileNotFoundError" in w.stderr()


def test_syntax_error_fails_init(start_worker):
    w = start_worker("""
        def run(mini_batch)
            return mini_batch
    """)
    error, tb = w.expect_init_failed()
    assert error.startswith("entry script score.py cannot be imported: SyntaxError:"), error
    assert "line 2" in error
    assert "SyntaxError" in tb and "score.py" in tb
    assert w.wait() == 3


def test_import_error_fails_init(start_worker):
    w = start_worker("""
        import module_that_does_not_exist

        def run(mini_batch):
            return mini_batch
    """)
    error, tb = w.expect_init_failed()
    assert error == ("entry script score.py cannot be imported: ModuleNotFoundError: "
                     "No module named 'module_that_does_not_exist'")
    assert "import module_that_does_not_exist" in tb
    assert "<frozen importlib" not in tb.splitlines()[1]
    assert w.wait() == 3


def test_missing_entry_script_fails_init(start_worker, tmp_path):
    w = start_worker("def run(b): return b\n",
                     env={"PRS_ENTRY_SCRIPT": str(tmp_path / "src" / "nope.py")})
    error, _ = w.expect_init_failed()
    assert error.startswith("entry script nope.py does not exist"), error
    assert w.wait() == 3


# ---------------------------------------------------------------------------
# environment of the script


def test_arguments_reach_the_script_through_sys_argv(start_worker):
    w = start_worker("""
        import argparse, json, sys
        import helper  # a module next to the entry script, found via PRS_SOURCE_DIR

        def init():
            global args, unknown
            parser = argparse.ArgumentParser()
            parser.add_argument("--foo")
            parser.add_argument("--model_file", default="model.pkl")
            args, unknown = parser.parse_known_args()

        def run(mini_batch):
            return [json.dumps({"argv": sys.argv, "foo": args.foo, "model": args.model_file,
                                "unknown": unknown, "path0": sys.path[0],
                                "helper": helper.VALUE})]
    """, args=("--foo", "bar", "--extra", "1"), files={"helper.py": "VALUE = 'from source'\n"})
    w.expect_ready()
    got = json.loads(w.run(1, ["/a"]).rows)
    assert got == {"argv": [str(w.script), "--foo", "bar", "--extra", "1"], "foo": "bar",
                   "model": "model.pkl", "unknown": ["--extra", "1"], "path0": str(w.src),
                   "helper": "from source"}


def test_prints_go_to_the_process_stdout_and_stderr_not_the_socket(start_worker):
    w = start_worker("""
        import sys

        print("hello from import")

        def init():
            print("hello from init")
            print("warning from init", file=sys.stderr)

        def run(mini_batch):
            print("run got %d items" % len(mini_batch))
            sys.stdout.write("no newline")
            return mini_batch
    """).expect_ready()
    # READY comes after init()'s output was flushed to the stdout file.
    assert w.stdout() == "hello from import\nhello from init\n"
    r = w.run(1, ["/a", "/b"])
    assert r.rows == "/a\n/b\n"
    # No sleep needed: the worker flushes before it answers.
    assert w.stdout() == "hello from import\nhello from init\nrun got 2 items\nno newline"
    assert "warning from init" in w.stderr()
    assert w.shutdown() == 0


def test_shutdown_calls_shutdown_then_bye_and_exit_0(start_worker, tmp_path):
    marker = tmp_path / "shutdown-called"
    w = start_worker("""
        def run(mini_batch):
            return mini_batch

        def shutdown():
            print("bye from shutdown")
            with open(%r, "w") as f:
                f.write("yes")
    """ % str(marker)).expect_ready()
    assert w.run(1, ["/a"]).status == "ok"
    assert w.shutdown() == 0
    assert marker.read_text() == "yes"
    assert "bye from shutdown" in w.stdout()


def test_shutdown_without_shutdown_function_and_with_a_failing_one(start_worker, tmp_path):
    w = start_worker("def run(b): return b\n").expect_ready()
    assert w.shutdown() == 0

    w2 = start_worker("""
        def run(b):
            return b
        def shutdown():
            raise RuntimeError("close failed")
    """)
    w2.expect_ready()
    assert w2.shutdown() == 0
    assert "shutdown() raised RuntimeError: close failed" in w2.stderr()


def test_socket_eof_exits_quietly_with_0(start_worker):
    w = start_worker("def run(b): return b\n").expect_ready()
    w.sock.close()
    assert w.wait() == 0
    assert w.stderr() == ""


def test_unknown_frame_type_is_a_protocol_error(start_worker):
    w = start_worker("def run(b): return b\n").expect_ready()
    w.send(99, [b"?"])
    assert w.wait() == 4
    assert "protocol error" in w.stderr() and "99" in w.stderr()


def test_worker_without_socket_fd_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRS_")}
    env["PYTHONPATH"] = str(PYTHON_DIR)
    p = subprocess.run([PYTHON, "-m", "prs._worker"], env=env, cwd=str(tmp_path),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 2
    assert "PRS_WORKER_FD" in p.stderr


def test_socket_is_not_inherited_by_processes_the_script_starts(start_worker):
    w = start_worker("""
        import os, subprocess, sys
        def run(mini_batch):
            fd = os.environ["PRS_WORKER_FD"]
            code = "import os,sys; print(os.path.exists('/proc/self/fd/' + sys.argv[1]))"
            out = subprocess.run([sys.executable, "-c", code, fd], capture_output=True,
                                 text=True).stdout.strip()
            return [out]
    """).expect_ready()
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc")
    assert w.run(1, ["/a"]).rows == "False\n"


# ---------------------------------------------------------------------------
# EntryScript


def test_entry_script_attributes_and_logger(start_worker):
    w = start_worker("""
        import json
        from azureml_user.parallel_run import EntryScript

        def init():
            EntryScript().logger.info("init done")
            EntryScript().logger.debug("debug is below INFO")

        def run(mini_batch):
            es = EntryScript()
            es.logger.warning("run got %d", len(mini_batch))
            return [json.dumps({"agent_name": es.agent_name, "node_id": es.node_id,
                                "log_dir": es.log_dir, "output_dir": es.output_dir,
                                "working_dir": es.working_dir, "logger": es.logger.name})]
    """).expect_ready()
    got = json.loads(w.run(1, ["/a"]).rows)
    assert got == {"agent_name": "process003", "node_id": "127.0.0.1",
                   "log_dir": str(w.log_dir), "output_dir": str(w.output_dir),
                   "working_dir": str(w.working_dir), "logger": "prs.entry_script"}
    assert w.shutdown() == 0
    lines = w.entry_script_log.read_text().splitlines()
    assert len(lines) == 2, lines
    stamp, level, pid, message = lines[0].split("|", 3)
    assert (level, pid, message) == ("INFO", str(w.proc.pid), "init done")
    assert stamp[:2] == "20"
    assert lines[1].split("|", 1)[1] == "WARNING|%d|run got 1" % w.proc.pid
    assert "init done" not in w.stderr()


def test_entry_script_debug_level(start_worker):
    w = start_worker("""
        from prs import EntryScript
        def init():
            EntryScript().logger.debug("visible at DEBUG")
        def run(b):
            return b
    """, env={"PRS_LOGGING_LEVEL": "DEBUG"}).expect_ready()
    assert w.shutdown() == 0
    assert w.entry_script_log.read_text().split("|", 1)[1] == (
        "DEBUG|%d|visible at DEBUG\n" % w.proc.pid)


def test_both_import_paths_give_the_same_singleton(start_worker):
    w = start_worker("""
        import prs
        from prs import EntryScript as A
        from azureml_user.parallel_run import EntryScript as B

        def run(mini_batch):
            return [str(A is B and A() is B() and A() is A() and A().logger is B().logger)]
    """).expect_ready()
    assert w.run(1, ["/a"]).rows == "True\n"

    from azureml_user.parallel_run import EntryScript as B
    from prs import EntryScript as A
    assert A is B and A() is B()


def test_entry_script_outside_a_worker(tmp_path):
    code = """
import os
from azureml_user.parallel_run import EntryScript
es = EntryScript()
assert es.agent_name and es.node_id
assert es.log_dir and es.output_dir == os.getcwd() and es.working_dir == os.getcwd()
es.logger.info("hello outside")
es.logger.debug("hidden")
print(os.getpid())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRS_")}
    env["PYTHONPATH"] = str(PYTHON_DIR)
    p = subprocess.run([PYTHON, "-c", code], env=env, cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    pid = int(p.stdout)
    assert p.stderr.endswith("|INFO|%d|hello outside\n" % pid), p.stderr
    assert "hidden" not in p.stderr
    assert list(tmp_path.iterdir()) == []  # nothing created behind the user's back


def test_entry_script_log_parent_folders_are_created(tmp_path):
    log = tmp_path / "a" / "b" / "c.log.txt"
    code = ("import os; from prs import EntryScript; "
            "EntryScript().logger.warning('deep'); print(os.getpid())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRS_")}
    env.update(PYTHONPATH=str(PYTHON_DIR), PRS_ENTRY_SCRIPT_LOG=str(log))
    p = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert log.read_text().endswith("|WARNING|%d|deep\n" % int(p.stdout))
    assert p.stderr == ""


def test_harness_reads_the_wire_independently():
    # The harness's own decoder agrees with the documented layout.
    import socket

    a, b = socket.socketpair()
    a.settimeout(TIMEOUT)
    try:
        b.sendall(struct.pack(">IB", 1, BYE))
        assert recv_frame(a) == (BYE, [])
    finally:
        a.close()
        b.close()
