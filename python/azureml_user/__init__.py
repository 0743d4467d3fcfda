"""Compatibility package: lets entry scripts written for Azure ML's
ParallelRunStep (``from azureml_user.parallel_run import EntryScript``) run
unchanged under prs."""
