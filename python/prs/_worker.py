"""The prs worker runtime: ``python -m prs._worker [ARG...]``.

An agent starts this module as a child process and talks to it over one end of
a socketpair whose file descriptor is in ``PRS_WORKER_FD`` (the protocol is
docs/worker-protocol.md). The worker loads the user's entry script, calls
``init()`` once, answers every ``RUN`` with exactly one ``RESULT`` and on
``SHUTDOWN`` calls ``shutdown()`` and says ``BYE``. A RUN's items are absolute
file paths, which run() gets as a list, or tabular descriptors
(``prs._tabular``): run() gets a pandas DataFrame of the records, or, for a
split plan, the worker answers with the plan without calling run().

The process's stdout and stderr belong to the user's script; the worker never
writes protocol data there, and writes to stderr only for its own fatal
problems (bad environment, protocol errors) and errors in ``shutdown()``.

Exit codes: 0 after SHUTDOWN or when the agent closes the socket, 2 for a
missing or bad PRS_WORKER_FD, 3 after INIT_FAILED, 4 on a protocol error.
"""

import collections
import faulthandler
import importlib.util
import os
import signal
import socket
import sys
import time
import traceback

from prs import _protocol as P

EXIT_OK = 0
EXIT_BAD_ENVIRONMENT = 2
EXIT_INIT_FAILED = 3
EXIT_PROTOCOL_ERROR = 4

# One-line errors longer than this are cut; the traceback field has everything.
MAX_ERROR_CHARS = 4096

_THIS_FILE = os.path.normcase(os.path.abspath(__file__))


class _InitFailed(Exception):
    """kind is "load" when the script cannot be loaded (retrying cannot help),
    "init" when init() raised."""

    def __init__(self, error, tb="", kind="load"):
        super().__init__(error)
        self.error = error
        self.tb = tb
        self.kind = kind


# ---------------------------------------------------------------------------
# error formatting


def _safe_str(obj):
    try:
        return str(obj)
    except Exception:  # a broken __str__ must not take the worker down
        try:
            return repr(obj)
        except Exception:
            return "<unprintable %s>" % type(obj).__name__


def _one_line(text):
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS - 3] + "..."
    return text


def _type_name(tp):
    module = getattr(tp, "__module__", None)
    name = getattr(tp, "__qualname__", tp.__name__)
    if module in (None, "builtins", "__main__"):
        return name
    return "%s.%s" % (module, name)


def describe(exc):
    """``ExceptionType: message`` on one line (``ExceptionType`` alone if no message)."""
    message = _safe_str(exc)
    name = _type_name(type(exc))
    return _one_line("%s: %s" % (name, message) if message else name)


def _argparse_exit(exc):
    """(the argparse method the script called, argparse's message) when `exc` is the
    SystemExit of an ArgumentParser that refused the arguments; None otherwise."""
    called = message = None
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if os.path.basename(code.co_filename) == "argparse.py":
            if called is None:
                called = code.co_name  # the first argparse frame: what the script called
            if code.co_name == "error":
                message = tb.tb_frame.f_locals.get("message")
        tb = tb.tb_next
    if called is None:
        return None
    return called, _one_line(_safe_str(message)) if message is not None else None


def _exit_hint(exc):
    """Why a script's SystemExit happened, and what to do."""
    if not isinstance(exc, SystemExit):
        return ""
    parsed = _argparse_exit(exc)
    if parsed is None:
        return " (the script called sys.exit(%r); its output is in the worker's stderr)" % (
            exc.code,)
    called, message = parsed
    args = " ".join(sys.argv[1:]) or "(none)"
    if called == "parse_args" and message and message.startswith("unrecognized arguments"):
        return (" (argparse's parse_args() refused %s; a worker gets the job's arguments and "
                "may get more, read them with parse_known_args())" % message)
    return " (argparse refused the job's arguments: %s; they were: %s)" % (
        message or "see the worker's stderr", args)


def _is_internal_frame(tb):
    filename = tb.tb_frame.f_code.co_filename
    if filename.startswith("<frozen importlib"):
        return True
    return os.path.normcase(os.path.abspath(filename)) == _THIS_FILE


def format_traceback(exc):
    """The full traceback of `exc` without the worker's own leading frames."""
    tb = exc.__traceback__
    while tb is not None and _is_internal_frame(tb):
        tb = tb.tb_next
    try:
        return "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:  # formatting a user's exception can fail in odd ways
        return "".join(traceback.format_exception_only(type(exc), exc))


