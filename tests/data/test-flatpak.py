#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Flatpak manifest (suite 'data'): flatpak/org.vireo.Vireo.json parses, asks for what
Vireo needs and nothing broader, and every dependency that meson requires comes either from
the GNOME runtime or from a module that the manifest builds.

  - finish-args: --device=kvm (never --device=all), --share=network, --socket=wayland and
    --socket=fallback-x11 (not --socket=x11, which would keep X11 on a Wayland session);
  - runtime org.gnome.Platform / sdk org.gnome.Sdk, a runtime-version of at least
    MIN_RUNTIME; command "vireo"; the last module builds this tree (type "dir", path "..")
    with meson;
  - every dependency('NAME') in the project's meson.build files (found by a regular
    expression; dependency('') placeholders and 'threads' left out) is in RUNTIME_PROVIDES
    or in MODULE_PROVIDES for a module the manifest has.

RUNTIME_PROVIDES is what org.gnome.Platform (GNOME 48, on the freedesktop SDK 24.08)
provides as pkg-config modules to an app built against org.gnome.Sdk. Keep it to what the
runtime really ships: libslirp is not there, and VTE for GTK 4 is left to the manifest
(the runtime's VTE, where present, follows GNOME's schedule; the manifest pins the one
Vireo is tested with). Debian 12 builds Vireo against GTK 4.8 and libadwaita 1.2; the
Flatpak builds against the runtime's newer ones, which meson's `version: '>= …'` accepts.

