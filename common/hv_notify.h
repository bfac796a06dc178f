/* The service manager protocol of systemd (sd_notify): readiness, status,
 * stopping and watchdog pings. Without NOTIFY_SOCKET in the environment,
 * as when a service runs by hand, every call does nothing. */
#ifndef HV_NOTIFY_H
#define HV_NOTIFY_H

#include <stdint.h>

/* Tells the service manager that the service serves now: READY=1, with a
 * STATUS= line. */
void hv_notify_ready(const char *status);

/* Updates the STATUS= line that `systemctl status` shows. */
void hv_notify_status(const char *status);

/* Tells the service manager that the service is shutting down. */
void hv_notify_stopping(const char *status);

/* Returns how often the service must send a watchdog ping, in
 * milliseconds: half of WATCHDOG_USEC, or 0 when no watchdog is set for
 * this process. */
int64_t hv_notify_watchdog_interval_ms(void);

/* Sends one watchdog ping (WATCHDOG=1) with a fresh STATUS= line, or none
 * when `status` is NULL. Call it from the service's event loop, so that a
 * loop that hangs stops the pings. */
void hv_notify_watchdog(const char *status);

#endif
