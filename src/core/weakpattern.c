/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of weakpattern.h.
 */
#include "core/weakpattern.h"

#include <stdbool.h>
#include <string.h>

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* All of p is one unit of at most half its length, repeated whole:
 * 88888888, 123123123, qwertyqwerty, 19841984. */
static bool repeated(const char *p, size_t len)
{
    for (size_t unit = 1; unit <= len / 2; unit++) {
        if (len % unit)
            continue;
        size_t i = unit;
        while (i < len && lower(p[i]) == lower(p[i - unit]))
            i++;
        if (i == len)
            return true;
    }
    return false;
}

/* Each character one after (or one before) the last, digits wrapping
 * round: 12345678, 987654321, 0123456789, 1234567890, abcdefgh. */
static bool sequential(const char *p, size_t len)
{
    for (int step = -1; step <= 1; step += 2) {
        size_t i = 1;
        for (; i < len; i++) {
            char a = lower(p[i - 1]), b = lower(p[i]);
            bool digits = a >= '0' && a <= '9' && b >= '0' && b <= '9';
            bool letters = a >= 'a' && a <= 'z' && b >= 'a' && b <= 'z';
            int d = b - a;
            if (digits && (d == step || d == -9 * step))
                continue;
            if (letters && d == step)
                continue;
            break;
        }
        if (i == len)
            return true;
    }
    return false;
}

/* All of p is a run along one row of a US keyboard, either way:
 * qwertyuiop, poiuytrewq, lkjhgfdsa, asdfghjk. */
static bool keyboard_run(const char *p, size_t len)
{
    static const char *const rows[] = {"`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'",
                                       "zxcvbnm,./"};
    char s[WEAKPATTERN_MAX_BYTES];
    for (size_t i = 0; i < len; i++)
        s[i] = lower(p[i]);
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const char *row = rows[r];
        size_t n = strlen(row);
        for (size_t start = 0; start + len <= n; start++) {
            bool fwd = true, back = true;
            for (size_t i = 0; i < len && (fwd || back); i++) {
                fwd = fwd && s[i] == row[start + i];
                back = back && s[i] == row[start + len - 1 - i];
            }
            if (fwd || back)
                return true;
        }
    }
    return false;
}

static int num(const char *p, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

static bool day_month_ok(int d, int m)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m >= 1 && m <= 12 && d >= 1 && d <= days[m - 1];
}

/* Eight digits that are a date of 1900-2099: DDMMYYYY, MMDDYYYY or
 * YYYYMMDD (01012009, 12251990, 19870315). */
static bool date8(const char *p, size_t len)
{
    if (len != 8)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    int tail_year = num(p + 4, 4), head_year = num(p, 4);
    bool tail = tail_year >= 1900 && tail_year <= 2099;
    bool head = head_year >= 1900 && head_year <= 2099;
    return (tail && (day_month_ok(num(p, 2), num(p + 2, 2)) ||
                     day_month_ok(num(p + 2, 2), num(p, 2)))) ||
           (head && day_month_ok(num(p + 6, 2), num(p + 4, 2)));
}

const char *weakpattern_of(const char *pw, size_t len)
{
    if (!pw || len < 2 || len >= WEAKPATTERN_MAX_BYTES)
        return NULL;
    if (repeated(pw, len))
        return "a repetition";
    if (sequential(pw, len))
        return "a sequence";
    if (keyboard_run(pw, len))
        return "a row of the keyboard";
    if (date8(pw, len))
        return "a date";
    return NULL;
}
