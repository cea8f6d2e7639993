"""Training: the engine (configs, schedules, the step, races of models on
identical batches; engine.py), the run store and its checkpoints (runs.py),
data + models + store as a race (launch.py), background jobs (jobs.py),
re-testing a checkpoint (evaluation.py) and command-line progress."""
