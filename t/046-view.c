/* 046-view — JSON views: aggregates shape and units, gauges with bands and null-safe edges, round trip through instance_live. */
#include <string.h>

#include <json-c/json.h>

#include "metrics/view.h"
#include "lib/tap.h"

static const char *str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "(null)";
}

static int is_null(json_object *o, const char *k)
{
	json_object *v = NULL;

	return json_object_object_get_ex(o, k, &v) && v == NULL;
}

int main(void)
{
	struct shm_slot_data d, back;
	json_object *agg, *g, *arr, *cpu, *w, *parsed;

	memset(&d, 0, sizeof(d));
	agg = view_aggregates(&d);
	json_object_object_get_ex(agg, "cpu", &cpu);
	ok(is_null(cpu, "min") && is_null(cpu, "max") && is_null(cpu, "avg"), "no samples: nulls");
	is_str(str(cpu, "unit"), "millicores", "cpu unit");
	ok(is_null(agg, "last_sample_at_ms"), "no last sample");
	arr = view_gauges(agg, 100, 1000, 128, 512);
	is_int(json_object_array_length(arr), 6, "six gauges even without data");
	g = json_object_array_get_idx(arr, 0);
	ok(is_null(g, "value") && is_null(g, "percent") && is_null(g, "band"), "gauge without data: nulls");
	json_object_put(arr);
	json_object_put(agg);

	d.cpu.count = 4;
	d.cpu.min = 100;
	d.cpu.max = 900;
	d.cpu.sum = 2000;
	d.cpu.w_count = 2;
	d.cpu.w_min = 400;
	d.cpu.w_max = 900;
	d.cpu.w_avg = 650;
	d.mem.count = 4;
	d.mem.min = 90.04;
	d.mem.max = 480;
	d.mem.sum = 1000;
	d.last_sample_ms = 1732459812000LL;
	agg = view_aggregates(&d);
	is_str(json_object_to_json_string_ext(agg, JSON_C_TO_STRING_PLAIN),
	       "{\"sample_count\":4,\"last_sample_at_ms\":1732459812000,"
	       "\"cpu\":{\"unit\":\"millicores\",\"count\":4,\"min\":100.0,\"max\":900.0,\"avg\":500.0,"
	       "\"last_60s\":{\"count\":2,\"min\":400.0,\"max\":900.0,\"avg\":650.0}},"
	       "\"memory\":{\"unit\":\"MiB\",\"count\":4,\"min\":90.0,\"max\":480.0,\"avg\":250.0,"
	       "\"last_60s\":{\"count\":0,\"min\":null,\"max\":null,\"avg\":null}},"
	       "\"busy\":{\"count\":0,\"percentile\":10.0,\"cpu_m\":null,\"memory_mib\":null},"
	       "\"throttled_pct\":null}",
	       "aggregates JSON, one decimal (no busy samples, throttling unknown: null)");
	arr = view_gauges(agg, 250, 1000, 128, 512);
	g = json_object_array_get_idx(arr, 0);
	is_str(str(g, "resource"), "cpu", "gauge 0 cpu");
	is_str(str(g, "stat"), "max", "  max");
	is_str(str(g, "against"), "limit", "  against the limit");
	is_str(str(g, "percent"), "90.0", "  900/1000 = 90 %%");
	is_str(str(g, "band"), "over", "  band over");
	is_str(str(g, "colour"), "yellow", "  yellow");
	is_str(str(g, "text"), "900 / 1000 m", "  text x / y");
	g = json_object_array_get_idx(arr, 1);
	is_str(str(g, "against"), "request", "gauge 1 min against the request");
	is_str(str(g, "percent"), "40.0", "  100/250 = 40 %%");
	is_str(str(g, "band"), "under", "  under");
	g = json_object_array_get_idx(arr, 3);
	is_str(str(g, "percent"), "93.8", "memory max 480/512 = 93.8 %%");
	is_str(str(g, "band"), "critical", "  critical (>= 93)");
	is_str(str(g, "colour"), "red", "  red");
	is_str(str(g, "text"), "480 / 512 MiB", "  MiB text");
	json_object_put(arr);

	/* no limit known: value shown, no percent, no band */
	arr = view_gauges(agg, 0, 0, 0, 0);
	g = json_object_array_get_idx(arr, 0);
	ok(!is_null(g, "value") && is_null(g, "of") && is_null(g, "percent") && is_null(g, "band"),
	   "unknown limit: value without percent or band");
	is_str(str(g, "text"), "900 / - m", "  text");
	json_object_put(arr);
	arr = view_gauges(NULL, 1, 1, 1, 1);
	ok(arr && is_null(json_object_array_get_idx(arr, 5), "value"), "NULL aggregates give null gauges");
	json_object_put(arr);

	/* round trip through the instance_live text */
	parsed = json_tokener_parse(json_object_to_json_string(agg));
	memset(&back, 0, sizeof(back));
	is_int(view_aggregates_parse(parsed, &back), 0, "parse back");
	is_int(back.cpu.count, 4, "count back");
	is_dbl(back.cpu.max, 900, 1e-9, "max back");
	is_dbl(back.cpu.sum, 2000, 1e-9, "sum back from avg x count");
	is_int(back.cpu.w_count, 2, "window back");
	is_int(back.last_sample_ms, 1732459812000LL, "last sample back");
	is_int(view_aggregates_parse(NULL, &back), -1, "NULL -> -1");
	w = json_object_new_array();
	is_int(view_aggregates_parse(w, &back), -1, "not an object -> -1");
	json_object_put(w);
	w = json_tokener_parse("{\"cpu\":{\"count\":\"x\",\"max\":null}}");
	is_int(view_aggregates_parse(w, &back), 0, "odd types tolerated");
	is_int(back.cpu.count, 0, "  as empty");
	json_object_put(w);
	json_object_put(parsed);
	json_object_put(agg);

	{
		struct shm_sample s[2] = {{1000, 12.34, 56.78}, {2000, 0, 0}};
		json_object *a = view_samples(s, 2);

		is_str(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
		       "[{\"t_ms\":1000,\"cpu_m\":12.3,\"memory_mib\":56.8},{\"t_ms\":2000,\"cpu_m\":0.0,\"memory_mib\":0.0}]",
		       "samples JSON");
		json_object_put(a);
		a = view_samples(NULL, 0);
		is_str(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN), "[]", "no samples: []");
		json_object_put(a);
	}
	is_dbl(view_round1(1.0 / 0.0), 0, 0, "inf rounds to 0");
	return done_testing();
}
