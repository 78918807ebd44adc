FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["dedup", "serve", "--host", "0.0.0.0"]
