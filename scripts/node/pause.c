/*
 * The pod sandbox's process for the local node (scripts/cluster.sh up --node):
 * it holds the pod's namespaces open, reaps the zombies it inherits as PID 1,
 * and exits on SIGINT or SIGTERM. Built statically by scripts/build-images.sh
 * into the image `trunkline.local/pause`, because no image can be pulled here.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  struct sigaction on_stop, on_child;
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts("trunkline pause");
    return 0;
  }
  if (getpid() != 1) {
    fprintf(stderr, "pause: warning: not PID 1, zombies are not mine to reap\n");
  }
  memset(&on_stop, 0, sizeof(on_stop));
  on_stop.sa_handler = stop;
  memset(&on_child, 0, sizeof(on_child));
  on_child.sa_handler = reap;
  on_child.sa_flags = SA_NOCLDSTOP;
  if (sigaction(SIGINT, &on_stop, NULL) < 0 || sigaction(SIGTERM, &on_stop, NULL) < 0 ||
      sigaction(SIGCHLD, &on_child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) {
    pause();
  }
}
