/* Start-up steps that every Helvino service shares: settings and logging,
 * and signals delivered through a descriptor. */
#ifndef HV_SERVICE_H
#define HV_SERVICE_H

#include "hv_config.h"

/* Loads `settings` from the environment and the flags, then starts logging
 * as `component` at the level that the setting pointed to by `log_level`
 * names. Prints the usage and exits 0 for --help; prints the error and
 * exits 2 for a bad setting. */
void hv_service_configure(hv_setting *settings, size_t count, int argc, char **argv, const char *program,
                          const char *component, const char *const *log_level);

/* Logs the version and the effective settings, with secrets masked. */
void hv_service_log_start(const hv_setting *settings, size_t count, const char *program, const char *version);

/* Blocks SIGINT and SIGTERM in the calling thread (threads created later
 * inherit the mask), ignores SIGPIPE, and returns a non-blocking descriptor
 * that becomes readable when either signal arrives; -1 with errno set on
 * failure. */
int hv_service_signal_fd(void);

#endif
