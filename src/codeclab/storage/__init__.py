"""Where the lab keeps objects (file or S3) and records (SQLite or PostgreSQL), and how it
publishes them."""
