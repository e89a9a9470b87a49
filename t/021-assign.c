/* 021-assign.c — unit test of the weighted model-to-runner assignment (hubd/assign.c). */
#include "hubd/assign.h"
#include "t/lib/tap.h"

static int runners_of(const unsigned char *out, int nm, int nr, int i)
{
	int n = 0;

	for (int r = 0; r < nr; r++)
		n += out[r * nm + i];
	return n;
}

static int models_of(const unsigned char *out, int nm, int r)
{
	int n = 0;

	for (int i = 0; i < nm; i++)
		n += out[r * nm + i];
	return n;
}

int main(void)
{
	unsigned char out[64 * 64];

	{
		struct assign_model m[1] = {{10, 4}};
		is_int(assign_compute(m, 1, NULL, 4, 8, out), 0, "one model, four runners: assigned");
		is_int(runners_of(out, 1, 4, 0), 4, "deep queue with cap 4 gets all 4 runners");
	}
	{
		struct assign_model m[1] = {{10, 2}};
		assign_compute(m, 1, NULL, 4, 8, out);
		is_int(runners_of(out, 1, 4, 0), 2, "cap (max_instances) limits runners per model");
	}
	{
		struct assign_model m[1] = {{1, 5}};
		assign_compute(m, 1, NULL, 4, 8, out);
		is_int(runners_of(out, 1, 4, 0), 1, "one queued request needs one runner");
	}
	{
		/* 2 runners, 5 models: every model served, load balanced */
		struct assign_model m[5] = {{100, 2}, {1, 2}, {1, 2}, {1, 2}, {50, 2}};
		int all = 1;
		is_int(assign_compute(m, 5, NULL, 2, 8, out), 0, "5 models on 2 runners: none left");
		for (int i = 0; i < 5; i++)
			all &= runners_of(out, 5, 2, i) == 1;
		ok(all, "each model has exactly one runner");
		ok(out[0 * 5 + 0] != out[0 * 5 + 4], "the two deepest queues are on different runners");
	}
	{
		/* weighting: 3 models, 8 runners, depths 60/30/10, caps 8 */
		struct assign_model m[3] = {{60, 8}, {30, 8}, {10, 8}};
		assign_compute(m, 3, NULL, 8, 8, out);
		int a = runners_of(out, 3, 8, 0), b = runners_of(out, 3, 8, 1), c = runners_of(out, 3, 8, 2);
		ok(a >= b && b >= c && c >= 1, "runners follow depth (%d/%d/%d)", a, b, c);
		is_int(a + b + c, 8, "every runner used");
		int each = 1;
		for (int r = 0; r < 8; r++)
			each &= models_of(out, 3, r) == 1;
		ok(each, "no runner holds two models while others would hold none");
	}
	{
		/* busy runners: new model goes to the idle one */
		struct assign_model m[2] = {{5, 1}, {3, 1}};
		int busy[3] = {1, 0, 1};
		assign_compute(m, 2, busy, 3, 8, out);
		is_int(out[1 * 2 + 0], 1, "deepest model lands on the idle runner");
		is_int(runners_of(out, 2, 3, 1), 1, "second model still gets a runner");
	}
	{
		/* more models than slots: deepest first, the rest reported */
		struct assign_model m[5] = {{1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}};
		is_int(assign_compute(m, 5, NULL, 2, 2, out), 1, "5 models, 2 runners x 2 slots: 1 left");
		is_int(runners_of(out, 5, 2, 0), 0, "the shallowest queue is the one left");
	}
	{
		is_int(assign_compute(NULL, 0, NULL, 3, 8, out), 0, "no models: nothing to do");
	}
	{
		/* many models, many runners: every model served, no runner over maxper */
		struct assign_model m[40];
		int ok_all = 1;
		for (int i = 0; i < 40; i++) {
			m[i].depth = (i * 37) % 11 + 1;
			m[i].cap = i % 3 + 1;
		}
		is_int(assign_compute(m, 40, NULL, 6, 8, out), 0, "40 models on 6 runners x 8 slots");
		for (int i = 0; i < 40; i++)
			ok_all &= runners_of(out, 40, 6, i) >= 1;
		for (int r = 0; r < 6; r++)
			ok_all &= models_of(out, 40, r) <= 8;
		ok(ok_all, "every model has a runner and no runner exceeds its slots");
	}
	return done_testing();
}
