// Part of glvnd_exit.sh: a library whose destructor calls a hook. Loaded after libEGL.so.1, it is
// finalized after it, so the hook runs once libEGL.so.1's destructor has run.
void (*late_hook)(void);

__attribute__((destructor)) static void late_fini(void) {
  if (late_hook) late_hook();
}
