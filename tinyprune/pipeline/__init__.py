"""Pipeline: the stages every job composes, its configuration and its output folder.

`config` reads a `run` TOML into a dataclass; `run` wires load -> prune -> quantize ->
measure -> export -> fit -> report; `outputs` writes a result folder atomically.
It does not implement any stage itself.
"""
