/* 013-validate — db/db_model.c validation: id pattern, types, ranges, local_command, unknown fields, requests <= limits. */
#include "db/db_model.h"
#include "lib/log.h"
#include "lib/tap.h"

#include <string.h>

/* Validate JSON text in mode; return the fields object as compact text
 * ("" when valid). */
static const char *check(const char *json, enum db_model_mode mode)
{
	static char out[2048];
	json_object *m = json_tokener_parse(json), *f = NULL;
	int n;

	out[0] = '\0';
	if (!m) {
		snprintf(out, sizeof out, "UNPARSABLE TEST INPUT");
		return out;
	}
	n = db_model_validate(m, mode, &f);
	if (n > 0 && f)
		snprintf(out, sizeof out, "%s", json_object_to_json_string_ext(f, JSON_C_TO_STRING_PLAIN));
	else if (n > 0)
		snprintf(out, sizeof out, "COUNT WITHOUT FIELDS");
	json_object_put(f);
	json_object_put(m);
	return out;
}

/* 1 when validation names exactly the given field (and only it). */
static int rejects(const char *json, enum db_model_mode mode, const char *field)
{
	const char *f = check(json, mode);
	json_object *o = json_tokener_parse(f);
	int good = o && json_object_object_length(o) == 1 && json_object_object_get_ex(o, field, NULL);

	if (!good)
		printf("# %s -> %s\n", json, f);
	json_object_put(o);
	return good;
}

static const char *merged(const char *patch, const char *cur)
{
	static char out[1024];
	json_object *m = json_tokener_parse(patch), *c = cur ? json_tokener_parse(cur) : NULL;
	json_object *f = NULL;

	out[0] = '\0';
	if (db_model_validate_merged(m, c, &f) > 0 && f)
		snprintf(out, sizeof out, "%s", json_object_to_json_string_ext(f, JSON_C_TO_STRING_PLAIN));
	json_object_put(f);
	json_object_put(m);
	json_object_put(c);
	return out;
}

