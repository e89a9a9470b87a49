/* shm.c — placeholder */
#include "metrics/shm.h"
int shm_placeholder;
