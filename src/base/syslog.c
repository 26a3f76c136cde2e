/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The system-log copy of log lines (log.h, log_to_syslog), apart from
 * log.c because <syslog.h> defines LOG_INFO and the other names of our log
 * levels. Facility authpriv: these are authentication events.
 */
#include <stddef.h>
#include <syslog.h>

void log_syslog_open(const char *tag);
void log_syslog_write(int level, const char *line, size_t len);

void log_syslog_open(const char *tag)
{
    openlog(tag, LOG_PID, LOG_AUTHPRIV);
}

void log_syslog_write(int level, const char *line, size_t len)
{
    static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
    syslog(prio[level >= 0 && level < 4 ? level : 1], "%.*s", (int)len, line);
}
