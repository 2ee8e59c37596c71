"""What runs inside Locust processes: the locustfile, its scenarios, the microsecond recorder,
and the credential parser. Imports nothing of the runner."""
