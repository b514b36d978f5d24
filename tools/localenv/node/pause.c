/*
 * The sandbox process of every pod on the real node: it holds the pod's namespaces
 * open, reaps the zombies of processes that share its PID namespace, and exits
 * when told to stop. Built statically, so its image is this one file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void reap(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv)
{
    struct sigaction on_stop, on_child;

    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("datastore-kubernetes pause");
        return 0;
    }
    if (getpid() != 1) {
        fputs("pause: warning: not running as PID 1\n", stderr);
    }
    memset(&on_stop, 0, sizeof(on_stop));
    on_stop.sa_handler = stop;
    sigaction(SIGINT, &on_stop, NULL);
    sigaction(SIGTERM, &on_stop, NULL);
    memset(&on_child, 0, sizeof(on_child));
    on_child.sa_handler = reap;
    on_child.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &on_child, NULL);
    for (;;) {
        pause();
    }
    return 1;
}
