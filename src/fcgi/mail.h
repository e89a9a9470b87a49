/*
 * mail.h — send one plain-text email over SMTP with libcurl (password
 * reset links).
 *
 * Runs in: modelhub-fcgi workers. Called by: api_account.c.
 * Owns: one curl easy handle per call, cleaned up before returning.
 * Config: mail.smtp_url (smtp:// or smtps://host:port; empty = no email),
 * mail.from, mail.username and mail.password (optional SMTP AUTH),
 * mail.timeout_seconds (default 10: the worker waits that long at most).
 */
#ifndef MH_MAIL_H
#define MH_MAIL_H

/* 1 when mail.smtp_url and mail.from are configured. */
int mail_enabled(void);
/* Send subject/body to one address. 0 sent (accepted by the server), -1
 * failed (logged, never with the body: it holds a secret link). */
int mail_send(const char *to, const char *subject, const char *body);

#endif
