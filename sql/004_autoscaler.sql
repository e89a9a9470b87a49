-- 004 — the node autoscaler (issue 13, DESIGN.md §7).
--
-- autoscaler_decision: every decision of the autoscaler child (leader only),
-- with its reason: scale_up, no_scale (nothing fits / group at max),
-- cordon, drain, uncordon, mark (cluster.x.k8s.io/delete-machine), remove
-- (scale down), skipped (and why), external (what cluster-autoscaler or
-- Karpenter said about a pod). A decision repeated unchanged is not stored
-- again (the child remembers the last one per subject).
--
-- autoscaler_status: one row per replica that ran the child, the snapshot
-- of its last pass as JSON (groups with sizes, pending pods, nodes with the
-- verdict and its reason), served by GET /api/autoscaler.
--
-- autoscaler_pod: the autoscaler's verdict per pending pod (by pod name):
-- provisioning (capacity is being added for it: the runner extends the start
-- deadline up to hub.provision_timeout), no_capacity (nothing can ever hold
-- it: the runner fails the request NO_CAPACITY at once), at_max, fits.
-- Rows of pods that are gone are deleted by the child.
--
-- autoscaler_node: nodes the autoscaler cordoned (to remove or to drain), so
-- that a new leader continues the removal instead of forgetting its cordon.

CREATE TABLE IF NOT EXISTS autoscaler_decision (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    replica     text NOT NULL,
    mode        text NOT NULL,
    action      text NOT NULL,
    node_group  text,
    node        text,
    pod         text,
    model_id    text,
    count       integer,
    reason      text NOT NULL,
    detail      jsonb
);
CREATE INDEX IF NOT EXISTS autoscaler_decision_at ON autoscaler_decision (at DESC);

CREATE TABLE IF NOT EXISTS autoscaler_status (
    replica     text PRIMARY KEY,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    snapshot    jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS autoscaler_pod (
    pod         text PRIMARY KEY,
    model_id    text,
    verdict     text NOT NULL CHECK (verdict IN ('fits', 'provisioning', 'at_max', 'no_capacity')),
    message     text NOT NULL DEFAULT '',
    node_group  text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS autoscaler_node (
    node        text PRIMARY KEY,
    node_group  text NOT NULL,
    purpose     text NOT NULL CHECK (purpose IN ('remove', 'drain')),
    cordoned_at timestamptz NOT NULL DEFAULT now()
);

-- NO_CAPACITY joins the failure reasons, whatever list an earlier or later
-- migration keeps in the check (added to the constraint's array in place).
DO $$
DECLARE def text;
BEGIN
    SELECT pg_get_constraintdef(c.oid) INTO def
      FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
     WHERE t.relname = 'work_request' AND t.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())
       AND c.conname = 'work_request_failure_reason_check';
    IF def IS NOT NULL AND position('NO_CAPACITY' IN def) = 0 THEN
        EXECUTE 'ALTER TABLE work_request DROP CONSTRAINT work_request_failure_reason_check';
        EXECUTE 'ALTER TABLE work_request ADD CONSTRAINT work_request_failure_reason_check '
                || replace(def, 'ARRAY[', 'ARRAY[''NO_CAPACITY''::text, ');
    END IF;
END $$;