Usage: test-flatpak.py SRCDIR      (TAP output)
"""

import json
import re
import sys
from pathlib import Path

MANIFEST = "flatpak/org.vireo.Vireo.json"
MIN_RUNTIME = 47

# pkg-config names that org.gnome.Platform provides (GNOME runtime on the freedesktop SDK)
RUNTIME_PROVIDES = {
    # freedesktop SDK
    "glib-2.0", "gio-2.0", "gio-unix-2.0", "gobject-2.0", "gmodule-2.0", "zlib", "libzstd",
    "epoxy", "cairo", "pango", "gstreamer-1.0", "gstreamer-app-1.0", "gstreamer-base-1.0",
    "gstreamer-video-1.0", "gstreamer-pbutils-1.0", "gstreamer-audio-1.0", "libpcre2-8",
    "liblz4", "gnutls", "fribidi", "icu-uc", "libsystemd",
    # GNOME on top
    "gtk4", "libadwaita-1", "graphene-1.0", "gdk-pixbuf-2.0",
}

# what each module of the manifest provides, by module name
MODULE_PROVIDES = {
    "libslirp": {"slirp"},
    "vte": {"vte-2.91-gtk4"},
}

# meson pseudo-dependencies that need nothing from the runtime
BUILTIN = {"threads", ""}


def meson_dependencies(srcdir):
    deps = {}
    for f in sorted(srcdir.rglob("meson.build")):
        rel = f.relative_to(srcdir)
        if rel.parts[0] in ("subprojects",) or rel.parts[0].startswith("build"):
            continue
        for m in re.finditer(r"(?<![\w.])dependency\(\s*'([^']*)'", f.read_text()):
            deps.setdefault(m.group(1), []).append(str(rel))
    return deps


def main():
    srcdir = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
    results = []

    def check(name, problems):
        results.append((name, problems))

    try:
        manifest = json.loads((srcdir / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        print("1..1")
        print(f"not ok 1 - {MANIFEST} parses: {e}")
        return 1
    check(f"{MANIFEST} parses", [])

    args = manifest.get("finish-args", [])
    p = []
    if "--device=kvm" not in args:
        p.append("finish-args lacks --device=kvm")
    if "--device=all" in args:
        p.append("finish-args has --device=all: ask for --device=kvm only")
    if "--share=network" not in args:
        p.append("finish-args lacks --share=network (user networking)")
    for sock in ("--socket=wayland", "--socket=fallback-x11"):
        if sock not in args:
            p.append(f"finish-args lacks {sock}")
    if "--socket=x11" in args:
        p.append("finish-args has --socket=x11: use --socket=fallback-x11")
    unknown = [a for a in args if a.startswith("--filesystem=host") or a == "--device=shm"]
    if unknown:
        p.append(f"finish-args asks for more than Vireo needs: {unknown}")
    check("finish-args: kvm, network, wayland and fallback-x11, nothing broader", p)

    p = []
    if manifest.get("runtime") != "org.gnome.Platform":
        p.append(f"runtime is {manifest.get('runtime')}, not org.gnome.Platform")
    if manifest.get("sdk") != "org.gnome.Sdk":
        p.append(f"sdk is {manifest.get('sdk')}, not org.gnome.Sdk")
    rv = str(manifest.get("runtime-version", ""))
    if not rv.isdigit() or int(rv) < MIN_RUNTIME:
        p.append(f"runtime-version {rv!r}: use a current GNOME runtime (>= {MIN_RUNTIME})")
    if manifest.get("command") != "vireo":
        p.append(f"command is {manifest.get('command')!r}, not 'vireo'")
    app_id = manifest.get("id") or manifest.get("app-id")
    if app_id != "org.vireo.Vireo":
        p.append(f"id is {app_id!r}, not org.vireo.Vireo")
    check(f"GNOME runtime {rv}, command vireo, id org.vireo.Vireo", p)

    modules = manifest.get("modules", [])
    names = [m.get("name") if isinstance(m, dict) else str(m) for m in modules]
    p = []
    last = modules[-1] if modules else {}
    if not isinstance(last, dict) or last.get("buildsystem") != "meson" or not any(
            s.get("type") == "dir" and s.get("path") == ".." for s in last.get("sources", [])):
        p.append("the last module must build this tree: buildsystem meson, source "
                 "{type: dir, path: ..}")
    for m in modules:
        if not isinstance(m, dict):
            continue
        for s in m.get("sources", []):
            if s.get("type") == "archive" and not s.get("sha256"):
                p.append(f"module {m.get('name')}: archive source without sha256")
            if s.get("type") == "git" and not (s.get("commit") or s.get("tag")):
                p.append(f"module {m.get('name')}: git source without commit or tag")
    check(f"modules {names}: sources pinned, Vireo built last from this tree", p)

    # Firmware boot: the GNOME runtime has no SeaBIOS, so a module builds it, and Vireo is
    # configured to look where that module installs it.
    p = []
    installs = " ".join(c for m in modules if isinstance(m, dict)
                        for c in m.get("build-commands", []))
    for f in ("bios.bin", "vgabios-bochs-display.bin"):
        if f"/app/share/seabios/{f}" not in installs:
            p.append(f"no module installs /app/share/seabios/{f}")
    if "-Dseabios_dir=/app/share/seabios" not in last.get("config-opts", []):
        p.append("the vireo module lacks -Dseabios_dir=/app/share/seabios")
    check("SeaBIOS and its bochs-display ROM built into /app/share/seabios, where Vireo "
          "looks", p)

    provided = set(RUNTIME_PROVIDES)
    for n in names:
        provided |= MODULE_PROVIDES.get(n, set())
    deps = meson_dependencies(srcdir)
    p = []
    for dep, where in sorted(deps.items()):
        if dep in BUILTIN or dep in provided:
            continue
        p.append(f"meson requires dependency('{dep}') ({', '.join(sorted(set(where)))}), "
                 "which neither org.gnome.Platform nor a module of the manifest provides")
    check(f"every meson dependency is provided ({', '.join(sorted(d for d in deps if d not in BUILTIN))})", p)

    print(f"1..{len(results)}")
    failed = 0
    for i, (name, problems) in enumerate(results, 1):
        if problems:
            failed += 1
            print(f"not ok {i} - {name}")
            for x in problems:
                print(f"# {x}")
        else:
            print(f"ok {i} - {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
