// Minimal reproducer of the exit abort without Deno or wgpu (results/exit_soak.md), run by glvnd_exit.sh.
// libglvnd 1.6.0's libEGL.so.1 gives each thread that makes an EGL call a state block, freed by a
// thread-exit destructor; its library destructor frees every thread's block and leaves that thread-exit
// destructor armed. A thread that ends after it (here: ended from a library finalized after libEGL.so.1;
// in Deno: the worker threads that ran test files, woken as the process exits) frees its block again.
// `./glvnd_exit skip` registers on_exit(_exit) first, as lib/gpu/backend.ts does: no destructor runs.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int ready = 0, leave = 0;
static pthread_t thread;

static void *thread_main(void *bind_api) {
  // eglBindAPI(EGL_OPENGL_API): any EGL call that sets this thread's state allocates its block.
  ((unsigned (*)(unsigned))bind_api)(0x30A2);
  pthread_mutex_lock(&lock);
  ready = 1;
  pthread_cond_broadcast(&changed);
  while (!leave) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
  return NULL; // thread exit: libEGL's thread-exit destructor frees the block
}

static void end_thread(void) {
  pthread_mutex_lock(&lock);
  leave = 1;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
  pthread_join(thread, NULL);
}

int main(int argc, char **argv) {
  void *egl = dlopen("libEGL.so.1", RTLD_NOW);
  if (!egl) {
    fprintf(stderr, "%s\n", dlerror());
    return 2;
  }
  void *bind_api = dlsym(egl, "eglBindAPI");
  // An EGL call on the main thread too: without it the second free does not happen in this program (why
  // was not pinned down; in Deno several threads make EGL calls).
  ((unsigned (*)(unsigned))bind_api)(0x30A2);
  pthread_create(&thread, NULL, thread_main, bind_api);
  pthread_mutex_lock(&lock);
  while (!ready) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
  void *late = dlopen(argc > 2 ? argv[2] : "./glvnd_late.so", RTLD_NOW);
  if (!late) {
    fprintf(stderr, "%s\n", dlerror());
    return 2;
  }
  *(void (**)(void))dlsym(late, "late_hook") = end_thread;
  if (argc > 1 && strcmp(argv[1], "skip") == 0) on_exit((void (*)(int, void *))_exit, NULL);
  return 0; // exit(0): libEGL.so.1's destructor, then glvnd_late.so's, which ends the thread
}
