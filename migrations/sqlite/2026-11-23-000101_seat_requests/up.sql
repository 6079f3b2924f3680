-- Seat changes coalesce across instances: each call records the count it
-- wants under a rising number; whoever holds the subscription write lock
-- sends the newest wanted count and marks every call up to its number as
-- carried. One row per tenant that ever changed its seats.
CREATE TABLE seat_requests (
    tenant_id VARCHAR(64) PRIMARY KEY NOT NULL,
    wanted INTEGER NOT NULL,
    request_seq BIGINT NOT NULL,
    carried_seq BIGINT NOT NULL DEFAULT 0
);
