"""authscale's analysis: pure functions from a run folder to tables, charts and the report.

It reads only the run folder (never the servers or the load tests), so a report can be
rebuilt from a run's raw data alone.
"""
