/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the HTML pages share: the layout, escaping, the pages'
 * Content-Security-Policy, form bodies, the CSRF check of a form post, the
 * signed-in identity (from the access cookie), the checked return address
 * (rd) and the session cookies a page sets.
 *
 * Pages are a front end like the JSON API: they translate a form into a
 * service call (core/) and its result into HTML; no rule lives here.
 */
#ifndef JWTD_PAGES_PAGE_H
#define JWTD_PAGES_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/util.h"
#include "core/service.h"
#include "http/request.h"
#include "pages/form.h"

#define RD_MAX 2048

struct page {
    struct request *r;
    struct buf b;
    bool broken; /* an append failed (memory, PAGE_MAX): page_end answers 500 */
    /* The ids of the inputs the page's error is about, space-separated
     * (NULL: none, or the error is about no one field). Set after
     * page_begin, before the form: those inputs say they are invalid and
     * name the error (PAGE_ERROR_ID) as their description. */
    const char *fault;
};

/* The id of a page's error notice (page_notice with ok false). */
#define PAGE_ERROR_ID "page-error"

/* Start a page: doctype, head, header; `wide` for the account page. */
void page_begin(struct page *p, struct request *r, const char *title, bool wide);

/* Append HTML as is (constant markup only). */
void page_raw(struct page *p, const char *html);

/* Append text, escaped for element content and attribute values. */
void page_text(struct page *p, const char *text);
void page_textn(struct page *p, const char *text, size_t len);

/* Append formatted HTML: every %s argument must be trusted markup or
 * already escaped; use page_text for anything else. */
void page_fmt(struct page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A notice box (role=alert for errors, with the id PAGE_ERROR_ID: one per
 * page; role=status for good news). */
void page_notice(struct page *p, bool ok, const char *text);

/* Whether the input with this id is one the page's error is about. */
bool page_at_fault(const struct page *p, const char *id);

/* The accessibility attributes of the input with this id, with a leading
 * space: aria-invalid and the error in aria-describedby when it is at
 * fault, hint (the id of its hint, or NULL) in aria-describedby too, and
 * autofocus when focus (callers give one input of a page focus: the first
 * field, or the field at fault). */
void page_input_aria(struct page *p, const char *id, const char *hint, bool focus);

/* A hidden input (value escaped). */
void page_hidden(struct page *p, const char *name, const char *value);

/* Finish and answer with status; frees the page. */
void page_end(struct page *p, unsigned status);

/* A notice a page shows after a form's redirect to it with ?done=key. */
struct page_done {
    const char *key;
    const char *text;
};

/* The text of key in a table of n notices; NULL for a NULL or unknown key. */
const char *page_done_text(const struct page_done *table, size_t n, const char *key);

/* A whole page with a title and one message (and a link back). */
/* The HTML answer to a form over JWTD_MAX_BODY (413), also given by the
 * server when it refuses the body before a page's handler runs. */
void page_form_too_large(struct request *r);

/* The HTML answer to a method a page's form route does not take (405; the
 * server sets Allow): its address opened in the address bar, GET /logout.
 * 404 when the pages are off, as every page. */
void page_method_not_allowed(struct request *r);

void page_message(struct request *r, unsigned status, const char *title, bool ok,
                  const char *text, const char *link, const char *link_text);

/* The pages are on (JWTD_PAGES); when off, answers 404 and returns false. */
bool pages_on(struct request *r);

/* A page's POST: the CSRF check (the Origin or Sec-Fetch-Site of a
 * same-origin form must be there and match) and the form body. Answers and
 * returns false when either fails. */
bool page_post(struct request *r, struct form *f);

/* The signed-in identity from the access cookie (no answer when none). */
bool page_identity(struct request *r, struct identity *ret);

/*
 * A return address checked against JWTD_REDIRECT_DOMAINS: a path of this
 * server ("/account", not "//host"), or an absolute http(s) URL whose host
 * is listed (https only, unless JWTD_PUBLIC_URL itself is http). *out gets
 * it; false for anything else (NULL or empty: false, out "").
 */
bool page_rd_ok(const struct config *cfg, const char *rd, char out[RD_MAX + 1]);

/* rd, percent-encoded for a query string, into out (cap bytes with the
 * NUL; 3 * strlen(rd) + 1 always hold it whole, else it stops before the
 * first character that does not fit). */
void page_urlencode(const char *in, char *out, size_t cap);

/* Set the session cookies of a new grant (tokens and the hint). */
bool page_set_session(struct request *r, const struct session_grant *g);

/* Clear every session cookie. */
void page_clear_session(struct request *r);

/* A sentence for a failed service result, for a page. */
const char *page_failure_text(const struct svc_result *res, char *buf, size_t cap);

/* The HTTP status of a failed service result, for a page, with the
 * Retry-After the JSON API sends for the same refusal (too many attempts,
 * busy): a page is no way around being told when to come back. */
unsigned page_failure_status(struct request *r, const struct svc_result *res);

#endif /* JWTD_PAGES_PAGE_H */
