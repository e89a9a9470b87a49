/*
 * sup.h — the supervisor core shared by modelhubd (hubd/supervisor.c) and
 * the modelhub-fcgi master (fcgi/main.c): a role table, a fixed slot
 * table, fork / reap / back-off, heartbeats, leadership gating and the
 * signal flags of the supervising loop.
 *
 * Runs in: the modelhubd supervisor and the modelhub-fcgi master; the
 * child side (sup_child_beat, sup_child_set_leader, sup_slot_info) in
 * their children. Called by: hubd/supervisor.c, hubd/hubd_child.c,
 * hubd/dealer.c, fcgi/main.c.
 * Owns: the slot table (heap, supervisor only) and one anonymous
 * MAP_SHARED mapping made before the first fork (struct sup_pub per slot
 * plus the leadership word), which every child inherits.
 * Shared state: sup_pub.pid/restarts/crashes/errors/started_ms are written
 * by the supervisor only, heartbeat_ms by the slot's child only, the
 * leadership word by the one child whose role has SUP_ELECTOR (and cleared
 * by the supervisor when that child exits); all atomics, no locks.
 *
 * DESIGN (after the PostgreSQL postmaster's pmchild.c)
 * - A program declares its roles as a table of struct sup_role (name,
 *   restart policy, flags) next to its own entry functions, adds one slot
 *   per child it wants and runs a loop of sup_tick() + sup_wait(). The core
 *   never looks at role names: roles are table entries, not strings.
 * - Exit status, per the house rule (STYLE 4): 0 = asked to stop or done
 *   (SUP_EXIT_CLEAN), 1 = orderly fatal error (SUP_EXIT_ERROR), anything
 *   else, a signal included, is a crash (SUP_EXIT_CRASH). Each has its own
 *   restart rule in the role's policy; crashes and errors are counted.
 * - One back-off formula for every role (sup_backoff_ms): after a life of
 *   at least stable_ms the delay is `first_ms`; after the n-th short life
 *   in a row it is min_ms << (n-1), capped at max_ms.
 * - Nothing here blocks except the sleep in sup_wait(): the loop that
 *   reaps and restarts children never waits on a database or a network.
 * - Leadership: roles flagged SUP_LEADER_ONLY run only while the leadership
 *   word is set. A child of a SUP_ELECTOR role decides leadership however
 *   it likes (today the janitor's lease row, db_lead.h) and publishes it
 *   with sup_child_set_leader(), with the lease's fencing token beside it
 *   (sup_child_leader_token() reads it in any child, for the leader-only
 *   writes); when the elector exits the word is cleared and the
 *   leader-only children get SIGTERM.
 */
#ifndef MH_SUP_H
#define MH_SUP_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* How a child ended (see DESIGN). */
enum sup_exit {
	SUP_EXIT_CLEAN,
	SUP_EXIT_ERROR,
	SUP_EXIT_CRASH,
};

/* Delay before a restart: first_ms after a long life, else min_ms doubled
 * per short life in a row, at most max_ms. */
struct sup_backoff {
	int64_t first_ms;
	int64_t min_ms;
	int64_t max_ms;
};

#define SUP_STAY_DOWN (-1) /* clean_ms: a clean exit is not restarted */

struct sup_policy {
	struct sup_backoff crash;   /* signal or status other than 0 and 1 */
	struct sup_backoff error;   /* exit 1 */
	int64_t clean_ms;           /* exit 0 outside a shutdown, or SUP_STAY_DOWN */
	int64_t stable_ms;          /* a life this long resets the back-off */
};

#define SUP_HEARTBEAT 0x1u   /* SIGKILLed when silent for longer than hung_ms */
#define SUP_LEADER_ONLY 0x2u /* runs only while this replica leads */
#define SUP_ELECTOR 0x4u     /* its child publishes leadership */

struct sup_role {
	const char *name;             /* "runner", "janitor", "worker": logs, titles */
	const struct sup_policy *policy;
	unsigned flags;
};

/* The shared, read-mostly view of one slot (see Shared state). */
struct sup_pub {
	_Atomic int32_t pid;          /* 0 while not running */
	_Atomic uint32_t restarts;
	_Atomic uint32_t crashes;
	_Atomic uint32_t errors;
	_Atomic int64_t started_ms;   /* mh_mono_ms() */
	_Atomic int64_t heartbeat_ms; /* mh_mono_ms() */
};

