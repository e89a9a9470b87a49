/*
 * db_lead.h — session-level advisory locks that elect one replica for a
 * singleton job (the janitor's sweeps, the kubelet scraping).
 *
 * Runs in: modelhubd children janitor and scraper. Called by: janitor.c,
 * scraper.c.
 * Shared state: the advisory lock on key, held by the caller's session;
 * a reconnect loses it (so the callers check every cycle).
 */
#ifndef MH_DB_LEAD_H
#define MH_DB_LEAD_H

#include <stdint.h>

#include "db/db.h"

/* Take the lock without waiting: 1 taken (or already held here), 0 held
 * by another session or error. */
int db_lead_try(struct db *db, int64_t key);
/* 1 this session holds the lock, 0 not or error. */
int db_lead_still(struct db *db, int64_t key);
/* Held already, else try to take it, in one statement: 1 held, 0 not. */
int db_lead_hold(struct db *db, int64_t key);

#endif
