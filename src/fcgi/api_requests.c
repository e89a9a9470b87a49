/*
 * api_requests.c — placeholder route table (filled in by its issue).
 * Runs in: modelhub-fcgi workers. Called by: the router.
 */
#include "fcgi/api.h"

const struct api_route api_requests_routes[] = {{0}};
