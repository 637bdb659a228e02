"""The composition root: the one place that builds every part through its constructor (build.py),
runs and stops them (run.py), and the command line (cli.py). Nothing below imports it."""
