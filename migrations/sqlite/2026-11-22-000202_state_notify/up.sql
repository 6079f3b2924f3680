-- PostgreSQL only (LISTEN/NOTIFY); SQLite instances rely on the cache TTL.
-- Kept so that both folders carry the same versions.
SELECT 1;
