"""authscale's load side, in three parts that import one way (swarm <- runner <- experiments):

- `swarm`: what runs inside Locust processes (locustfile, scenarios, recorder, credentials);
- `runner`: what every experiment runs on (run folder, processes, pinning, sampling,
  verification, profiles, the one `measure`);
- `experiments`: one module per experiment.

The modules here are the commands: `bench`, `calibrate`, `ui`, `compose`.
"""
