"""The prs worker runtime: ``python -m prs._worker [ARG...]``.

An agent starts this module as a child process and talks to it over one end of
a socketpair whose file descriptor is in ``PRS_WORKER_FD`` (the protocol is
docs/worker-protocol.md). The worker loads the user's entry script, calls
``init()`` once, answers every ``RUN`` with exactly one ``RESULT`` and on
``SHUTDOWN`` calls ``shutdown()`` and says ``BYE``.

The process's stdout and stderr belong to the user's script; the worker never
writes protocol data there, and writes to stderr only for its own fatal
problems (bad environment, protocol errors) and errors in ``shutdown()``.

Exit codes: 0 after SHUTDOWN or when the agent closes the socket, 2 for a
missing or bad PRS_WORKER_FD, 3 after INIT_FAILED, 4 on a protocol error.
"""

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


def _exit_hint(exc):
    if not isinstance(exc, SystemExit):
        return ""
    return (" (the script called sys.exit(); argparse's parse_args() does that on an argument "
            "it does not know, use parse_known_args(); the reason is in the worker's stderr)")


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


def build_rows(result, n_inputs, want_rows):
    """Apply the Result rules of docs/worker-protocol.md.

    Returns (items_succeeded, row_count, rows_bytes, error); error is None when
    the result is acceptable, else the one-line error for status ``exception``.
    """
    if isinstance(result, (list, tuple)):
        count = len(result)
        lines = (_safe_line(e) for e in result) if want_rows else None
    elif _looks_like_dataframe(result):
        import pandas  # only a DataFrame-returning script pays for pandas

        if not isinstance(result, pandas.DataFrame):
            return 0, 0, b"", "run() returned %s, which is not a pandas DataFrame" % (
                _type_name(type(result)))
        count = len(result)
        lines = (" ".join(_safe_str(v) for v in row)
                 for row in result.itertuples(index=False, name=None)) if want_rows else None
    else:
        return 0, 0, b"", (
            "run() returned %s; it must return a list (or tuple) with one element per "
            "succeeded input, or a pandas DataFrame" % _type_name(type(result)))
    if count > n_inputs:
        return 0, 0, b"", (
            "run() returned %d elements for %d inputs; return at most one element per input"
            % (count, n_inputs))
    if not want_rows:
        return count, 0, b"", None
    text = "".join(line + "\n" for line in lines)
    return count, count, _encode_text(text), None


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


class Worker:
    def __init__(self, sock, args, environ=None):
        self.sock = sock
        self.args = list(args)
        self.env = os.environ if environ is None else environ
        self.reader = P.FrameReader(sock)
        self.want_rows = self.env.get("PRS_OUTPUT_ACTION", "append_row") != "summary_only"
        self.module = None
        self.run_fn = None
        self.shutdown_fn = None
        self.script_label = "entry script"

    # -- start-up ---------------------------------------------------------

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

        status, error, tb = P.STATUS_OK, "", ""
        succeeded, row_count, rows = 0, 0, b""
        result = None
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        try:
            result = self.run_fn(items)
            ok = True
        except (Exception, SystemExit) as e:
            ok = False
            status, error, tb = P.STATUS_EXCEPTION, describe(e), format_traceback(e)
        finally:
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            _flush_stdio()

        if ok:
            try:
                succeeded, row_count, rows, problem = build_rows(result, len(items),
                                                                 self.want_rows)
                if problem is not None:
                    status, error = P.STATUS_EXCEPTION, problem
            except Exception as e:
                succeeded, row_count, rows = 0, 0, b""
                status = P.STATUS_EXCEPTION
                error = "turning run()'s result into rows raised %s" % describe(e)
                tb = format_traceback(e)
        del result

        timing = ["%.6f" % elapsed, "%.6f" % cpu]
        try:
            frame = P.encode_frame(P.RESULT, [task_id, status, succeeded, row_count, rows,
                                              error, tb] + timing)
        except P.ProtocolError:
            frame = P.encode_frame(P.RESULT, [
                task_id, P.STATUS_EXCEPTION, 0, 0, b"",
                "run() returned %d bytes of rows, more than one RESULT frame holds (1 GiB); "
                "use a smaller mini_batch_size" % len(rows), ""] + timing)
        self.sock.sendall(frame)

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
