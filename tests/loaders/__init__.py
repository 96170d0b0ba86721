"""One loader test suite, run against SQLite, PostgreSQL and MariaDB."""
