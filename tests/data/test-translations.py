#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Translation completeness (suite 'data').

For every language in po/LINGUAS:
  - `msgfmt --check --statistics` accepts the .po and reports 0 fuzzy and 0 untranslated
    messages;
  - the .po's messages (msgctxt + msgid + msgid_plural, obsolete #~ entries left out) are
    exactly those of the current template, regenerated here into a temporary folder with
    xgettext the way meson's i18n.gettext(preset: 'glib') does (`meson compile vireo-pot`):
    the same keywords and flags, the sources of po/POTFILES.in, relative to the source root.
    So a new string in the code, not yet merged or translated, fails this test.
It also checks that po/vireo.pot is that template (same messages).

Usage: test-translations.py SRCDIR     (TAP output)
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# meson's i18n 'glib' preset (mesonbuild/modules/i18n.py), as in the vireo-pot target
XGETTEXT_ARGS = [
    "--from-code=UTF-8", "--add-comments",
    "--keyword=_", "--keyword=N_", "--keyword=C_:1c,2", "--keyword=NC_:1c,2",
    "--keyword=g_dcgettext:2", "--keyword=g_dngettext:2,3", "--keyword=g_dpgettext2:2c,3",
    "--flag=N_:1:pass-c-format", "--flag=C_:2:pass-c-format", "--flag=NC_:2:pass-c-format",
    "--flag=g_dngettext:2:pass-c-format", "--flag=g_strdup_printf:1:c-format",
    "--flag=g_string_printf:2:c-format", "--flag=g_string_append_printf:2:c-format",
    "--flag=g_error_new:3:c-format", "--flag=g_set_error:4:c-format",
    "--flag=g_markup_printf_escaped:1:c-format", "--flag=g_log:3:c-format",
    "--flag=g_print:1:c-format", "--flag=g_printerr:1:c-format", "--flag=g_printf:1:c-format",
    "--flag=g_fprintf:2:c-format", "--flag=g_sprintf:2:c-format",
    "--flag=g_snprintf:3:c-format",
]


