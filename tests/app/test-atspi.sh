#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Runs test-atspi.py (with the app as $1) on its own D-Bus session and accessibility bus.
# Called by meson under `xvfb-run -a`.
set -eu
here=$(dirname "$0")
exec dbus-run-session -- sh -c '
  /usr/libexec/at-spi-bus-launcher --launch-immediately &
  launcher=$!
  sleep 1
  /usr/bin/python3 "$0" "$1"
  status=$?
  kill "$launcher" 2>/dev/null || true
  exit $status
' "$here/test-atspi.py" "$1"
