"""dedup: collect analytics events and store each distinct one exactly once in ClickHouse."""
