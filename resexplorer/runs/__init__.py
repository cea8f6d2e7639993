"""Runs, the record of training: the recipe a run was trained with
(recipe.py, plain data), the run folders and their store (store.py, plain
files, no torch) and the checkpoints inside them (checkpoints.py). Reading
a run, the shipped ones included, needs nothing from training."""