struct sup;

/* Child side of a fork: runs in the child with the core's signals still
 * blocked and PR_SET_PDEATHSIG armed; returns the exit status. */
typedef int (*sup_run_fn)(struct sup *s, int slot, void *arg);
/* Supervisor side, after a start (pid set) and after a reap. */
typedef void (*sup_start_fn)(struct sup *s, int slot, void *arg);
typedef void (*sup_exit_fn)(struct sup *s, int slot, enum sup_exit how, void *arg);

/* who: the log prefix ("supervisor", "fcgi"); cap: most slots at once.
 * NULL on out of memory. */
struct sup *sup_new(const char *who, int cap, sup_run_fn run, void *arg);
void sup_free(struct sup *s);
void sup_on_start(struct sup *s, sup_start_fn fn);
void sup_on_exit(struct sup *s, sup_exit_fn fn);
/* Heartbeat limit for SUP_HEARTBEAT roles; <= 0 disables the check. */
void sup_set_hung_ms(struct sup *s, int64_t ms);

/* A slot for `role` (index: its number within the role, e.g. runner 2),
 * started by the next sup_tick(). Returns the slot or -1 when full. */
int sup_add(struct sup *s, const struct sup_role *role, int index);
/* Stop restarting the slot, SIGTERM its child; the slot is freed when the
 * child has been reaped. */
void sup_retire(struct sup *s, int slot);

/* Reap, apply the policies, gate leader-only roles, kill hung children,
 * start what is due. Returns the ms until something is due (<= max_ms). */
int64_t sup_tick(struct sup *s, int64_t max_ms);
/* SIGTERM everyone, wait up to timeout_ms, SIGKILL the rest, reap all. */
void sup_stop(struct sup *s, int64_t timeout_ms);
/* Signal the running children of a role (NULL: every child). */
void sup_signal(struct sup *s, const struct sup_role *role, int sig);
/* Signal one slot's child if it runs. */
void sup_signal_slot(struct sup *s, int slot, int sig);

/* Slot table, read by the supervisor and (through the inherited copy and
 * the shared sup_pub) by children: -1 past the end. */
int sup_nslots(const struct sup *s);
const struct sup_role *sup_slot_role(const struct sup *s, int slot);
int sup_slot_index(const struct sup *s, int slot);
const struct sup_pub *sup_slot_pub(const struct sup *s, int slot);
int sup_is_leader(const struct sup *s);

/* The one back-off formula (see DESIGN); fails = short lives in a row. */
int64_t sup_backoff_ms(const struct sup_backoff *b, int fails);
/* Classify a waitpid() status. */
enum sup_exit sup_classify(int status);

/* Loop signals: handlers only set flags. sup_signals_init() installs them
 * for SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, blocks them and
 * ignores SIGPIPE; sup_wait() sleeps up to ms in ppoll() with them
 * unblocked (fd >= 0 is polled for input) and returns the signals taken
 * since the last call as a mask of SUP_SIG_* bits. */
#define SUP_SIG_CHLD 0x01u
#define SUP_SIG_TERM 0x02u  /* SIGTERM or SIGINT */
#define SUP_SIG_HUP 0x04u
#define SUP_SIG_USR1 0x08u
#define SUP_SIG_USR2 0x10u
#define SUP_SIG_FD 0x100u   /* fd readable */
void sup_signals_init(void);
unsigned sup_wait(int fd, int64_t ms);

/* In a child: beat this child's heartbeat word. */
void sup_child_beat(void);
/* In a child of a SUP_ELECTOR role: publish whether this replica leads,
 * and the fencing token of its leadership (0 when not leading). */
void sup_child_set_leader(int leader);
void sup_child_set_token(int64_t token, int64_t until_ms);
/* In any child: the published token while this replica leads and before
 * until_ms (mh_mono_ms(): the lease's expiry as the elector last saw it
 * renewed, so a replica that was frozen sees 0 on waking), else 0. */
int64_t sup_child_leader_token(void);

#endif
