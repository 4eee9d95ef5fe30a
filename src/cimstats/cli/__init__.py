"""The ``cimstats`` command line: argument parsing only; every command calls the public API."""
