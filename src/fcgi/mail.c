/*
 * mail.c — implementation of mail.h: one SMTP transaction per call.
 *
 * Runs in: modelhub-fcgi workers. Called by: api_account.c (forgot
 * password). Owns: the curl easy handle and the message buffer of one call.
 *
 * DESIGN: libcurl already speaks SMTP (and STARTTLS with smtp:// plus
 * CURLOPT_USE_SSL try), so no mail library is added. The message is built
 * here with the headers a mail server expects (Date, From, To, Subject,
 * Message-ID); header values come from config and a validated address,
 * and CR/LF are refused in them so nothing can inject headers. The call
 * blocks the worker for at most mail.timeout_seconds; forgot-password is
 * rate-limited per address and per account, so a flood cannot pin the
 * pool.
 */
#include "fcgi/mail.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct reader {
	const char *p;
	size_t left;
};

static size_t read_cb(char *dst, size_t size, size_t n, void *ud)
{
	struct reader *rd = ud;
	size_t k = size * n < rd->left ? size * n : rd->left;

	memcpy(dst, rd->p, k);
	rd->p += k;
	rd->left -= k;
	return k;
}

int mail_enabled(void)
{
	const char *url = cfg_str("mail.smtp_url", "");
	const char *from = cfg_str("mail.from", "");

	return url && *url && from && *from;
}

static int header_safe(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

/* The RFC 5322 message; -1 when a header value is unsafe. */
static int build(struct buf *m, const char *from, const char *to, const char *subject,
		 const char *body)
{
	char date[64], id[33];
	unsigned char rnd[16];
	time_t now = time(NULL);
	struct tm tm;

	if (!header_safe(from) || !header_safe(to) || !header_safe(subject))
		return -1;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	randombytes_buf(rnd, sizeof rnd);
	sodium_bin2hex(id, sizeof id, rnd, sizeof rnd);
	buf_printf(m, "Date: %s\r\nFrom: %s\r\nTo: <%s>\r\nSubject: %s\r\n"
		   "Message-ID: <%s@modelhub>\r\nMIME-Version: 1.0\r\n"
		   "Content-Type: text/plain; charset=utf-8\r\n\r\n", date, from, to, subject, id);
	/* body lines end in CRLF; a line that is only "." is stuffed by libcurl */
	for (const char *p = body; *p; p++) {
		if (*p == '\n' && (p == body || p[-1] != '\r'))
			buf_add(m, "\r", 1);
		buf_add(m, p, 1);
	}
	buf_adds(m, "\r\n");
	return m->oom ? -1 : 0;
}

int mail_send(const char *to, const char *subject, const char *body)
{
	const char *from = cfg_str("mail.from", ""), *user = cfg_str("mail.username", "");
	struct buf m = BUF_INIT;
	struct curl_slist *rcpt = NULL;
	struct reader rd;
	char addr[400];
	CURL *c = NULL;
	CURLcode cc = CURLE_FAILED_INIT;
	int rc = -1;

	if (!mail_enabled() || build(&m, from, to, subject, body) < 0)
		goto out;
	snprintf(addr, sizeof addr, "<%s>", to);
	if (!(c = curl_easy_init()) || !(rcpt = curl_slist_append(NULL, addr)))
		goto out;
	rd.p = m.data;
	rd.left = m.len;
	curl_easy_setopt(c, CURLOPT_URL, cfg_str("mail.smtp_url", ""));
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &rd);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, cfg_int("mail.timeout_seconds", 10));
	if (user && *user) {
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, cfg_str("mail.password", ""));
	}
	cc = curl_easy_perform(c);
	rc = cc == CURLE_OK ? 0 : -1;
out:
	if (rc < 0)
		log_warn_x("mail msg=\"could not send\" error=\"%s\"", curl_easy_strerror(cc));
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	sodium_memzero(m.data ? m.data : addr, m.data ? m.len : 0);
	buf_free(&m);
	return rc;
}