# ---------------------------------------------------------------------------
# result rows


def _looks_like_dataframe(obj):
    for cls in type(obj).__mro__:
        if cls.__name__ == "DataFrame" and cls.__module__.split(".")[0] == "pandas":
            return True
    return False


def _encode_text(text):
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def _is_missing(value):
    """None, NaN, pandas.NA and NaT: written as an empty value, as DataFrame.to_csv does."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)  # NaN is not equal to itself
    except Exception:  # arrays and odd objects are values
        return False


def _csv_field(value, delimiter):
    """One value in CSV quoting: quoted when it holds the delimiter, a quote, \\n or \\r."""
    text = "" if _is_missing(value) else _safe_str(value)
    if delimiter in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


class RowFormat:
    """How append_row writes a DataFrame's rows (PRS_APPEND_ROW_DELIMITER, PRS_APPEND_ROW_HEADER).

    Without a delimiter a row is its values joined by a space (ParallelRunStep's
    format). With one, a row is a CSV line: values separated by the delimiter,
    quoted when they hold it, a ``"`` (doubled inside) or a line end, a missing
    value (None, NaN, NA, NaT) as an empty one; like ``csv.writer(quoting=QUOTE_MINIMAL,
    lineterminator="\\n")``, except that a lone ``\\r`` is quoted too, so
    ``pandas.read_csv`` reads the lines back. ``header`` asks for the column
    names as a line in the same format.
    """

    def __init__(self, delimiter=None, header=False):
        self.delimiter = delimiter
        self.header = header

    def line(self, values):
        if self.delimiter is None:
            return " ".join(_safe_str(v) for v in values)
        fields = [_csv_field(v, self.delimiter) for v in values]
        if fields == [""]:
            return '""'  # an empty line would be skipped by a reader
        return self.delimiter.join(fields)

    def header_line(self, frame):
        return self.line(frame.columns) + "\n" if self.header else ""


Rows = collections.namedtuple("Rows", "succeeded row_count rows header error",
                              defaults=(0, 0, b"", b"", None))
Rows.__doc__ = """run()'s result as RESULT fields; error is None when the result is
acceptable, else the one-line error for status ``exception``."""


def _element_lines(result):
    """Each element of run()'s list as one output line. One trailing line end is
    dropped (a habit of scripts written for files); a line break inside an
    element raises ValueError, since it would turn one element into several
    lines of the output file while it counts as one item."""
    lines = []
    for i, element in enumerate(result):
        line = _safe_line(element)
        if "\n" in line or "\r" in line:
            if line.endswith("\r\n"):
                line = line[:-2]
            elif line.endswith("\n"):
                line = line[:-1]
            if "\n" in line or "\r" in line:
                raise ValueError(
                    "run() returned an element with a line break (element %d of %d: %s); "
                    "each element becomes one line of the output file: remove the line "
                    "breaks, or return the element escaped, e.g. with json.dumps()" % (
                        i + 1, len(result), _one_line(repr(line[:200]))))
        lines.append(line)
    return lines


def build_rows(result, n_inputs, want_rows, row_format):
    """Apply the Result rules of docs/worker-protocol.md to what run() returned."""
    header = ""
    if isinstance(result, (list, tuple)):
        count = len(result)
        if want_rows:
            try:
                lines = _element_lines(result)
            except ValueError as e:
                return Rows(error=str(e))
    elif _looks_like_dataframe(result):
        import pandas  # only a DataFrame-returning script pays for pandas

        if not isinstance(result, pandas.DataFrame):
            return Rows(error="run() returned %s, which is not a pandas DataFrame" % (
                _type_name(type(result))))
        count = len(result)
        if want_rows:
            lines = [row_format.line(row) for row in result.itertuples(index=False, name=None)]
            if row_format.delimiter is None:
                for i, line in enumerate(lines):
                    if "\n" in line or "\r" in line:
                        return Rows(error=(
                            "run() returned a DataFrame whose row %d holds a line break; "
                            "ParallelRunStep's row format writes each row as one line of "
                            "values joined by a space: remove the line breaks, or set "
                            "append_row_format: {delimiter: \",\"} to write quoted CSV" % (i + 1)))
            header = row_format.header_line(result)
    else:
        return Rows(error=(
            "run() returned %s; it must return a list (or tuple) with one element per "
            "succeeded input, or a pandas DataFrame" % _type_name(type(result))))
    if count > n_inputs:
        return Rows(error=(
            "run() returned %d elements for %d inputs; return at most one element per input"
            % (count, n_inputs)))
    if not want_rows:
        return Rows(succeeded=count)
    text = "".join(line + "\n" for line in lines)
    return Rows(count, count, _encode_text(text), _encode_text(header))


def _safe_line(element):
    if isinstance(element, str):
        return element
    return _safe_str(element)


# ---------------------------------------------------------------------------
# the worker


def _flush_stdio():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _setup_process():
    # stdout/stderr are files the agent captures; line buffering makes a
    # script's prints appear while run() is still going and survive a kill on
    # run_invocation_timeout.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass
    try:
        faulthandler.enable(file=sys.__stderr__, all_threads=True)
        # SIGUSR1 dumps every thread's Python stack to stderr and goes on: an
        # agent can send it before killing a worker that ran into the timeout.
        if hasattr(signal, "SIGUSR1"):
            faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except Exception:
        pass


def _module_name_for(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    name = "".join(c if (c.isalnum() or c == "_") else "_" for c in stem) or "entry_script"
    if name[0].isdigit():
        name = "_" + name
    if name in sys.modules:
        # e.g. a script called time.py or prs.py: do not shadow a loaded module.
        name = "prs_entry_script_" + name
    return name


def _import_tabular():
    """prs._tabular, which needs pandas and numpy; ImportError says how to install them."""
    try:
        from prs import _tabular
    except ImportError as e:
        raise ImportError(
            "tabular inputs need pandas, which %s cannot import (%s): install it for that "
            "interpreter, e.g. apt-get install python3-pandas or %s -m pip install pandas" % (
                sys.executable, _one_line(_safe_str(e)), sys.executable)) from e
    return _tabular


def _result(**fields):
    """The RESULT fields after the task id: status ok and nothing done, unless overridden."""
    result = dict(status=P.STATUS_OK, succeeded=0, row_count=0, rows=b"", error="",
                  traceback="", run_seconds=0.0, cpu_seconds=0.0, items_total=None, header=b"")
    result.update(fields)
    return result


def _failed(error, exc=None, **fields):
    """RESULT fields of status exception; the traceback is exc's, if there is one."""
    return _result(status=P.STATUS_EXCEPTION, error=error,
                   traceback=format_traceback(exc) if exc is not None else "", **fields)


