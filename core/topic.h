/* topic.h: WebSocket fan-out by topic, a message framed once and shared by
 * every subscriber. Internal to core/. */
#ifndef GH_TOPIC_H
#define GH_TOPIC_H

#include "server.h"

struct gh_topics;

/* Creates srv->topics. Returns 0 or GH_ENOMEM. */
int gh_topics_new(gh_server *srv);
/* Frees srv->topics (NULL-safe). */
void gh_topics_free(gh_server *srv);

#endif
