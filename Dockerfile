FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir .
ENV DEDUP_MIGRATIONS_DIR=/app/migrations
EXPOSE 8000
CMD ["dedup", "serve", "--host", "0.0.0.0"]
