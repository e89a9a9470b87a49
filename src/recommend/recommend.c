/* recommend.c — placeholder */
#include "recommend/recommend.h"
int recommend_placeholder;
