#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Install the example configuration as <sysconfdir>/jwtd/jwtd.conf, unless
that file exists (run by `meson install`, meson.add_install_script).

Why a script: meson installs each file it knows anew, so install_data would
overwrite an operator's configuration at every `meson install`; and without
the file, the installed unit (`jwtd serve --config <sysconfdir>/jwtd/jwtd.conf`)
exits 2 and systemd does not retry (RestartPreventExitStatus=2). So: the
example when the file is missing, nothing when it is there. Under DESTDIR (a
package build) the staged tree gets the example, and the package manager
keeps an edited file (a dpkg conffile). `meson install --dry-run` does not
run install scripts.

usage: install_config.py EXAMPLE SYSCONFDIR DOCDIR
  SYSCONFDIR and DOCDIR absolute, without DESTDIR; DOCDIR is named in the
  message when an existing file is kept.
"""
import os
import shutil
import sys


def staged(path):
    """path inside $DESTDIR when it is set (meson makes it absolute)."""
    destdir = os.environ.get("DESTDIR", "")
    return os.path.join(destdir, path.lstrip("/")) if destdir else path


def say(text):
    if not os.environ.get("MESON_INSTALL_QUIET"):
        print(text)


def main():
    if len(sys.argv) != 4:
        print("usage: install_config.py EXAMPLE SYSCONFDIR DOCDIR", file=sys.stderr)
        return 2
    example, sysconfdir, docdir = sys.argv[1:]
    target = os.path.join(sysconfdir, "jwtd", "jwtd.conf")
    dest = staged(target)
    if os.path.lexists(dest):
        say("Keeping %s (never overwritten; this version's example: %s)"
            % (dest, os.path.join(docdir, "jwtd.conf.example")))
        return 0
    folder = os.path.dirname(dest)
    if not os.path.isdir(folder):
        os.makedirs(folder)
        os.chmod(folder, 0o755)  # whatever the umask: the service user reads it
    shutil.copyfile(example, dest)
    # No secret in the example; docs/operations.md says to make it
    # root:jwtd 0640 before one goes in.
    os.chmod(dest, 0o644)
    say("Installing %s to %s" % (example, dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
