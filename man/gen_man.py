#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# Build-time generator of the man pages (meson runs it as a custom_target):
#
#   gen_man.py --version V --date YYYY-MM-DD [--settings FILE]
#              [--define NAME=VALUE ...] TEMPLATE OUTPUT
#
# Replaces @VERSION@, @DATE@, @SETTINGS@ and each defined @NAME@ (the
# installation's paths: @SYSCONFDIR@, @UNITDIR@) in a roff template. @SETTINGS@
# is the text of FILE, which the build writes with `jwtd config settings
# --roff`, so the settings described by jwtd.conf(5) are the binary's own
# table and cannot drift from it. The date is SOURCE_DATE_EPOCH's (UTC)
# when that is set, as Debian and other reproducible builds set it, else
# --date: never the clock or a file time, so two builds of one tree write
# the same bytes. This script only fills the placeholders: it must not
# format, reflow or otherwise edit the pages. Stdlib only, python3 >= 3.9.
import argparse
import datetime
import os
import re
import sys

PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def page_date(fallback):
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return fallback
    try:
        when = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        sys.exit(f"gen_man: SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds")
    return when.strftime("%Y-%m-%d")


def main():
    ap = argparse.ArgumentParser(description="fill the placeholders of a man page template")
    ap.add_argument("--version", required=True)
    ap.add_argument("--date", required=True, help="YYYY-MM-DD, used without SOURCE_DATE_EPOCH")
    ap.add_argument("--settings", help="roff text for @SETTINGS@")
    ap.add_argument("--define", action="append", default=[], metavar="NAME=VALUE",
                    help="a value for @NAME@ (upper case)")
    ap.add_argument("template")
    ap.add_argument("output")
    args = ap.parse_args()

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.date):
        sys.exit(f"gen_man: --date {args.date!r} is not YYYY-MM-DD")
    with open(args.template, encoding="utf-8") as f:
        text = f.read()

    values = {"@VERSION@": args.version, "@DATE@": page_date(args.date)}
    for d in args.define:
        name, sep, value = d.partition("=")
        if not sep or not re.fullmatch(r"[A-Z_]+", name):
            sys.exit(f"gen_man: --define {d!r} is not NAME=VALUE")
        values["@%s@" % name] = value
    if args.settings:
        with open(args.settings, encoding="utf-8") as f:
            settings = f.read()
        # An empty table means the binary failed quietly: a page without
        # its settings is worse than no page.
        if not settings.strip():
            sys.exit(f"gen_man: {args.settings} is empty (did `jwtd config settings --roff` fail?)")
        values["@SETTINGS@"] = settings.rstrip("\n")

    # Every placeholder in the template must be known and given: a typo or a
    # missing --settings fails the build rather than ship "@SETINGS@".
    unknown = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if unknown:
        sys.exit(f"gen_man: {args.template}: no value for {', '.join(unknown)}")
    # Substitute in one pass, so that text coming from the settings table is
    # never itself scanned for placeholders.
    out = PLACEHOLDER.sub(lambda m: values[m.group(0)], text)

    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(out)
    os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
