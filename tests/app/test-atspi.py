#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# AT-SPI smoke test: starts the real app (argv[1]) on an empty library, as a screen reader
# user would meet it, and finds the "New Machine" button by its accessible name; presses it
# and checks that the New Machine wizard opens. Run by test-atspi.sh inside
# xvfb-run + dbus-run-session with the accessibility bus started. Prints TAP.

import os
import subprocess
import sys
import tempfile
import time

import gi

gi.require_version('Atspi', '2.0')
from gi.repository import Atspi  # noqa: E402


def find_all(node, pred, depth=0, out=None):
    if out is None:
        out = []
    if node is None or depth > 40:
        return out
    try:
        if pred(node):
            out.append(node)
        for i in range(node.get_child_count()):
            find_all(node.get_child_at_index(i), pred, depth + 1, out)
    except Exception:  # an object that went away while walking
        pass
    return out


def find_app(name, pid, timeout):
    end = time.time() + timeout
    while time.time() < end:
        desktop = Atspi.get_desktop(0)
        for i in range(desktop.get_child_count()):
            app = desktop.get_child_at_index(i)
            try:
                if app is not None and (app.get_name() == name or app.get_process_id() == pid):
                    return app
            except Exception:
                pass
        time.sleep(0.5)
    return None


def wait_for(fn, timeout):
    end = time.time() + timeout
    while time.time() < end:
        r = fn()
        if r:
            return r
        time.sleep(0.2)
    return None


def main():
    app_path = sys.argv[1]
    print('1..3')
    tmp = tempfile.mkdtemp(prefix='vireo-atspi-')
    env = dict(os.environ)
    env.update({
        'XDG_DATA_HOME': tmp,
        'XDG_CONFIG_HOME': tmp,
        'VIREO_LIBRARY_DIR': os.path.join(tmp, 'vireo', 'machines'),
        'GSETTINGS_BACKEND': 'memory',
        'GTK_A11Y': 'atspi',
    })
    env.pop('NO_AT_BRIDGE', None)
    proc = subprocess.Popen([app_path], env=env)
    ok = True
    try:
        Atspi.init()
        app = find_app(os.path.basename(app_path), proc.pid, 60)
        if app is None:
            print('not ok 1 the app is on the accessibility bus')
            print('not ok 2 # SKIP no app')
            print('not ok 3 # SKIP no app')
            return 1
        print('ok 1 the app is on the accessibility bus')

        def new_machine_buttons():
            # GTK 4.8 does not always report SHOWING: prefer buttons that say so.
            found = find_all(app, lambda n: n.get_role_name() == 'push button'
                             and n.get_name() == 'New Machine')
            return sorted(found, key=lambda n: not n.get_state_set().contains(
                Atspi.StateType.SHOWING))

        buttons = wait_for(new_machine_buttons, 30)
        if not buttons:
            names = [(n.get_role_name(), n.get_name())
                     for n in find_all(app, lambda n: n.get_role_name() == 'push button')]
            print('not ok 2 a "New Machine" push button is showing')
            print('# push buttons: %r' % names)
            ok = False
        else:
            print('ok 2 a "New Machine" push button is showing (%d found)' % len(buttons))
            button = buttons[0]
            action = button.get_action_iface()
            if action is not None and action.get_n_actions() > 0:
                action.do_action(0)
            wizard = wait_for(lambda: [w for w in find_all(app, lambda n: n.get_role_name() in
                                                           ('frame', 'dialog', 'window'))
                                       if 'New Machine' in (w.get_name() or '')], 20)
            if wizard:
                print('ok 3 pressing it opens the New Machine wizard (%s)' % wizard[0].get_name())
            else:
                names = [(n.get_role_name(), n.get_name()) for n in
                         find_all(app, lambda n: n.get_role_name() in ('frame', 'dialog', 'window'))]
                print('not ok 3 pressing it opens the New Machine wizard')
                print('# windows: %r' % names)
                ok = False
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(['rm', '-rf', tmp])
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
