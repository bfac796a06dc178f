/* Start-up steps that every Helvino service shares. */
#include "hv_service.h"
#include "hv_log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>

void hv_service_configure(hv_setting *settings, size_t count, int argc, char **argv, const char *program,
                          const char *component, const char *const *log_level)
{
    char error[256];
    int loaded = hv_config_load(settings, count, argc, argv, NULL, error, sizeof(error));
    if (loaded == HV_CONFIG_HELP) {
        hv_config_print_usage(settings, count, program, "[OPTIONS]");
        exit(0);
    }

    hv_log_level level = HV_LOG_INFO;
    if (loaded == HV_CONFIG_OK && hv_log_level_parse(*log_level, &level) != 0) {
        snprintf(error, sizeof(error), "invalid log level \"%s\": expected debug, info, warn or error", *log_level);
        loaded = HV_CONFIG_ERROR;
    }
    if (loaded == HV_CONFIG_ERROR) {
        fprintf(stderr, "%s: %s\n", program, error);
        exit(2);
    }
    hv_log_init(component, level);
}

void hv_service_log_start(const hv_setting *settings, size_t count, const char *program, const char *version)
{
    char described[2048];
    char message[64];
    hv_config_describe(settings, count, described, sizeof(described));
    snprintf(message, sizeof(message), "starting %s", program);
    HV_INFO(message, HV_STR("version", version), HV_STR("config", described));
}

int hv_service_signal_fd(void)
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
}
