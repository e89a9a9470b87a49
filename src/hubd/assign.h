/*
 * assign.h — deal models with queued work to runners, weighted by queue
 * depth (DESIGN.md §5 step 8).
 *
 * Runs in: the supervisor. Called by: supervisor.c on work_queued,
 * model_changed, a runner turning idle, and every 30 s. Pure: t/021-assign.c.
 */
#ifndef MH_ASSIGN_H
#define MH_ASSIGN_H

struct assign_model {
	int depth; /* queued requests (>= 1 for models with work) */
	int cap;   /* most runners worth giving it (max_instances); < 1 means 1 */
};

/* Fill out[r * nm + i] = 1 when runner r serves model i (nr * nm bytes).
 * busy[r] != 0 marks a runner in the middle of a request (may be NULL); new
 * work goes to idle runners first. Each runner gets at most maxper models.
 * Guarantees: every model gets at least one runner while nm <= nr * maxper
 * (deepest queues first otherwise); a model gets more than one runner only
 * when there are more runners than models, in proportion to depth, up to
 * its cap. Returns the number of models left without a runner (0). */
int assign_compute(const struct assign_model *m, int nm, const int *busy, int nr, int maxper,
		   unsigned char *out);

#endif