int main(void)
{
	char big[8000];
	const char *f;

	log_init("t013");

	/* ids */
	ok(db_model_valid_id("eos3b5e"), "id eos3b5e");
	ok(db_model_valid_id("0a_b.c-d"), "id with _ . -");
	ok(db_model_valid_id("a"), "one character");
	ok(!db_model_valid_id(""), "empty id");
	ok(!db_model_valid_id(NULL), "NULL id");
	ok(!db_model_valid_id("Abc"), "upper case");
	ok(!db_model_valid_id("-abc"), "leading dash");
	ok(!db_model_valid_id(".abc"), "leading dot");
	ok(!db_model_valid_id("a b"), "space");
	ok(!db_model_valid_id("a/b"), "slash");
	ok(!db_model_valid_id("caf\xc3\xa9"), "non-ASCII");
	memset(big, 'a', 64);
	big[64] = '\0';
	ok(db_model_valid_id(big), "64 characters");
	big[64] = 'a';
	big[65] = '\0';
	ok(!db_model_valid_id(big), "65 characters");

	/* a complete valid model */
	is_str(check("{\"id\":\"m1\",\"enabled\":true,\"execution_mode\":\"ASYNC\",\"image\":\"org/m\","
		     "\"image_tag\":\"v1.2_3\",\"local_command\":[\"/usr/bin/python3\",\"s.py\","
		     "\"--port\",\"{port}\"],\"port\":8080,\"cpu_request_m\":100,\"cpu_limit_m\":200,"
		     "\"memory_request_mib\":64,\"memory_limit_mib\":128,\"disable_memory_limit\":false,"
		     "\"max_instances\":0,\"idle_seconds\":0,\"cache_enabled\":true,"
		     "\"model_version\":\"2\",\"description\":\"\",\"details\":{\"a\":[1]},"
		     "\"version\":9,\"created_at\":\"x\",\"updated_at\":null}", DB_MODEL_CREATE),
	       "", "a complete valid model (read-only fields ignored)");
	is_str(check("{\"id\":\"m1\"}", DB_MODEL_CREATE), "", "id alone is enough to create");
	is_str(check("{\"image\":null,\"local_command\":null}", DB_MODEL_PATCH), "",
	       "image and local_command may be null");
	is_str(check("{}", DB_MODEL_PATCH), "", "empty patch");

	/* required id */
	ok(rejects("{}", DB_MODEL_CREATE, "id"), "create without id");
	ok(rejects("{\"enabled\":true}", DB_MODEL_UPSERT, "id"), "upsert without id");
	ok(rejects("{\"id\":\"Bad Id\"}", DB_MODEL_CREATE, "id"), "bad id pattern");
	ok(rejects("{\"id\":5}", DB_MODEL_CREATE, "id"), "numeric id");

	/* each field's type and range */
	ok(rejects("{\"enabled\":\"yes\"}", DB_MODEL_PATCH, "enabled"), "enabled string");
	ok(rejects("{\"enabled\":1}", DB_MODEL_PATCH, "enabled"), "enabled number");
	ok(rejects("{\"execution_mode\":\"sync\"}", DB_MODEL_PATCH, "execution_mode"), "mode lower case");
	ok(rejects("{\"execution_mode\":\"BATCH\"}", DB_MODEL_PATCH, "execution_mode"), "unknown mode");
	ok(rejects("{\"execution_mode\":null}", DB_MODEL_PATCH, "execution_mode"), "mode null");
	ok(rejects("{\"image\":5}", DB_MODEL_PATCH, "image"), "image number");
	ok(rejects("{\"image\":\"\"}", DB_MODEL_PATCH, "image"), "image empty");
	ok(rejects("{\"image_tag\":\"\"}", DB_MODEL_PATCH, "image_tag"), "empty tag");
	ok(rejects("{\"image_tag\":\"a b\"}", DB_MODEL_PATCH, "image_tag"), "tag with space");
	ok(rejects("{\"image_tag\":null}", DB_MODEL_PATCH, "image_tag"), "tag null");
	ok(rejects("{\"port\":0}", DB_MODEL_PATCH, "port"), "port 0");
	ok(rejects("{\"port\":65536}", DB_MODEL_PATCH, "port"), "port 65536");
	ok(rejects("{\"cpu_request_m\":0}", DB_MODEL_PATCH, "cpu_request_m"), "cpu request 0");
	ok(rejects("{\"cpu_request_m\":-5}", DB_MODEL_PATCH, "cpu_request_m"), "cpu request negative");
	ok(rejects("{\"cpu_request_m\":1.5}", DB_MODEL_PATCH, "cpu_request_m"), "cpu request fraction");
	ok(rejects("{\"cpu_request_m\":\"100\"}", DB_MODEL_PATCH, "cpu_request_m"), "cpu request string");
	ok(rejects("{\"cpu_limit_m\":0}", DB_MODEL_PATCH, "cpu_limit_m"), "cpu limit 0");
	ok(rejects("{\"cpu_limit_m\":99999999999}", DB_MODEL_PATCH, "cpu_limit_m"), "cpu limit huge");
	ok(rejects("{\"memory_request_mib\":0}", DB_MODEL_PATCH, "memory_request_mib"), "memory request 0");
	ok(rejects("{\"memory_limit_mib\":-1}", DB_MODEL_PATCH, "memory_limit_mib"), "memory limit -1");
	ok(rejects("{\"memory_limit_mib\":null}", DB_MODEL_PATCH, "memory_limit_mib"), "memory limit null");
	ok(rejects("{\"disable_memory_limit\":\"no\"}", DB_MODEL_PATCH, "disable_memory_limit"),
	   "disable_memory_limit string");
	ok(rejects("{\"max_instances\":-1}", DB_MODEL_PATCH, "max_instances"), "max_instances -1");
	is_str(check("{\"max_instances\":0,\"idle_seconds\":0}", DB_MODEL_PATCH), "",
	       "max_instances 0 and idle_seconds 0 are allowed");
	ok(rejects("{\"idle_seconds\":-1}", DB_MODEL_PATCH, "idle_seconds"), "idle_seconds -1");
	ok(rejects("{\"cache_enabled\":null}", DB_MODEL_PATCH, "cache_enabled"), "cache_enabled null");
	ok(rejects("{\"model_version\":\"\"}", DB_MODEL_PATCH, "model_version"), "empty model_version");
	ok(rejects("{\"description\":7}", DB_MODEL_PATCH, "description"), "description number");
	memset(big, 'x', 4002);
	big[0] = '"';
	big[4002] = '\0';
	{
		char j[8100];
		snprintf(j, sizeof j, "{\"description\":%s\"}", big);
		ok(rejects(j, DB_MODEL_PATCH, "description"), "description over 4000 bytes");
	}
	ok(rejects("{\"details\":[]}", DB_MODEL_PATCH, "details"), "details array");
	ok(rejects("{\"details\":null}", DB_MODEL_PATCH, "details"), "details null");
	ok(rejects("{\"details\":\"{}\"}", DB_MODEL_PATCH, "details"), "details string");

	/* local_command */
	ok(rejects("{\"local_command\":\"serve --port {port}\"}", DB_MODEL_PATCH, "local_command"),
	   "local_command string");
	ok(rejects("{\"local_command\":[]}", DB_MODEL_PATCH, "local_command"), "local_command empty");
	ok(rejects("{\"local_command\":[\"serve\"]}", DB_MODEL_PATCH, "local_command"),
	   "local_command without {port}");
	ok(rejects("{\"local_command\":[\"serve\",\"\",\"{port}\"]}", DB_MODEL_PATCH, "local_command"),
	   "local_command with an empty element");
	ok(rejects("{\"local_command\":[\"serve\",5,\"{port}\"]}", DB_MODEL_PATCH, "local_command"),
	   "local_command with a number");
	is_str(check("{\"local_command\":[\"{models_dir}/s\",\"--listen={host}:{port}\"]}",
		     DB_MODEL_PATCH), "", "{port} inside an element is enough");

	/* unknown fields, several problems at once */
	ok(rejects("{\"cpu\":1}", DB_MODEL_PATCH, "cpu"), "unknown field named");
	f = check("{\"id\":\"X\",\"port\":0,\"enabled\":2,\"nope\":1,\"details\":1}", DB_MODEL_CREATE);
	ok(strstr(f, "\"id\"") && strstr(f, "\"port\"") && strstr(f, "\"enabled\"") &&
	   strstr(f, "\"nope\"") && strstr(f, "\"details\""), "every rejected field is named: %s", f);

	/* not an object */
	{
		json_object *a = json_object_new_array(), *fl = NULL;
		ok(db_model_validate(a, DB_MODEL_CREATE, &fl) == 1 && fl, "an array is rejected");
		json_object_put(fl);
		json_object_put(a);
	}

	/* requests <= limits, merged over the stored row or the defaults */
	is_str(merged("{}", NULL), "", "defaults are consistent");
	is_str(merged("{\"cpu_request_m\":1000}", NULL), "", "request equal to the default limit");
	f = merged("{\"cpu_request_m\":1001}", NULL);
	ok(strstr(f, "cpu_request_m") && !strstr(f, "cpu_limit_m\":"),
	   "request above the default limit names the request: %s", f);
	f = merged("{\"cpu_limit_m\":50}", NULL);
	ok(strstr(f, "\"cpu_limit_m\"") && !strstr(f, "\"cpu_request_m\""),
	   "limit below the default request names the limit: %s", f);
	f = merged("{\"memory_request_mib\":512,\"memory_limit_mib\":256}", NULL);
	ok(strstr(f, "\"memory_request_mib\"") && strstr(f, "\"memory_limit_mib\""),
	   "both given and inconsistent: both named: %s", f);
	is_str(merged("{\"memory_limit_mib\":100}", "{\"memory_request_mib\":64,\"memory_limit_mib\":128}"),
	       "", "limit lowered but still above the stored request");
	f = merged("{\"memory_limit_mib\":32}", "{\"memory_request_mib\":64,\"memory_limit_mib\":128}");
	ok(strstr(f, "memory_limit_mib") != NULL, "limit lowered below the stored request: %s", f);
	is_str(merged("{\"cpu_request_m\":3000,\"cpu_limit_m\":4000}", "{\"cpu_request_m\":100,\"cpu_limit_m\":1000}"),
	       "", "both raised together");
	return done_testing();
}
