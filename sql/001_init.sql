-- 001_init.sql — the modelhub schema (DESIGN.md §4).
-- Applied by `modelhubctl migrate` inside one transaction with search_path set
-- to the configured schema; no object names carry a schema prefix.

CREATE TABLE app_user (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    first_name    text,
    last_name     text,
    roles         text[] NOT NULL DEFAULT '{USER}',
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Sessions: only the SHA-256 of the token is stored.
CREATE TABLE session (
    id                  bigserial PRIMARY KEY,
    token_hash          bytea NOT NULL UNIQUE,
    kind                text NOT NULL CHECK (kind IN ('USER', 'ANON', 'API')),
    user_id             bigint REFERENCES app_user(id) ON DELETE CASCADE,
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_seen           timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    revoked_at          timestamptz,
    user_agent          text,
    ip                  text,
    CHECK ((kind = 'ANON') = (user_id IS NULL))
);
CREATE INDEX session_user_idx ON session (user_id);
CREATE INDEX session_expiry_idx ON session (absolute_expires_at);

-- Login attempts, for rate limiting per username and per IP across workers.
CREATE TABLE login_attempt (
    id       bigserial PRIMARY KEY,
    username text,
    ip       text,
    at       timestamptz NOT NULL DEFAULT now(),
    success  boolean NOT NULL
);
CREATE INDEX login_attempt_user_idx ON login_attempt (username, at);
CREATE INDEX login_attempt_ip_idx ON login_attempt (ip, at);

-- Generic fixed-window rate limit counters (anonymous token issue, ...).
CREATE TABLE rate_limit (
    bucket       text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, window_start)
);

CREATE TABLE model (
    id                   text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    enabled              boolean NOT NULL DEFAULT true,
    execution_mode       text NOT NULL DEFAULT 'SYNC' CHECK (execution_mode IN ('SYNC', 'ASYNC')),
    image                text,
    image_tag            text NOT NULL DEFAULT 'latest',
    local_command        text[],
    port                 integer NOT NULL DEFAULT 80,
    cpu_request_m        integer NOT NULL DEFAULT 100 CHECK (cpu_request_m > 0),
    cpu_limit_m          integer NOT NULL DEFAULT 1000 CHECK (cpu_limit_m > 0),
    memory_request_mib   integer NOT NULL DEFAULT 256 CHECK (memory_request_mib > 0),
    memory_limit_mib     integer NOT NULL DEFAULT 1024 CHECK (memory_limit_mib > 0),
    disable_memory_limit boolean NOT NULL DEFAULT false,
    max_instances        integer NOT NULL DEFAULT 2 CHECK (max_instances >= 0),
    idle_seconds         integer NOT NULL DEFAULT 60 CHECK (idle_seconds >= 0),
    cache_enabled        boolean NOT NULL DEFAULT false,
    model_version        text NOT NULL DEFAULT '1',
    description          text NOT NULL DEFAULT '',
    details              jsonb NOT NULL DEFAULT '{}',
    version              integer NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (cpu_request_m <= cpu_limit_m),
    CHECK (memory_request_mib <= memory_limit_mib)
);

