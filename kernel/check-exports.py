#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""check-exports.py OBJ [NEWSRC]: every symbol of ours that code which can be
built as a module uses must be exported.

OBJ is a built kernel build directory (O=, e.g. build/kbuild-test) in which
everything is built in, so modpost never sees the problem there.  NEWSRC
(default: kernel/src beside this script) holds our new source files; their
objects in OBJ are "ours".  For every other object of OBJ that uses a symbol
defined by one of ours (nm -u), the check asks Kbuild whether that object can
end up in a module:

  * the module it belongs to comes from Kbuild itself: the compile command
    saved in the object's .cmd file carries -DKBUILD_MODFILE, the composite
    object it is linked into (net/ipv6/tcp_ipv6.o -> net/ipv6/ipv6);
  * that module can be a module when its Kbuild Makefile lists it as
    obj-$(CONFIG_X) (or obj-m) with X a tristate symbol in Kconfig.

Such a use needs an EXPORT_SYMBOL*() in our object (an __export_symbol_<sym>
label, __ksymtab_<sym> in older trees), or modpost fails on a config where
the user is =m (Debian's: IPV6=m, INET_TCP_DIAG=m).

Only code built in OBJ is seen, and #ifdef MODULE paths are not: the modular
build (make kernel-modular) is the full check.  Exits 1 naming each missing
export, 2 when OBJ is not built.
"""
import os
import re
import subprocess
import sys

MODFILE_RE = re.compile(r"-DKBUILD_MODFILE=\S*?\"([^\"]+)\"")
MODNAME_RE = re.compile(r"-DKBUILD_MODNAME=\S*?\"([^\"]+)\"")
# obj-$(CONFIG_X), obj-y/m, and obj-$(subst m,y,$(CONFIG_X)) (built in
# whatever X is: net/ipv6's inet6_hashtables.o).
OBJ_ASSIGN_RE = re.compile(
    r"^obj-(\$\(subst m,y,\$\(CONFIG_\w+\)\)|\$\(CONFIG_(\w+)\)|[ym])\s*[:+]?=(.*)$")
KCONFIG_ENTRY_RE = re.compile(r"^\s*(?:menu)?config\s+(\w+)\s*$")
KCONFIG_TYPE_RE = re.compile(r"^\s*(tristate|def_tristate|bool|def_bool)\b")
KCONFIG_END_RE = re.compile(
    r"^\s*(help|---help---|(menu)?config|choice|endchoice|comment|menu|endmenu|if|endif|source|osource|rsource)\b")


def die(msg, code=2):
    print(f"check-exports: {msg}", file=sys.stderr)
    sys.exit(code)


def nm(path, *opts):
    """(type, name) for each symbol nm lists in the object."""
    out = subprocess.run(["nm", *opts, path], check=True, capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2:
            syms.append((f[-2], f[-1]))
    return syms


def modfile_of(obj_dir, rel_obj):
    """(module, is_module): the module (or would-be module) Kbuild links
    rel_obj into, from its .cmd file; is_module when compiled as one."""
    d, b = os.path.split(rel_obj)
    try:
        with open(os.path.join(obj_dir, d, f".{b}.cmd"), errors="replace") as f:
            cmd = f.readline()
    except FileNotFoundError:
        return None, False
    m = MODFILE_RE.search(cmd)
    if m:
        return m.group(1), False
    m = MODNAME_RE.search(cmd)
    if m and " -DMODULE " in cmd:
        return m.group(1), True
    return None, False


_makefiles = {}


def kbuild_assignments(tree, d):
    """{'path/x.o': {'CONFIG_X' or 'y' or 'm', ...}} for the Kbuild file of source dir d."""
    if d in _makefiles:
        return _makefiles[d]
    res = {}
    for name in ("Kbuild", "Makefile"):
        path = os.path.join(tree, d, name)
        if os.path.isfile(path):
            break
    else:
        _makefiles[d] = res
        return res
    with open(path, errors="replace") as f:
        text = f.read().replace("\\\n", " ")
    for line in text.splitlines():
        m = OBJ_ASSIGN_RE.match(line.split("#", 1)[0].strip())
        if not m:
            continue
        guard = "y" if m.group(1).startswith("$(subst") else (m.group(2) or m.group(1))
        for word in m.group(3).split():
            if word.endswith(".o"):
                res.setdefault(os.path.normpath(word), set()).add(guard)
    _makefiles[d] = res
    return res


def module_guards(tree, modfile):
    """Guards of the obj- lines naming modfile.o, searching its dir then the parents."""
    # Top-level objects have a modfile of "/name" (Kbuild's obj is empty).
    d, name = os.path.split(os.path.normpath(modfile).lstrip("/"))
    rel = name + ".o"
    while True:
        guards = kbuild_assignments(tree, d).get(rel)
        if guards:
            return guards
        if not d:
            return None
        d, up = os.path.split(d)
        rel = os.path.join(up, rel)


_tristate = None


def tristate_symbols(tree):
    """Names of all Kconfig symbols declared tristate somewhere in the tree."""
    global _tristate
    if _tristate is not None:
        return _tristate
    _tristate = set()
    for root, dirs, files in os.walk(tree):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for fn in files:
            if not fn.startswith("Kconfig"):
                continue
            cur = None
            with open(os.path.join(root, fn), errors="replace") as f:
                for line in f:
                    m = KCONFIG_ENTRY_RE.match(line)
                    if m:
                        cur = m.group(1)
                        continue
                    if cur is None:
                        continue
                    t = KCONFIG_TYPE_RE.match(line)
                    if t:
                        if t.group(1).endswith("tristate"):
                            _tristate.add(cur)
                        cur = None
                    elif KCONFIG_END_RE.match(line):
                        cur = None
    return _tristate


def can_be_module(tree, modfile):
    """(True/False/None, why): None when Kbuild's Makefiles do not name it."""
    guards = module_guards(tree, modfile)
    if guards is None:
        return None, f"no obj- line names {modfile}.o"
    for g in sorted(guards):
        if g == "m":
            return True, "obj-m"
        if g != "y" and g in tristate_symbols(tree):
            return True, f"CONFIG_{g} is tristate"
    return False, "built in only: " + ", ".join(
        "obj-y" if g == "y" else f"CONFIG_{g} is bool" for g in sorted(guards))


def main():
    if len(sys.argv) not in (2, 3):
        die("usage: check-exports.py OBJ [NEWSRC]")
    obj_dir = os.path.realpath(sys.argv[1])
    newsrc = os.path.realpath(sys.argv[2] if len(sys.argv) == 3 else
                              os.path.join(os.path.dirname(os.path.realpath(__file__)), "src"))
    if not os.path.isfile(os.path.join(obj_dir, "vmlinux.o")):
        die(f"{obj_dir} is not a built kernel (no vmlinux.o): build it first (make kernel-test)")
    tree = os.path.realpath(os.path.join(obj_dir, "source"))
    if not os.path.isdir(tree):
        die(f"{obj_dir}/source does not point to the kernel source")

    # Ours: the objects of the .c/.S files in NEWSRC, what they define and export.
    defined = {}       # symbol -> our object (relative to OBJ)
    exported = set()
    ours = []
    for root, _, files in os.walk(newsrc):
        for fn in sorted(files):
            if not fn.endswith((".c", ".S")):
                continue
            rel = os.path.relpath(os.path.join(root, fn[:-2] + ".o"), newsrc)
            if not os.path.isfile(os.path.join(obj_dir, rel)):
                print(f"check-exports: note: {rel} is not built in {obj_dir}")
                continue
            ours.append(rel)
            for t, s in nm(os.path.join(obj_dir, rel)):
                if (t.isupper() and t not in "UN") or t == "u":
                    defined[s] = rel
                for p in ("__export_symbol_", "__ksymtab_"):
                    if s.startswith(p):
                        exported.add(s[len(p):])
    if not ours:
        die(f"none of the files in {newsrc} is built in {obj_dir}")

    # Every other compiled object whose string table names one of our symbols.
    needles = [s.encode() for s in defined]
    users = []
    for root, dirs, files in os.walk(obj_dir):
        if root == obj_dir:  # host tools and links, not kernel objects
            dirs[:] = [x for x in dirs if x not in ("source", "scripts", "tools", "usr")]
        for fn in files:
            if not (fn.startswith(".") and fn.endswith(".o.cmd")):
                continue
            rel = os.path.relpath(os.path.join(root, fn[1:-4]), obj_dir)
            stem = os.path.join(tree, rel[:-2])
            if rel in ours or not (os.path.exists(stem + ".c") or os.path.exists(stem + ".S")):
                continue  # ours, or generated (.vmlinux.export.c)
            try:
                with open(os.path.join(obj_dir, rel), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            if any(n in data for n in needles):
                users.append(rel)

    failures = []
    checked = 0
    our_modfiles = {modfile_of(obj_dir, o)[0] for o in ours}
    for rel in sorted(users):
        used = sorted(s for t, s in nm(os.path.join(obj_dir, rel), "-u") if s in defined)
        if not used:
            continue
        modfile, is_module = modfile_of(obj_dir, rel)
        if modfile is None:
            # Not compiled by Kbuild's C/asm rules (e.g. a linked composite).
            continue
        if modfile in our_modfiles:
            continue
        modular, why = (True, "built as a module") if is_module else can_be_module(tree, modfile)
        if modular is False:
            continue
        if modular is None:
            failures.append(f"{rel}: cannot tell whether it can be a module ({why}); "
                            f"it uses {', '.join(used)}")
            continue
        for s in used:
            checked += 1
            if s in exported:
                print(f"check-exports: ok: {rel} ({modfile}, {why}) uses {s}, exported")
            else:
                failures.append(f"{rel} can be a module ({modfile}: {why}) and uses {s}, "
                                f"which {defined[s]} does not export (EXPORT_SYMBOL_GPL)")
    for f in failures:
        print(f"check-exports: FAIL: {f}", file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"check-exports: {checked} uses of our symbols from code that can be a module, all exported")


if __name__ == "__main__":
    main()
