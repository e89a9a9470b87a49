/*
 * fuzz-api-input.c — fuzz target for everything modelhub-fcgi does with
 * untrusted request bytes before SQL: the JSON body parser
 * (api_body_json: UTF-8, strictness, depth, NULs), model validation
 * (db_model_validate / db_model_validate_merged, all modes) and query
 * string decoding (api_query, api_url_decode).
 *
 * Runs in: a libFuzzer binary (`make fuzz-api-input`, clang) or the replay
 * driver t/017-fuzz-replay.c under `make check` (gcc, ASan in check-asan).
 * Owns: one struct api_req per input, freed before returning.
 * The input's first byte selects the content type; the rest is the body
 * and, in parallel, the query string.
 */
#include "db/db_model.h"
#include "fcgi/api.h"
#include "lib/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
	"application/json", "application/json; charset=utf-8", "text/plain", NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	struct api_req r;
	json_object *o = NULL, *fields = NULL;
	char *q;

	if (!quiet) {
		log_set_level(LOG_ERROR + 1);
		quiet = 1;
	}
	if (size == 0)
		return 0;
	api_req_init(&r);
	r.method = "POST";
	r.path = "/api/models";
	r.content_type = content_types[data[0] % 4];
	r.body = malloc(size);
	if (!r.body)
		return 0;
	memcpy(r.body, data + 1, size - 1);
	r.body[size - 1] = '\0';
	r.body_len = size - 1;

	if (api_body_json(&r, &o) == API_OK) {
		for (int mode = DB_MODEL_CREATE; mode <= DB_MODEL_UPSERT; mode++) {
			db_model_validate(o, (enum db_model_mode)mode, &fields);
			json_object_put(fields);
			fields = NULL;
		}
		db_model_validate_merged(o, NULL, &fields);
		json_object_put(fields);
		fields = NULL;
		db_model_validate_merged(o, o, &fields);
		json_object_put(fields);
		json_object_put(o);
	}

	/* the same bytes as a query string */
	q = strndup(r.body, r.body_len);
	if (q) {
		r.query = q;
		api_query(&r, "a");
		api_query(&r, "model_id");
		api_query(&r, "");
		r.query = "";
		free(q);
	}
	free(api_url_decode(r.body, r.body_len, data[0] & 1));
	api_req_end(&r);
	return 0;
}
