/*
 * clock.h — the clocks every process reads: monotonic for timeouts,
 * periods and back-off, wall (UTC since the epoch) for what is stored or
 * shown.
 *
 * Runs in: every process. Called by: the supervisors, the FastCGI worker,
 * the hubd children, the backends, the metrics code and t/051-clock.
 * Owns: nothing.
 *
 * NOTES: CLOCK_MONOTONIC cannot fail for a valid clock id on Linux, so the
 * helpers return the value without an error path. Monotonic values are
 * only meaningful as differences inside one boot; never store them in
 * Postgres or compare them across machines (the shared-memory heartbeat
 * words are read on the same machine, so they may hold them).
 */
#ifndef MH_CLOCK_H
#define MH_CLOCK_H

#include <stdint.h>

/* Monotonic clock in milliseconds / microseconds. */
int64_t mh_mono_ms(void);
int64_t mh_mono_us(void);
/* Wall clock (CLOCK_REALTIME) in milliseconds since the Unix epoch. */
int64_t mh_wall_ms(void);

#endif