CREATE TABLE work_request (
    id               bigserial PRIMARY KEY,
    model_id         text NOT NULL REFERENCES model(id) ON DELETE CASCADE,
    user_id          bigint REFERENCES app_user(id) ON DELETE CASCADE,
    anon_session_id  bigint,
    status           text NOT NULL DEFAULT 'QUEUED'
                     CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    failure_reason   text CHECK (failure_reason IN ('INVALID_INPUT', 'MODEL_DISABLED',
                     'INSTANCE_START_TIMEOUT', 'OOM_KILLED', 'MODEL_ERROR', 'RESULT_MISMATCH',
                     'TIMEOUT', 'CANCELLED', 'ATTEMPTS_EXHAUSTED')),
    failure_detail   text,
    attempts         integer NOT NULL DEFAULT 0,
    runner_id        text,
    instance_id      bigint,
    lease_expires_at timestamptz,
    deadline         timestamptz,
    input_count      integer NOT NULL,
    done_count       integer NOT NULL DEFAULT 0,
    cached_count     integer NOT NULL DEFAULT 0,
    error_count      integer NOT NULL DEFAULT 0,
    model_calls      integer NOT NULL DEFAULT 0,
    extra_calls      integer NOT NULL DEFAULT 0,
    has_header       boolean NOT NULL DEFAULT false,
    header           text,
    cache_opt_in     boolean NOT NULL DEFAULT false,
    idempotency_key  text,
    metadata         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    CHECK ((user_id IS NULL) <> (anon_session_id IS NULL))
);
CREATE INDEX work_request_queue_idx ON work_request (model_id, id) WHERE status = 'QUEUED';
CREATE INDEX work_request_running_idx ON work_request (lease_expires_at) WHERE status = 'RUNNING';
CREATE INDEX work_request_user_idx ON work_request (user_id, id);
CREATE INDEX work_request_anon_idx ON work_request (anon_session_id, id);
CREATE INDEX work_request_created_idx ON work_request (created_at);
CREATE UNIQUE INDEX work_request_idem_user_idx ON work_request (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND user_id IS NOT NULL;
CREATE UNIQUE INDEX work_request_idem_anon_idx ON work_request (anon_session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND anon_session_id IS NOT NULL;

CREATE TABLE work_request_input (
    request_id bigint NOT NULL REFERENCES work_request(id) ON DELETE CASCADE,
    ordinal    integer NOT NULL,
    input      text NOT NULL,
    PRIMARY KEY (request_id, ordinal)
);

-- One row per input once it has an answer; record NULL = null record.
CREATE TABLE work_request_result (
    request_id bigint NOT NULL REFERENCES work_request(id) ON DELETE CASCADE,
    ordinal    integer NOT NULL,
    record     jsonb,
    error      text,
    cached     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (request_id, ordinal)
);

CREATE TABLE model_instance (
    id                 bigserial PRIMARY KEY,
    model_id           text NOT NULL,
    backend            text NOT NULL,
    name               text,
    node               text,
    address            text,
    pid                integer,
    replica_id         text,
    state              text NOT NULL DEFAULT 'REQUESTED'
                       CHECK (state IN ('REQUESTED', 'STARTING', 'READY', 'BUSY', 'IDLE',
                                        'TERMINATING', 'TERMINATED')),
    termination_reason text CHECK (termination_reason IN ('COMPLETED', 'FAILED', 'OOMKILLED',
                                        'STOPPED', 'IDLE', 'LOST')),
    termination_detail text,
    stop_requested     boolean NOT NULL DEFAULT false,
    current_request_id bigint,
    request_ids        bigint[] NOT NULL DEFAULT '{}',
    cpu_request_m      integer,
    cpu_limit_m        integer,
    memory_request_mib integer,
    memory_limit_mib   integer,
    started_at         timestamptz NOT NULL DEFAULT now(),
    ready_at           timestamptz,
    last_used_at       timestamptz,
    terminated_at      timestamptz,
    snapshot           jsonb NOT NULL DEFAULT '{}',
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_instance_active_idx ON model_instance (model_id) WHERE state <> 'TERMINATED';
CREATE INDEX model_instance_started_idx ON model_instance (started_at);

CREATE TABLE instance_event (
    id          bigserial PRIMARY KEY,
    instance_id bigint NOT NULL REFERENCES model_instance(id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    source      text NOT NULL DEFAULT 'hub' CHECK (source IN ('hub', 'k8s')),
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX instance_event_instance_idx ON instance_event (instance_id, at);

CREATE TABLE instance_metrics (
    instance_id      bigint PRIMARY KEY REFERENCES model_instance(id) ON DELETE CASCADE,
    model_id         text NOT NULL,
    sample_count     integer NOT NULL,
    cpu_min_m        double precision, cpu_max_m double precision, cpu_avg_m double precision,
    cpu_60_min_m     double precision, cpu_60_max_m double precision, cpu_60_avg_m double precision,
    mem_min_mib      double precision, mem_max_mib double precision, mem_avg_mib double precision,
    mem_60_min_mib   double precision, mem_60_max_mib double precision, mem_60_avg_mib double precision,
    cpu_request_m    integer, cpu_limit_m integer,
    memory_request_mib integer, memory_limit_mib integer,
    input_count      integer,
    termination_reason text,
    persisted_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX instance_metrics_model_idx ON instance_metrics (model_id, persisted_at DESC);

-- Live aggregates of active instances, written by the scraper every ~15 s so
-- API workers on other replicas can serve them (DESIGN.md §6).
CREATE TABLE instance_live (
    instance_id bigint PRIMARY KEY REFERENCES model_instance(id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    aggregates  jsonb NOT NULL
);

CREATE TABLE instance_log (
    instance_id bigint PRIMARY KEY REFERENCES model_instance(id) ON DELETE CASCADE,
    text        text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE input_cache (
    model_id      text NOT NULL REFERENCES model(id) ON DELETE CASCADE,
    model_version text NOT NULL,
    input_key     bytea NOT NULL,
    input         text NOT NULL,
    record        jsonb,
    user_id       bigint REFERENCES app_user(id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, model_version, input_key)
);

CREATE TABLE recommendation (
    id                 bigserial PRIMARY KEY,
    model_id           text NOT NULL REFERENCES model(id) ON DELETE CASCADE,
    computed_at        timestamptz NOT NULL DEFAULT now(),
    window_from        timestamptz,
    window_to          timestamptz,
    sample_count       integer NOT NULL,
    cpu_request_m      integer, cpu_limit_m integer,
    memory_request_mib integer, memory_limit_mib integer,
    rec_cpu_request_m  integer, rec_cpu_limit_m integer,
    rec_memory_request_mib integer, rec_memory_limit_mib integer,
    verdict            text,
    detail             jsonb NOT NULL DEFAULT '{}',
    applied_at         timestamptz,
    applied_by         bigint REFERENCES app_user(id) ON DELETE SET NULL
);
CREATE INDEX recommendation_model_idx ON recommendation (model_id, computed_at DESC);

CREATE TABLE hub_server (
    replica_id   text PRIMARY KEY,
    hostname     text,
    pid          integer,
    version      text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    detail       jsonb NOT NULL DEFAULT '{}'
);

-- Janitor bookkeeping (last nightly run etc.), one row per job.
CREATE TABLE job_run (
    job     text PRIMARY KEY,
    last_at timestamptz NOT NULL
);

-- API timestamps: ISO 8601 in UTC with a Z, e.g. 2026-11-24T18:00:00.123Z.
CREATE FUNCTION iso(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
