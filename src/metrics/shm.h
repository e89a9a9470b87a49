/* shm.h — placeholder */
#ifndef MH_SHM_H
#define MH_SHM_H
#endif
