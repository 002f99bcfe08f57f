/* The pod sandbox ("pause") process of the local real node (hack/cluster.sh up --real).
 *
 * It holds the pod's namespaces open and, as PID 1 of a pod with a shared process namespace, reaps
 * orphaned children. It exits on SIGINT/SIGTERM. Compiled static (gcc -static) so its image needs no
 * libraries; hack/images.sh packages it. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    return 1;
  }
  for (;;) {
    pause();
  }
}
