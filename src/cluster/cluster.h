/* cluster.h — placeholder */
#ifndef MH_CLUSTER_H
#define MH_CLUSTER_H
#endif
