/*
 * db_request.h — work requests as the API sees them: submit (with the
 * submit-side cache lookup), owner views, admin list, results, cancel.
 * Tables: work_request, work_request_input, work_request_result (read and
 * insert of cached rows), input_cache (read), model (read).
 *
 * Runs in: modelhub-fcgi workers. Called by: api_requests.c. The runners'
 * claim/lease/finish queries live with the runner (src/hubd), not here.
 * Owns: nothing; every PGresult returned is the caller's to PQclear().
 *
 * Ownership rule: a request belongs to a user (user_id) or to one anonymous
 * session (anon_session_id); `struct db_owner` carries exactly one of them
 * and every owner query filters on it, so another owner's request reads as
 * "not found".
 */
#ifndef MH_DB_REQUEST_H
#define MH_DB_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "lib/quota.h"
#include "db/db.h"

struct db_owner {
	int64_t user_id;         /* > 0 for a registered user, else 0 */
	int64_t anon_session_id; /* > 0 for an anonymous session, else 0 */
};

struct db_request_new {
	const char *model_id;
	struct db_owner owner;
	int has_header;
	const char *header;          /* NULL when there is none */
	int cache_opt_in;
	const char *idempotency_key; /* NULL when none */
	const char *metadata;        /* JSON object text (client metadata) */
	char *const *inputs;         /* trimmed, non-empty, in order */
	size_t n_inputs;
	/* Multi-column CSV (else NULL): per input, the key column's value
	 * (an entry may be NULL) and the other columns' values as a JSON
	 * array text (sql/010). */
	char *const *row_keys;
	char *const *row_extras;
	/* From db_request_model(): the submit-side cache lookup runs when
	 * cache_enabled (its cache_lookup) and cache_keys (cachekey.h hex, one
	 * per input) is set. */
	int cache_enabled;
	const char *model_version;
	char *const *cache_keys;
	/* Per-caller quota (lib/quota.h; NULL: none) and the bytes this
	 * request keeps (counted against quota->stored_bytes). */
	const struct quota_limits *quota;
	long long stored_bytes;
	int retention_days;          /* hub.retention_days: when stored bytes free up */
};

/* Which quota a refused submit exceeded (DB_SUBMIT_QUOTA). */
struct db_quota_refusal {
	enum quota_kind kind;
	long retry_s;
	struct quota_use use;
};

enum db_submit_rc {
	DB_SUBMIT_ERROR = -1,
	DB_SUBMIT_CREATED = 0,
	DB_SUBMIT_EXISTING,      /* idempotency key seen before: *id_out is that request */
	DB_SUBMIT_QUOTA          /* refused: over a quota (*qr says which) */
};

/* Model facts the submit path needs. 0 found, 1 no such model, -1 error.
 * version_out (>= 64 bytes) receives model_version. *cache_lookup: the
 * model caches and its cache holds entries of that version, so keys are
 * worth computing and looking up (SHA-256 of 1000 inputs and the lookup
 * cost ~1.5 ms of a 1000-input submit; an entry added meanwhile is at
 * worst one missed hit). */
int db_request_model(struct db *db, const char *model_id, int *enabled, int *cache_lookup,
		     char *version_out, size_t version_size, int *max_input_chars);

/* Insert the request and its inputs in one transaction (with a quota:
 * under a per-caller advisory lock, after reading the caller's usage;
 * DB_SUBMIT_QUOTA inserts nothing), copy cache hits
 * into results (when rq->cache_keys and the model caches), complete the
 * request at once when every input hit, else NOTIFY work_queued. The caller
 * has checked the model with db_request_model() (a model deleted since
 * makes the insert fail with a foreign key violation).
 * Without a cache lookup it is one statement (insert, inputs, NOTIFY) and
 * *row_out receives the new request as a db_request_get row (columns
 * DBR_*; the caller PQclear()s it); otherwise, and for DB_SUBMIT_EXISTING,
 * *row_out is NULL and the caller reads the request with db_request_get. */
enum db_submit_rc db_request_submit(struct db *db, const struct db_request_new *rq,
				    int64_t *id_out, PGresult **row_out,
				    struct db_quota_refusal *qr);

/* Columns of db_request_get/db_request_list rows (in this order).
 * DBR_INPUT_COLUMNS: metadata->'input_columns' (jsonb text or NULL);
 * DBR_MODEL_VERSION: metadata->>'model_version', the model's version when
 * the request was submitted (NULL for requests older than that). */
enum db_request_col {
	DBR_ID = 0, DBR_MODEL_ID, DBR_STATUS, DBR_FAILURE_REASON, DBR_FAILURE_DETAIL,
	DBR_INPUT_COUNT, DBR_DONE_COUNT, DBR_CACHED_COUNT, DBR_ERROR_COUNT, DBR_ATTEMPTS,
	DBR_MODEL_CALLS, DBR_EXTRA_CALLS, DBR_HAS_HEADER, DBR_HEADER, DBR_CACHE_OPT_IN,
	DBR_CREATED_AT, DBR_STARTED_AT, DBR_FINISHED_AT, DBR_ISOLATION_MS, DBR_SCREENED_COUNT,
	DBR_KNOWN_BAD_COUNT, DBR_INPUT_COLUMNS, DBR_MODEL_VERSION, DBR_NCOLS
};

/* One request of this owner (0 rows when absent or someone else's). */
PGresult *db_request_get(struct db *db, int64_t id, const struct db_owner *o);

