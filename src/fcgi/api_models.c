/*
 * api_models.c — the model catalogue API (work in progress).
 * Runs in: modelhub-fcgi workers. Called by: the router.
 */
#include "fcgi/api.h"

const struct api_route api_models_routes[] = {{0}};
