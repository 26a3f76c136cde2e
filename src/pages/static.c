/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pages' two assets, compiled in (scripts/embed.py) from
 * src/pages/static/.
 */
#include <stddef.h>

#include "pages/page.h"
#include "pages/pages.h"

extern const char pages_css[];
extern const size_t pages_css_len;
extern const char pages_js[];
extern const size_t pages_js_len;

void page_static_css(struct request *r)
{
    if (pages_on(r))
        respond_asset(r, "text/css; charset=utf-8", pages_css, pages_css_len);
}

void page_static_js(struct request *r)
{
    if (pages_on(r))
        respond_asset(r, "text/javascript; charset=utf-8", pages_js, pages_js_len);
}
