"""``from azureml_user.parallel_run import EntryScript`` -- the same singleton
class as ``prs.EntryScript``."""

from prs.entry_script import EntryScript

__all__ = ["EntryScript"]
