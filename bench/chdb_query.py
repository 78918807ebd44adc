"""Run read-only queries on an embedded chDB store and print their rows as one JSON list.

A child process of the benchmark: chDB allows one store per process and locks its directory,
so the benchmark never opens it itself. Usage: python -m bench.chdb_query PATH SQL...
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    import chdb.session

    path, *queries = argv
    session = chdb.session.Session(path)
    try:
        results = [json.loads(str(session.query(sql, "JSONCompact")))["data"] for sql in queries]
    finally:
        session.close()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
