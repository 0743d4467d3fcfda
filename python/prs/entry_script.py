"""EntryScript: what an entry script knows about the worker it runs in.

The same class is importable as ``from prs import EntryScript`` and, so that
scripts written for Azure ML's ParallelRunStep run unchanged, as
``from azureml_user.parallel_run import EntryScript``. It is a singleton:
every ``EntryScript()`` returns the same object.

Inside a prs worker the values come from the ``PRS_*`` environment variables
the agent sets (docs/worker-protocol.md). Outside a worker (a script imported
in a notebook or a unit test) every attribute still has a usable value and
the logger writes to stderr.
"""

import logging
import os
import socket
import sys
import threading

LOGGER_NAME = "prs.entry_script"
LOG_FORMAT = "%(asctime)s|%(levelname)s|%(process)d|%(message)s"

_LEVELS = {
    "CRITICAL": logging.CRITICAL,
    "FATAL": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
}


def _parse_level(text):
    if not text:
        return logging.INFO
    text = text.strip()
    if text.isdigit():
        return int(text)
    return _LEVELS.get(text.upper(), logging.INFO)


def _env(name, default):
    value = os.environ.get(name)
    return value if value else default


class EntryScript:
    """Singleton with ``logger``, ``agent_name``, ``node_id``, ``log_dir``,
    ``output_dir`` and ``working_dir``."""

    _instance = None
    _lock = threading.Lock()

    def __new__(cls, *args, **kwargs):
        # Constructor arguments are accepted and ignored, as in Azure's class.
        inst = cls._instance
        if inst is None:
            with cls._lock:
                inst = cls._instance
                if inst is None:
                    inst = super().__new__(cls)
                    inst._logger = None
                    inst._logger_lock = threading.Lock()
                    cls._instance = inst
        return inst

    def __init__(self, *args, **kwargs):
        pass

    # -- identity ---------------------------------------------------------

    @property
    def agent_name(self):
        """The worker's process name, e.g. ``process000``."""
        return _env("PRS_PROCESS_NAME", "process%06d" % os.getpid())

    @property
    def process_name(self):
        return self.agent_name

    @property
    def node_id(self):
        """The node this worker runs on (the agent's IP address or node name)."""
        return _env("PRS_NODE_ID", socket.gethostname())

    # -- folders ----------------------------------------------------------

    @property
    def log_dir(self):
        """The job's log folder on this node."""
        return _env("PRS_LOG_DIR", os.path.join(os.getcwd(), "logs"))

    @property
    def output_dir(self):
        """The job's output folder."""
        return _env("PRS_OUTPUT_DIR", os.getcwd())

    @property
    def working_dir(self):
        """A scratch folder private to this worker."""
        return _env("PRS_WORKING_DIR", os.getcwd())

    # -- logging ----------------------------------------------------------

    @property
    def logger(self):
        """A ``logging.Logger`` named ``prs.entry_script``.

        It appends to ``PRS_ENTRY_SCRIPT_LOG`` when that is set (the agent
        ships the file to the job's ``user/entry_script_log/`` folder), else it
        writes to stderr. The level is ``PRS_LOGGING_LEVEL`` (default INFO).
        """
        if self._logger is None:
            with self._logger_lock:
                if self._logger is None:
                    self._logger = self._make_logger()
        return self._logger

    @staticmethod
    def _make_logger():
        logger = logging.getLogger(LOGGER_NAME)
        logger.setLevel(_parse_level(os.environ.get("PRS_LOGGING_LEVEL")))
        logger.propagate = False
        for handler in list(logger.handlers):
            if getattr(handler, "_prs_handler", False):
                logger.removeHandler(handler)
                handler.close()
        handler = None
        path = os.environ.get("PRS_ENTRY_SCRIPT_LOG")
        problem = None
        if path:
            try:
                parent = os.path.dirname(os.path.abspath(path))
                os.makedirs(parent, exist_ok=True)
                handler = logging.FileHandler(path, mode="a", encoding="utf-8")
            except OSError as e:
                problem = "cannot open PRS_ENTRY_SCRIPT_LOG %s (%s); logging to stderr" % (path, e)
                handler = None
        if handler is None:
            handler = logging.StreamHandler(sys.stderr)
        handler._prs_handler = True
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        if problem:
            logger.warning(problem)
        return logger

    def __repr__(self):
        return "EntryScript(agent_name=%r, node_id=%r)" % (self.agent_name, self.node_id)
