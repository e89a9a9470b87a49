/* local.c — placeholder */
#include "cluster/cluster.h"
int cluster_local_placeholder;
