/*
 * worker.h — the FastCGI worker process of modelhub-fcgi.
 *
 * Runs in: modelhub-fcgi workers. Called by: main.c right after fork().
 */
#ifndef MH_FCGI_WORKER_H
#define MH_FCGI_WORKER_H

/* Serve requests on listen_fd until SIGTERM (finishing the request in
 * flight) or a fatal error. index is the worker's slot (for logs).
 * Returns the process exit status: 0 when asked to stop, 1 on error. */
int worker_main(int listen_fd, int index);

#endif
