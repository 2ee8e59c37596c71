"""authscale's load side: Locust scenarios, the experiment runner, process supervision."""
