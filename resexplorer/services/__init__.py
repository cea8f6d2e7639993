"""What the pages need, above the science: the runs a page offers
(catalog.py), error curves and every chart (curves.py, figures.py), Train
page planning, the per-run analysis cache, the paper's numbers and checked
claims, and the shipped reference runs (reference.py)."""