struct db_request_filter {
	const char *status;      /* NULL = any */
	const char *model_id;    /* NULL = any */
	const char *date_from;   /* YYYY-MM-DD (validated by the caller), inclusive */
	const char *date_to;     /* YYYY-MM-DD, inclusive */
	int64_t user_id;         /* admin list only; 0 = any */
	int64_t anon_session_id; /* admin list only; 0 = any */
	int64_t before_id;       /* cursor: only ids < this; 0 = from the newest */
	long offset;
	long limit;              /* rows wanted; the query returns up to limit + 1 */
};

/* The owner's requests, newest first (DBR_* columns). */
PGresult *db_request_list(struct db *db, const struct db_owner *o,
			  const struct db_request_filter *f);

/* The old Ersilia hub's list filters (GET /api/work-requests, api_compat.c)
 * over the owner's requests, newest first, DBR_* columns. Arrays are text[]
 * literals (db_text_array); statuses are modelhub's; from/to timestamptz
 * texts, from inclusive, to exclusive. NULL / 0 = any. */
struct db_compat_filter {
	int64_t id;
	const char *model_ids;
	const char *statuses;
	const char *from, *to;
	long limit;
};
PGresult *db_request_list_compat(struct db *db, const struct db_owner *o,
				 const struct db_compat_filter *f);

/* Columns of db_request_admin_list rows. Only these are ever selected:
 * never inputs, results, header or metadata. */
enum db_request_admin_col {
	DBA_ID = 0, DBA_MODEL_ID, DBA_USER_ID, DBA_ANON_SESSION_ID, DBA_STATUS,
	DBA_FAILURE_REASON, DBA_CREATED_AT, DBA_FINISHED_AT, DBA_RESULT_STATUS,
	DBA_INPUT_COUNT, DBA_ERROR_COUNT, DBA_MODEL_CALLS, DBA_EXTRA_CALLS, DBA_ISOLATION_MS,
	DBA_SCREENED_COUNT, DBA_KNOWN_BAD_COUNT, DBA_NCOLS
};
PGresult *db_request_admin_list(struct db *db, const struct db_request_filter *f);

/* Outcome of db_request_cancel. */
enum db_cancel_rc {
	DB_CANCEL_ERROR = -1,
	DB_CANCEL_DONE,      /* cancelled now */
	DB_CANCEL_NOT_FOUND, /* no such request of this owner */
	DB_CANCEL_FINISHED,  /* already ended: its status in status_out (>= 16 bytes) */
};
/* Cancel a QUEUED or RUNNING request of this owner. */
/* Cancel any QUEUED or RUNNING request (admins), whoever owns it. */
enum db_cancel_rc db_request_admin_cancel(struct db *db, int64_t id, char *status_out);
enum db_cancel_rc db_request_cancel(struct db *db, int64_t id, const struct db_owner *o,
				    char *status_out);

/* What the result download needs, one row:
 * status, failure_reason, failure_detail, model_id, declared columns
 * (model details.columns, jsonb text or NULL), runner-recorded columns
 * (work_request metadata.columns or NULL), the keys of all object records
 * in order of first appearance (jsonb array text or NULL; computed only
 * for requests of more than keys_over inputs: below that the caller holds
 * every record in its first page and finds them itself, cheaper than this
 * aggregate), input_count, the CSV's column names (metadata->'input_columns',
 * {"input","key","extra"} jsonb text, NULL for one-column requests).
 * 0 rows when not found / not owner. */
enum db_result_meta_col {
	DBM_STATUS = 0, DBM_FAILURE_REASON, DBM_FAILURE_DETAIL, DBM_MODEL_ID,
	DBM_MODEL_COLUMNS, DBM_REQUEST_COLUMNS, DBM_RECORD_KEYS, DBM_INPUT_COUNT,
	DBM_INPUT_COLUMNS, DBM_MODEL_VERSION, DBM_NCOLS
};
PGresult *db_request_result_meta(struct db *db, int64_t id, const struct db_owner *o,
				  int keys_over);

/* One page of a result: up to limit inputs with ordinal > after, in order
 * (in: ordinal, input, key, extra as jsonb text; key and extra NULL for
 * one-column requests), and the result rows of those inputs, in order
 * (res: ordinal, record as jsonb text or NULL, error, cached). Two ordered
 * index range scans merged by the caller: a join of the two tables was
 * planned as a nested loop of 1000 probes and cost 2-4 ms per 1000 rows
 * against ~0.6 ms for both scans. Ordinals are 1..input_count, so the
 * results of the page are those in (after, after + limit]. */
struct db_results_page {
	PGresult *in, *res;
};
enum db_result_col { DBX_IN_ORDINAL = 0, DBX_INPUT, DBX_KEY, DBX_EXTRA };
enum db_result_res_col { DBX_RES_ORDINAL = 0, DBX_RECORD, DBX_ERROR, DBX_CACHED };
/* 0, or -1 on a database error (nothing to free then). */
int db_request_results_page(struct db *db, int64_t id, int after, int limit,
			    struct db_results_page *pg);
void db_results_page_clear(struct db_results_page *pg);

/* Encode strings as a PostgreSQL text[] literal ({"a","b\"c"}) into a
 * malloc'd string (caller frees); NULL on out of memory. A NULL entry
 * becomes an SQL NULL element. */
char *db_text_array(char *const *v, size_t n);

#endif
