FROM python:3.11-slim AS app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["dedup", "serve", "--host", "0.0.0.0"]

# The integration and end-to-end suites, run by compose.yaml's `test` service against its
# own servers: `docker compose --profile test run --rm test`. The end-to-end tests start
# redis-servers of their own, so the image carries one; the browser tests drive chromium, and
# the SDK tests run the npm packages of tests/e2e/js on node.
FROM app AS test
RUN apt-get update && apt-get install -y --no-install-recommends redis-server chromium nodejs npm \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir '.[dev]'
COPY tests ./tests
COPY bench ./bench
COPY scripts ./scripts
RUN scripts/ensure-npm.sh
CMD ["pytest", "-q", "-m", "not local_servers and not cluster", "tests/integration", "tests/e2e"]
