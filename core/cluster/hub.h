/* hub.h: topics and topic state across the workers of one process.
 *
 * With workers: N > 1 each worker's topics and topic state get the hub as
 * their bus (the seams topic.h and tstate.h give the Redis bus): a publish
 * on any worker goes through the hub, which hands the message to every
 * worker with a subscriber of the topic, and the whole topic state
 * (members in join order, the log) lives here, once for the process.
 * Nothing goes through Redis for this; with a bus: the process's one bus
 * serves every worker through the hub (gh_hub_bus_new).
 *
 * Order: each topic's messages, member announcements, log entries and
 * state answers are put in the workers' mailboxes under the topic's lock,
 * and a mailbox is first in first out, so every worker sees one order per
 * topic, and a join's state answer arrives after exactly the messages that
 * are in the state (the held subscription drops them) and before those
 * that are not.
 *
 * The publisher's own worker delivers at once, in the publishing call,
 * when nothing of the topic waits in its mailbox (no message sequenced
 * before, no state answer): then its clients see their own messages before
 * anything sent to them after, as with one worker, and the order is still
 * the topic's (everything sequenced before has been delivered there).
 * Otherwise its copy goes through its mailbox like the others'.
 *
 * Costs: one lock (striped by topic) and one copy of the payload per
 * publish, one mailbox entry per other worker with subscribers (one
 * wake-up per batch) and a lock to count it delivered, never a lock per
 * delivery. Each worker frames the message once for all its subscribers.
 * Internal to core/. */
#ifndef GH_HUB_H
#define GH_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "loop.h"

typedef struct gh_hub gh_hub;

/* Creates the hub of the n loops (every worker's, whose topics and topic
 * state exist) and installs it as their topics' and topic state's bus.
 * Before the workers run. Returns 0 or GH_ENOMEM. */
int gh_hub_new(gh_loop **loops, unsigned n, gh_hub **out);

/* The bytes of topic messages one worker may have waiting (posted by the
 * others, not yet delivered) before a publish that adds to them pauses the
 * publishing connection (loop->hub_congested; wsconn.c); reading resumes
 * on every worker once it is down to a quarter. worker_backlog, 32 MiB
 * until set; any thread. */
void gh_hub_set_backlog(gh_hub *h, uint64_t bytes);

/* One topic as the whole process has it (the status page's rooms). */
typedef struct gh_hub_topic {
    const char *ns;             /* the namespace (plugin), NUL-terminated */
    const char *name;           /* len bytes */
    size_t      len;
    uint64_t    subscribers;    /* on every worker */
    size_t      members;        /* in its topic state */
    uint64_t    messages;       /* published to it while it had a subscriber,
                                   since the hub has had it */
} gh_hub_topic;

/* Calls fn for every topic that some worker subscribes to, in no
 * particular order, from any thread. It holds each stripe's lock while
 * it calls fn for that stripe's topics (publishes to them wait): fn must
 * be quick, must not call into the hub nor post, publish or subscribe,
 * and must copy what it keeps of the strings. The subscriber counts are
 * each worker's as it last stored them (topic.h, count_at). */
void gh_hub_each(gh_hub *h, void (*fn)(void *arg, const gh_hub_topic *t), void *arg);

/* With a bus: section: the process's one bus (bus.h), on worker 0's
 * loop, serving every worker through the hub. From then on what the
 * workers publish, their members and their requests go to Redis through
 * it, and what comes back from Redis (this process's messages too, so
 * that every instance sees one order) is handed to the workers by the
 * hub. On worker 0, once the workers' topics exist. Returns as
 * gh_bus_new(); *out is freed with gh_hub_bus_free(). */
int gh_hub_bus_new(gh_hub *h, const gh_bus_conf *conf, gh_bus **out);

/* Frees b (from gh_hub_bus_new; NULL-safe): topics span the workers in
 * the process only again. On worker 0, before gh_hub_free(). */
void gh_hub_bus_free(gh_hub *h, gh_bus *b);

/* Uninstalls it and frees it (NULL-safe). Once no worker runs; what the
 * hub put in mailboxes refers to nothing of it. */
void gh_hub_free(gh_hub *h);

#endif
