"""The HTTP edge: Litestar controllers, body reading and the error table."""
