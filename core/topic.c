/* topic.c: placeholder until topics land. */
#include "topic.h"

int gh_topics_new(gh_server *srv)
{
    (void)srv;
    return 0;
}

void gh_topics_free(gh_server *srv)
{
    (void)srv;
}
