# One image for the servers and Locust: slim Python, the pinned dependencies, a non-root
# user, and no build tools in the final stage. PYTHON_IMAGE swaps the base (a Debian image
# with python3 and venv will do: `make compose-images` builds one where the official image
# cannot be pulled).
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY servers servers
COPY loadtests loadtests
COPY analysis analysis
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
       -c requirements.lock .

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 authscale
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The locustfile is read from disk by Locust; the packages come from the venv.
COPY loadtests loadtests
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER authscale
EXPOSE 8000 8089
CMD ["python", "-m", "servers", "--help"]