def unquote(s):
    s = s.strip()
    assert s.startswith('"') and s.endswith('"'), s
    return (s[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t")
            .replace("\\\\", "\\"))


def parse_po(path):
    """Returns {(msgctxt, msgid, msgid_plural): {"fuzzy": bool, "msgstr": [str]}},
    without the header and obsolete entries."""
    entries = {}
    cur = None
    field = None

    def flush():
        if cur is not None and cur.get("msgid") is not None and not cur.get("obsolete"):
            key = (cur.get("msgctxt"), cur["msgid"], cur.get("msgid_plural"))
            if key != (None, "", None):   # the header
                entries[key] = {"fuzzy": cur.get("fuzzy", False),
                                "msgstr": [cur["msgstr"][k] for k in sorted(cur["msgstr"])]}

    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.rstrip("\n")
        if not line.strip():
            flush()
            cur, field = None, None
            continue
        if cur is None:
            cur = {"msgstr": {}}
        if line.startswith("#~"):
            cur["obsolete"] = True
            continue
        if line.startswith("#,"):
            if "fuzzy" in [f.strip() for f in line[2:].split(",")]:
                cur["fuzzy"] = True
            continue
        if line.startswith("#"):
            continue
        m = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")$', line)
        if m:
            if m.group(1) == "msgctxt" and cur.get("msgid") is not None:
                flush()   # entries not separated by a blank line
                cur = {"msgstr": {}}
            name = m.group(1)
            if name.startswith("msgstr"):
                field = ("msgstr", int(m.group(2) or 0))
                cur["msgstr"][field[1]] = unquote(m.group(3))
            else:
                field = (name, None)
                cur[name] = unquote(m.group(3))
        elif line.startswith('"') and field is not None:
            if field[0] == "msgstr":
                cur["msgstr"][field[1]] += unquote(line)
            else:
                cur[field[0]] += unquote(line)
    flush()
    return entries


def describe(key):
    ctxt, msgid, _ = key
    s = msgid if len(msgid) <= 60 else msgid[:57] + "…"
    return (f"[{ctxt}] " if ctxt else "") + repr(s)


def main():
    srcdir = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2])
    podir = srcdir / "po"
    langs = [l.strip() for l in (podir / "LINGUAS").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    tests = []

    with tempfile.TemporaryDirectory(prefix="vireo-pot-") as tmp:
        pot = Path(tmp) / "vireo.pot"
        r = subprocess.run(["xgettext", "--package-name=vireo", "-p", tmp,
                            "-f", str(podir / "POTFILES.in"), "-D", str(srcdir), "-k_",
                            "-o", "vireo.pot"] + XGETTEXT_ARGS,
                           capture_output=True, text=True)
        if r.returncode != 0 or not pot.exists():
            print("1..1")
            print(f"not ok 1 - xgettext could not make the template: {r.stderr.strip()}")
            return 1
        template = parse_po(pot)

    # po/vireo.pot is generated (`vireo-pot`, git-ignored): compare it only where one exists.
    # The languages below are checked against the template made just now either way.
    committed = parse_po(podir / "vireo.pot") if (podir / "vireo.pot").exists() else template
    pot_problems = []
    new_msgs = sorted(set(template) - set(committed), key=str)
    gone_msgs = sorted(set(committed) - set(template), key=str)
    if new_msgs:
        pot_problems.append(f"{len(new_msgs)} message(s) of the sources missing from "
                            "po/vireo.pot (run `meson compile -C BUILD vireo-pot`), e.g. "
                            + ", ".join(describe(k) for k in new_msgs[:3]))
    if gone_msgs:
        pot_problems.append(f"{len(gone_msgs)} message(s) in po/vireo.pot that the sources no "
                            "longer have (run `meson compile -C BUILD vireo-pot`), e.g. "
                            + ", ".join(describe(k) for k in gone_msgs[:3]))
    tests.append(("po/vireo.pot is the current template", pot_problems))

    for lang in langs:
        po = podir / f"{lang}.po"
        problems = []
        if not po.exists():
            tests.append((f"{lang}: complete", [f"{lang}: po/{lang}.po does not exist"]))
            continue
        env = dict(os.environ, LC_ALL="C", LANGUAGE="")
        r = subprocess.run(["msgfmt", "--check", "--statistics", "-o", os.devnull, str(po)],
                           capture_output=True, text=True, env=env)
        stats = (r.stdout + r.stderr).strip()
        if r.returncode != 0:
            problems.append(f"{lang}: msgfmt --check failed: {stats}")
        fuzzy = re.search(r"(\d+) fuzzy", stats)
        untr = re.search(r"(\d+) untranslated", stats)
        if fuzzy:
            problems.append(f"{lang}: {fuzzy.group(1)} fuzzy message(s) (msgfmt: {stats})")
        if untr:
            problems.append(f"{lang}: {untr.group(1)} untranslated message(s) (msgfmt: {stats})")

        entries = parse_po(po)
        missing = sorted(set(template) - set(entries), key=str)
        stale = sorted(set(entries) - set(template), key=str)
        if missing:
            problems.append(f"{lang}: {len(missing)} message(s) of the current template not in "
                            f"po/{lang}.po (merge with `meson compile -C BUILD vireo-update-po` "
                            f"and translate), e.g. " + ", ".join(describe(k) for k in missing[:3]))
        if stale:
            problems.append(f"{lang}: {len(stale)} message(s) in po/{lang}.po that the sources "
                            "no longer have (not marked obsolete), e.g. "
                            + ", ".join(describe(k) for k in stale[:3]))
        if not fuzzy and not untr:
            # msgfmt counts empty msgstr; also catch a plural form left empty
            empty = [k for k, e in entries.items()
                     if k in template and any(s == "" for s in e["msgstr"])]
            if empty:
                problems.append(f"{lang}: {len(empty)} message(s) with an empty plural form, "
                                "e.g. " + ", ".join(describe(k) for k in empty[:3]))
        tests.append((f"{lang}: all {len(template)} messages of the template translated, "
                      "none fuzzy", problems))

    print(f"1..{len(tests)}")
    failed = 0
    for i, (name, problems) in enumerate(tests, 1):
        if problems:
            failed += 1
            print(f"not ok {i} - {name}")
            for p in problems:
                print(f"# {p}")
        else:
            print(f"ok {i} - {name}")
    if failed:
        print(f"# {failed} of {len(tests)} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
