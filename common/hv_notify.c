#include "hv_notify.h"

#include "hv_log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

/* Sends one notification. A failure is logged: a service that cannot
 * reach the manager is restarted for missing its readiness or its
 * watchdog, and the log line explains the restart. */
static void send_state(const char *state)
{
    int status = sd_notify(0, state);
    if (status < 0)
        HV_WARN("notifying the service manager failed", HV_STR("err", strerror(-status)));
}

static void send_with_status(const char *first, const char *status)
{
    char state[512];
    snprintf(state, sizeof(state), "%s%sSTATUS=%s", first, first[0] ? "\n" : "", status);
    send_state(state);
}

void hv_notify_ready(const char *status)
{
    send_with_status("READY=1", status);
}

void hv_notify_status(const char *status)
{
    send_with_status("", status);
}

void hv_notify_stopping(const char *status)
{
    send_with_status("STOPPING=1", status);
}

int64_t hv_notify_watchdog_interval_ms(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    int64_t half_ms = (int64_t)(usec / 2000);
    return half_ms > 0 ? half_ms : 1;
}

void hv_notify_watchdog(const char *status)
{
    if (status)
        send_with_status("WATCHDOG=1", status);
    else
        send_state("WATCHDOG=1");
}
