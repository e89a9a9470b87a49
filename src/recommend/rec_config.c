/*
 * rec_config.c — the engine's settings from the configuration file
 * (recommend.*) with the node caps of this machine when not configured.
 *
 * Runs in: modelhub-fcgi workers and the janitor. Reads the configuration
 * already loaded by lib/config and the machine size (sysconf); no file, db
 * or shm access. Called by: fcgi/api_recommend.c, hubd/janitor.c.
 */
#include "recommend/recommend.h"
#include "lib/config.h"

#include <unistd.h>

void rec_config_read(struct rec_config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	rec_config_default(cfg);
	cfg->cpu_step_m = (int)cfg_int("recommend.cpu_step_m", cfg->cpu_step_m);
	cfg->mem_step_mib = (int)cfg_int("recommend.mem_step_mib", cfg->mem_step_mib);
	cfg->cpu_floor_m = (int)cfg_int("recommend.cpu_floor_m", cfg->cpu_floor_m);
	cfg->mem_floor_mib = (int)cfg_int("recommend.mem_floor_mib", cfg->mem_floor_mib);
	cfg->cpu_limit_floor_m = (int)cfg_int("recommend.cpu_limit_floor_m", cfg->cpu_limit_floor_m);
	cfg->mem_limit_floor_mib = (int)cfg_int("recommend.mem_limit_floor_mib",
						cfg->mem_limit_floor_mib);
	cfg->oom_factor = cfg_double("recommend.oom_factor", cfg->oom_factor);
	cfg->oom_min_step_mib = (int)cfg_int("recommend.oom_min_step_mib", cfg->oom_min_step_mib);
	cfg->oom_clear_runs = (int)cfg_int("recommend.oom_clear_runs", cfg->oom_clear_runs);
	cfg->throttle_binding_pct = cfg_double("recommend.throttle_binding_pct",
					       cfg->throttle_binding_pct);
	cfg->cpu_throttle_step = cfg_double("recommend.cpu_throttle_step", cfg->cpu_throttle_step);
	cfg->min_bucket_instances = (int)cfg_int("recommend.min_bucket_instances",
						 cfg->min_bucket_instances);
	/* Never recommend more than the largest node can give (the VPA's
	 * best-known failure). Local backend: this machine. */
	cfg->max_cpu_m = (int)cfg_int("recommend.max_cpu_m", cores > 0 ? cores * 1000 : 0);
	cfg->max_mem_mib = (int)cfg_int("recommend.max_mem_mib",
					pages > 0 && psz > 0 ? (long)((double)pages * psz / 1048576) : 0);
}
