/*
 * hubd.h — what every modelhubd child role may use from the supervisor.
 *
 * Runs in: modelhubd children. Each role is one `<role>_main()` in its own
 * file (dealer.c, runner.c, janitor.c, scraper.c, monitor.c, kubewatch.c,
 * autoscaler.c),
 * listed in the role table of supervisor.c and called after fork with
 * signals reset, its process title set, PR_SET_PDEATHSIG armed and
 * log_init(role) done.
 * A role returns 0 when asked to stop, 1 on an orderly fatal error; the
 * role's policy (supervisor.c) decides the restart for each, and for a
 * crash.
 */
#ifndef MH_HUBD_H
#define MH_HUBD_H

#include <stdint.h>

#include "db/db.h"

struct metrics_seg; /* metrics/shm.h */
struct sup;         /* lib/sup.h */

struct hubd_child {
	const struct sup *sup;  /* the supervisor's slot table (inherited copy) */
	int index;              /* slot in the supervisor's child table */
	int role_index;         /* e.g. runner number 0..N-1 */
	const char *role;       /* "runner", "janitor", "scraper", "monitor", ... */
	const char *replica_id;
	struct db *db;          /* this child's own connection (not yet connected) */
	struct metrics_seg *seg;/* the metrics segment, attached read-write */
	int events_fd;          /* kubeevents -> kubewatch stream: this child's end, else -1 */
};

/* Set by SIGTERM in the child; roles poll it between units of work. */
int hubd_should_stop(void);
/* 1 once after SIGHUP was received (config already reloaded). */
int hubd_take_reload(void);
/* Tell the supervisor this child is alive; call at least every 10 s. */
void hubd_heartbeat(struct hubd_child *c);
/* Sleep up to ms, waking early on stop or when fd (if >= 0) is readable.
 * Returns 1 if fd readable, 2 when poked (SIGUSR1), 0 on timeout, -1 when
 * asked to stop. */
int hubd_wait(struct hubd_child *c, int fd, int ms);
/* poll(2) on fds for up to ms with SIGTERM/SIGHUP/SIGUSR1 able to wake it
 * (no lost wake-up, as hubd_wait); does not sleep when one is already
 * pending. Returns poll's count (0 on timeout or a signal), -1 when asked
 * to stop. */
struct pollfd;
int hubd_poll(struct hubd_child *c, struct pollfd *fds, int n, int ms);
/* 1 once after SIGUSR1 (a poke: the model list changed). */
int hubd_take_poke(void);
/* 1 while a SIGHUP waits for hubd_take_reload. */
int hubd_reload_pending(void);
/* The elector role (the janitor) publishes whether this replica leads and
 * the fencing token of the hub lease it holds (db_lead.h); the supervisor
 * starts leader-only roles only while it does. */
void hubd_set_leader(int leader, int64_t token, int64_t until_ms);
/* In any child: the hub lease token while this replica leads and its lease
 * (as last renewed, until_ms on mh_mono_ms) has not run out, else 0.
 * Leader-only writes pass it to their db_ function, which checks it in the
 * statement (DB_LEASE_FENCE); 0 never matches a lease. */
int64_t hubd_leader_token(void);

/* alive.c: the supervisor's heartbeat file <hub.var_dir>/modelhubd.alive
 * (modelhubctl alive); beat once per loop, remove at a clean stop. */
void hubd_alive_beat(void);
void hubd_alive_stop(void);

int dealer_main(struct hubd_child *c);
int runner_main(struct hubd_child *c);
int janitor_main(struct hubd_child *c);
int scraper_main(struct hubd_child *c);
int monitor_main(struct hubd_child *c);
int kubewatch_main(struct hubd_child *c);
int kubeevents_main(struct hubd_child *c);
int autoscaler_main(struct hubd_child *c);

#endif
