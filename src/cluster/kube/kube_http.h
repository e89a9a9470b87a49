/*
 * kube_http.h — the Kubernetes API client of the kubernetes backend:
 * configuration, one-shot REST calls and streaming watches (libcurl +
 * json-c).
 *
 * Runs in: modelhubd children that talk to the API server (runners through
 * kube.c, the kubewatch child through kube_watch.c, the scraper through
 * kube_scrape.c and kube_nodes.c), modelhubctl (kubeconfig import).
 * Called by: kube.c, kube_watch.c, kube_nodes.c, kube_scrape.c.
 * Owns: one CURL easy handle per struct kube_http (reused, so calls keep
 * their TLS connection; with a perform hook one per call, freed at its
 * end), the bearer token in memory (zeroed on free).
 *
 * Configuration (lib/config.h keys, docs/internals.md):
 *   kube.server      API server URL; default in-cluster
 *                    https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
 *   kube.token       bearer token (explicit; wins over the file)
 *   kube.token_file  default /var/run/secrets/kubernetes.io/serviceaccount/token;
 *                    re-read whenever the file changes (projected tokens
 *                    rotate) and after a 401
 *   kube.ca_file     PEM bundle; default the service account's ca.crt when
 *                    it exists, else the system store
 *   kube.insecure    1 skips TLS verification (explicit only, default 0)
 *   kube.namespace   default: the service account's namespace file, else
 *                    "modelhub-models"
 * The token is never logged.
 */
#ifndef MH_KUBE_HTTP_H
#define MH_KUBE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

struct json_object;

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct kube_conf {
	char server[512];
	char token[4096];        /* explicit kube.token ("" when from the file) */
	char token_file[512];
	char ca_file[512];
	int insecure;
	char ns[128];
	char replica[128];       /* hub.replica_id (hostname by default) */
	int port_offset;         /* kube.port_offset: simulator without root */
};

/* Fill from lib/config and the in-cluster environment. 0, or -1 (logged)
 * when no server is known. */
int kube_conf_load(struct kube_conf *kc);

struct kube_http;

/* A client for kc (copied). NULL on allocation failure. */
struct kube_http *kube_http_new(const struct kube_conf *kc);
void kube_http_free(struct kube_http *h);
const struct kube_conf *kube_http_conf(const struct kube_http *h);

/* One call. method GET/POST/PUT/PATCH/DELETE; path starts with "/";
 * ctype names the body's type (NULL: application/json). The answer body is
 * appended to out (may be NULL). Returns the HTTP status, -1 on a
 * transport error (logged once per call) or KUBE_HTTP_TLS when the API
 * server's certificate did not verify (a configuration error: retrying
 * cannot help). A 401 re-reads the token file and retries once. */
#define KUBE_HTTP_TLS (-2)
long kube_http_call(struct kube_http *h, const char *method, const char *path, const char *ctype,
		    const char *body, struct buf *out, int timeout_ms);

/* What a caller should do about a call's outcome: KUBE_RETRY for what goes
 * away by itself (transport errors: timeouts, resets, refused; 429; 5xx),
 * KUBE_QUOTA for a 403 "exceeded quota"
 * (retried too, but it means no capacity), KUBE_FATAL for the rest of 4xx
 * (a bad manifest, missing permission) and for KUBE_HTTP_TLS. body may be
 * NULL. */
enum kube_fail { KUBE_FAIL_NONE = 0, KUBE_FAIL_RETRY, KUBE_FAIL_QUOTA, KUBE_FAIL_FATAL };
enum kube_fail kube_http_classify(long status, const char *body);

/* The Retry-After of the last call, in ms (0 when it had none). With a
 * perform hook, read it before anything that may let another call run. */
int64_t kube_http_retry_after_ms(struct kube_http *h);

/* Run kube_http_call's transfers through perform (an event loop's: it
 * returns the CURLcode of the easy handle it ran to its end, letting other
 * work run meanwhile; NULL: curl_easy_perform). Each call then has an easy
 * handle of its own, since several may be in flight at once; the loop's
 * multi handle keeps their connections. Watches and kube_http_easy are
 * not affected. */
typedef int (*kube_perform_fn)(void *ctx, void *easy);
void kube_http_set_perform(struct kube_http *h, kube_perform_fn fn, void *ctx);

/* GET path and parse the JSON answer; *status set. NULL unless 2xx + JSON
 * (json_object_put the result). */
struct json_object *kube_http_get_json(struct kube_http *h, const char *path, long *status,
				       int timeout_ms);

/* Watch stream: GET path, calling on_event for each JSON line (the parsed
 * {"type","object"} document, borrowed for the call) and on_tick about
 * once a second. Either callback returning non-zero ends the stream.
 * Returns the HTTP status when the server ended the stream, 0 when a
 * callback stopped it, -1 on a transport error (including idle_ms without
 * a byte: a silent, half-open connection). */
typedef int (*kube_event_fn)(struct json_object *ev, void *arg);
typedef int (*kube_tick_fn)(void *arg);
long kube_http_watch(struct kube_http *h, const char *path, kube_event_fn on_event,
		     kube_tick_fn on_tick, void *arg, int idle_ms);

/* For curl multi users (kube_nodes.c): a fresh easy handle set up for GET
 * path (URL, TLS, auth header, timeout), writing into out. *hdrs must be
 * freed with curl_slist_free_all after the transfer. NULL on failure. */
void *kube_http_easy(struct kube_http *h, const char *path, struct buf *out, void **hdrs,
		     int timeout_ms);

/* Percent-encode s for a query value into out (size n). */
void kube_http_escape(const char *s, char *out, size_t n);

/* The token file changed since it was read: re-read (tests, rotation). */
int kube_http_token_refresh(struct kube_http *h);

#endif
