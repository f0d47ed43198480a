"""scripts/bench.py's parts: the step implementations and their check (steps.py), the
interleaved timing and the table (timing.py), where an engine step's time goes
(profile.py), and memory and machine (report.py)."""
