-- A transactional outbox: work on Stripe that must happen eventually, written
-- in the same transaction as the change that needs it, executed by workers.
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    tenant_id VARCHAR(64) NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Set when the job is asked for again while it runs: it runs once more.
    run_again BOOLEAN NOT NULL DEFAULT FALSE,
    run_after TIMESTAMP NOT NULL,
    -- Start of the retry horizon (enqueue or redrive).
    queued_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    locked_by TEXT,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- At most one queued or running job per (kind, tenant): enqueue dedupes on it.
CREATE UNIQUE INDEX jobs_one_active ON jobs (kind, tenant_id)
    WHERE state IN ('queued', 'running');
CREATE INDEX jobs_due ON jobs (run_after) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE state = 'running';
