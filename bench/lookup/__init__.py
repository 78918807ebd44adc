"""`make bench-lookup`: the lookup on `event_fingerprints` as it grows (run: __main__)."""
