"""Training: the engine (schedules, the step, races of models on identical
batches; engine.py), recording a race into the run store and resuming from
it (recording.py), data + models + store as a race (launch.py), background
jobs (jobs.py) and how they fail (failures.py), re-testing a checkpoint
(evaluation.py) and command-line progress (progress.py)."""
