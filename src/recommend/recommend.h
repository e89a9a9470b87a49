/* recommend.h — placeholder */
#ifndef MH_RECOMMEND_H
#define MH_RECOMMEND_H
#endif
