"""Small helpers with no domain of their own: rate-limited logs and token buckets, the one
atomic file writer, safe TOML reading, network address rules."""
