-- 012 — leadership as a lease row with a fencing token (issue 15).
--
-- One row per elected job ('hub': the janitor's sweeps, the nightly
-- recommendations and every SUP_LEADER_ONLY role of the replica that holds
-- it). The holder ("<replica_id>:<supervisor pid>") renews it every
-- janitor tick; another replica takes it only once expires_at has passed,
-- and then token grows by one. Every leader-only write carries the token it
-- was elected with and checks it in the same statement
-- (db_lead.h DB_LEASE_FENCE): a leader frozen past its lease (SIGSTOP, a
-- partition) writes nothing when it wakes, and learns it lost leadership at
-- its next renewal. Times are the database's (clock_timestamp()), so the
-- replicas' clocks never matter.

CREATE TABLE IF NOT EXISTS leader_lease (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    token      bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    renewed_at timestamptz NOT NULL
);
