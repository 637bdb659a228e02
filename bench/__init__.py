"""A load benchmark: many simulated children through whole reports against the fake Bot API server.

Run ``python -m bench --help``; bench/README.md explains every figure.
"""