def _unreadable(exc):
    """RESULT fields when a RUN's data could not be read: no items total, run() not called."""
    return _failed("reading the mini-batch failed: %s" % describe(exc), exc)


class Worker:
    def __init__(self, sock, args, environ=None):
        self.sock = sock
        self.args = list(args)
        self.env = os.environ if environ is None else environ
        self.reader = P.FrameReader(sock)
        self.want_rows = self.env.get("PRS_OUTPUT_ACTION", "append_row") != "summary_only"
        self.row_format = RowFormat()
        self.tabular = None  # the prs._tabular module, imported for the first tabular item
        self.tabular_reader = None  # its TabularReader, which caches parsed files
        self.module = None
        self.run_fn = None
        self.shutdown_fn = None
        self.script_label = "entry script"

    # -- start-up ---------------------------------------------------------

    def configure(self):
        """Read PRS_INPUT_TYPE and the append_row format; import pandas for tabular
        inputs. Raises _InitFailed."""
        input_type = self.env.get("PRS_INPUT_TYPE") or "file"
        if input_type not in ("file", "tabular"):
            raise _InitFailed("PRS_INPUT_TYPE=%r is neither file nor tabular; the agent sets "
                              "it from the job input's type" % input_type)
        delimiter = self.env.get("PRS_APPEND_ROW_DELIMITER") or None
        if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
            raise _InitFailed("PRS_APPEND_ROW_DELIMITER=%r must be one character other than "
                              "a quote or a line end, such as , or a tab" % delimiter)
        header = self.env.get("PRS_APPEND_ROW_HEADER") or "0"
        if header not in ("0", "1"):
            raise _InitFailed("PRS_APPEND_ROW_HEADER=%r must be 1 (send the column names) or "
                              "0" % header)
        self.row_format = RowFormat(delimiter, header == "1")
        if input_type == "tabular":
            try:
                self.load_tabular()
            except ImportError as e:
                raise _InitFailed(str(e), format_traceback(e))

    def load_tabular(self):
        """Import prs._tabular (pandas, numpy) unless done; ImportError says how to install."""
        if self.tabular is None:
            self.tabular = _import_tabular()
            self.tabular_reader = self.tabular.TabularReader()

    def load(self):
        """Import the entry script and call init(). Raises _InitFailed."""
        script = self.env.get("PRS_ENTRY_SCRIPT", "")
        source_dir = self.env.get("PRS_SOURCE_DIR", "")
        if not script:
            raise _InitFailed("PRS_ENTRY_SCRIPT is not set; the agent must pass the entry "
                              "script's path")
        if not os.path.isabs(script):
            script = os.path.join(source_dir or os.getcwd(), script)
        script = os.path.abspath(script)
        if not source_dir:
            source_dir = os.path.dirname(script)
        source_dir = os.path.abspath(source_dir)

        rel = os.path.relpath(script, source_dir)
        label = rel if not rel.startswith(os.pardir) else script
        self.script_label = "entry script %s" % label

        if not os.path.isfile(script):
            raise _InitFailed("%s does not exist (looked for %s)" % (self.script_label, script))

        # The snapshot comes first on sys.path so the script's own modules win;
        # then the script's folder, as `python script.py` would have it.
        script_dir = os.path.dirname(script)
        sys.path.insert(0, source_dir)
        if script_dir != source_dir:
            sys.path.insert(1, script_dir)
        sys.argv = [script] + self.args

        name = _module_name_for(script)
        spec = importlib.util.spec_from_file_location(name, script)
        if spec is None or spec.loader is None:
            raise _InitFailed("%s cannot be loaded as a Python module" % self.script_label)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # so pickle, dataclasses etc. find it
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:
            sys.modules.pop(name, None)
            raise _InitFailed("%s cannot be imported: %s%s" % (
                self.script_label, describe(e), _exit_hint(e)), format_traceback(e))
        finally:
            _flush_stdio()
        self.module = module

        run_fn = getattr(module, "run", None)
        if run_fn is None:
            raise _InitFailed("%s defines no run(mini_batch) function; an entry script must "
                              "define run(mini_batch)" % self.script_label)
        if not callable(run_fn):
            raise _InitFailed("%s defines run as %s, not a function; an entry script must "
                              "define run(mini_batch)" % (self.script_label,
                                                          _type_name(type(run_fn))))
        self.run_fn = run_fn

        init_fn = getattr(module, "init", None)
        if init_fn is not None:
            if not callable(init_fn):
                raise _InitFailed("%s defines init as %s, not a function" % (
                    self.script_label, _type_name(type(init_fn))))
            try:
                init_fn()
            except (Exception, SystemExit) as e:
                raise _InitFailed("init() raised %s%s" % (describe(e), _exit_hint(e)),
                                  format_traceback(e), kind="init")
            finally:
                _flush_stdio()

        shutdown_fn = getattr(module, "shutdown", None)
        self.shutdown_fn = shutdown_fn if callable(shutdown_fn) else None

    # -- messages ---------------------------------------------------------

    def send(self, msg_type, fields=()):
        P.send_frame(self.sock, msg_type, fields)

    def handle_run(self, fields):
        if not fields:
            raise P.ProtocolError("RUN frame without a task id")
        task_id = fields[0]
        items = [os.fsdecode(f) for f in fields[1:]]
        if all(item.startswith("/") for item in items):
            result = self.call_run(items, len(items))
        else:
            result = self.run_tabular(items)
        try:
            frame = P.encode_result(task_id=task_id, **result)
        except P.ProtocolError:
            frame = P.encode_result(task_id=task_id, **_failed(
                "run() returned %d bytes of rows, more than one RESULT frame holds (1 GiB); "
                "use a smaller mini_batch_size" % len(result["rows"]),
                run_seconds=result["run_seconds"], cpu_seconds=result["cpu_seconds"],
                items_total=result["items_total"]))
        self.sock.sendall(frame)

    def call_run(self, mini_batch, n_inputs):
        """Call run(mini_batch); the RESULT fields of what it did with n_inputs inputs."""
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        try:
            returned = self.run_fn(mini_batch)
            failure = None
        except (Exception, SystemExit) as e:
            failure = e
        finally:
            timing = dict(run_seconds=time.perf_counter() - t0,
                          cpu_seconds=time.process_time() - cpu0, items_total=n_inputs)
            _flush_stdio()
        if failure is not None:
            return _failed(describe(failure), failure, **timing)
        try:
            rows = build_rows(returned, n_inputs, self.want_rows, self.row_format)
        except Exception as e:
            return _failed("turning run()'s result into rows raised %s" % describe(e), e,
                           **timing)
        if rows.error is not None:
            return _failed(rows.error, **timing)
        return _result(succeeded=rows.succeeded, row_count=rows.row_count, rows=rows.rows,
                       header=rows.header, **timing)

    def run_tabular(self, items):
        """RESULT fields of a RUN of tabular descriptors: a plan, or run() on a DataFrame."""
        try:
            self.load_tabular()
            descriptors = self.tabular.parse_run(items)
        except Exception as e:
            return _unreadable(e)
        if isinstance(descriptors[0], self.tabular.Plan):
            return self.make_plan(descriptors[0])
        cpu0 = time.process_time()
        try:
            frame = self.tabular_reader.read(descriptors)
        except Exception as e:
            return _unreadable(e)
        if len(frame) == 0:
            # An empty or header-only file, or a range of blank lines: there is
            # nothing to give run(), which never sees an empty mini-batch.
            return _result(items_total=0, cpu_seconds=time.process_time() - cpu0)
        result = self.call_run(frame, len(frame))
        # The worker's CPU for the mini-batch includes reading it.
        result["cpu_seconds"] = time.process_time() - cpu0
        return result

    def make_plan(self, plan):
        """RESULT fields of a plan descriptor: its lines as rows; no items."""
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        try:
            lines = self.tabular_reader.plan(plan)
            failure = None
        except Exception as e:
            failure = e
        timing = dict(run_seconds=time.perf_counter() - t0,
                      cpu_seconds=time.process_time() - cpu0, items_total=0)
        if failure is not None:
            return _failed("planning %s failed: %s" % (plan.path, describe(failure)), failure,
                           **timing)
        return _result(row_count=len(lines), rows=_encode_text("".join(lines)), **timing)

    def handle_shutdown(self):
        if self.shutdown_fn is not None:
            try:
                self.shutdown_fn()
            except (Exception, SystemExit) as e:
                # BYE carries no fields; the error goes to the user's stderr log.
                try:
                    sys.stderr.write("prs worker: shutdown() raised %s\n%s" % (
                        describe(e), format_traceback(e)))
                except Exception:
                    pass
            finally:
                _flush_stdio()
        self.send(P.BYE)

    # -- main loop --------------------------------------------------------

    def serve(self):
        try:
            try:
                self.configure()
                self.load()
            except _InitFailed as e:
                self._report_init_failure(e)
                return EXIT_INIT_FAILED
            self.send(P.READY, [os.getpid()])
            while True:
                frame = self.reader.read()
                if frame is None:
                    return EXIT_OK  # the agent closed the socket
                msg_type, fields = frame
                if msg_type == P.RUN:
                    self.handle_run(fields)
                elif msg_type == P.SHUTDOWN:
                    self.handle_shutdown()
                    return EXIT_OK
                else:
                    raise P.ProtocolError("unexpected frame type %d (%s)" % (
                        msg_type, P.NAMES.get(msg_type, "unknown")))
        except P.ProtocolError as e:
            _stderr("prs worker: protocol error: %s" % e)
            return EXIT_PROTOCOL_ERROR
        except (BrokenPipeError, ConnectionResetError):
            return EXIT_OK  # the agent went away; nobody is left to answer
        finally:
            _flush_stdio()

    def _report_init_failure(self, e):
        _stderr("prs worker: %s" % e.error + ("\n" + e.tb.rstrip("\n") if e.tb else ""))
        try:
            self.send(P.INIT_FAILED, [e.error, e.tb, e.kind])
        except OSError:
            pass


def _stderr(text):
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except Exception:
        pass


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    _setup_process()
    fd_text = os.environ.get("PRS_WORKER_FD", "")
    try:
        fd = int(fd_text)
    except ValueError:
        _stderr("prs worker: PRS_WORKER_FD=%r is not a file descriptor number; the worker is "
                "started by prs-agent, which passes one end of a socketpair" % fd_text)
        return EXIT_BAD_ENVIRONMENT
    try:
        sock = socket.socket(fileno=fd)
        sock.setblocking(True)
        # Processes the script starts must not keep the agent's socket open.
        sock.set_inheritable(False)
    except OSError as e:
        _stderr("prs worker: PRS_WORKER_FD=%d is not a usable socket: %s" % (fd, e))
        return EXIT_BAD_ENVIRONMENT
    try:
        return Worker(sock, args).serve()
    finally:
        try:
            sock.close()
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
