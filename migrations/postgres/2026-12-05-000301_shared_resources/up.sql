-- Issue 22: resources every instance and command shares.

-- One Stripe request budget per account mode ('test' or 'live'), shared by
-- every process through this row: a timeline of send slots, `per_second`
-- to the second, aligned on whole seconds. A process books the next free
-- slots in one short write transaction and sends at their times, so the
-- account never sees more than `per_second` in any second.
CREATE TABLE stripe_budget (
    account TEXT PRIMARY KEY,
    per_second INTEGER NOT NULL,
    -- The first slot nobody has booked: slot n is second n / per_second,
    -- (n % per_second) / per_second into it.
    next_slot BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- One row per running process (serve, backfill-customers, sync, ...): its
-- heartbeat. A lease (creation claim, subscription lock, job) whose holder's
-- heartbeat stopped is taken over at once instead of when it expires.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    heartbeat_at TIMESTAMP NOT NULL
);
CREATE INDEX instances_heartbeat_at ON instances (heartbeat_at);
