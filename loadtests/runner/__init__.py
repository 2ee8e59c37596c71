"""What every experiment runs on: run folder, processes, pinning, sampling, verification,
profiles, and the one `measure` (context.py)."""
