"""Remove what the real node leaves on the host when its processes are gone.

    cleanup.py processes SOCKET        kill the containerd shims that served SOCKET
    cleanup.py cgroups NAME            kill every process in the cgroup NAME (all v1 hierarchies and
                                       the unified one) and remove it with its children
    cleanup.py mounts DIR...           unmount everything mounted at or below each DIR, deepest first
    cleanup.py iptables PREFIX...      delete the chains named PREFIX* in every table (IPv4 and IPv6)
                                       and every rule that jumps to them
    cleanup.py links DIR TARGET        delete the symbolic links in DIR that point below TARGET
    cleanup.py leftovers STATE NAME BRIDGE CHAIN-PREFIX...
                                       print what is left of the node (empty when nothing is): used
                                       by `status` and the tests

Containers run outside the process tree of whoever started them, so these are found
by what they hold (a socket path, a cgroup, a mount point), never by a process name.
Only the standard library: this runs with any python3, also when the venv is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

CGROUP_ROOT = "/sys/fs/cgroup"


def _cmdline(pid: str) -> list[str]:
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def shim_pids(socket: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        argv = _cmdline(pid)
        if argv and "containerd-shim" in os.path.basename(argv[0]) and socket in argv:
            found.append(int(pid))
    return found


def _kill_and_wait(pids: list[int], timeout: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(os.path.exists("/proc/%d" % pid) for pid in pids):
            time.sleep(0.1)


def processes(socket: str) -> None:
    _kill_and_wait(shim_pids(socket))


def cgroup_dirs(name: str) -> list[str]:
    """The directories of cgroup ``name`` in every mounted hierarchy."""
    found = []
    if not os.path.isdir(CGROUP_ROOT):
        return found
    for hierarchy in sorted(os.listdir(CGROUP_ROOT)):
        path = os.path.join(CGROUP_ROOT, hierarchy, name.strip("/"))
        if os.path.isdir(path):
            found.append(path)
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.procs")):  # a pure v2 host
        path = os.path.join(CGROUP_ROOT, name.strip("/"))
        if os.path.isdir(path):
            found.append(path)
    return found


def _cgroup_pids(top: str) -> set[int]:
    pids = set()
    for path, _dirs, files in os.walk(top):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(path, "cgroup.procs")) as handle:
                    pids.update(int(line) for line in handle if line.strip())
            except OSError:
                pass
    return pids


def cgroups(name: str) -> None:
    tops = cgroup_dirs(name)
    for _attempt in range(20):
        pids = set()
        for top in tops:
            pids |= _cgroup_pids(top)
        if not pids:
            break
        _kill_and_wait(sorted(pids), timeout=2.0)
    for top in tops:
        for path, _dirs, _files in sorted(os.walk(top, topdown=False), key=lambda w: -w[0].count("/")):
            for _attempt in range(20):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def _unescape(path: str) -> str:
    # /proc/self/mountinfo writes space, tab, newline and backslash as octal escapes.
    return path.encode().decode("unicode_escape") if "\\" in path else path


def mount_points(prefixes: list[str]) -> list[str]:
    roots = [os.path.realpath(p).rstrip("/") for p in prefixes]
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = _unescape(line.split()[4])
            if any(point == root or point.startswith(root + "/") for root in roots):
                found.append(point)
    return found


def mounts(prefixes: list[str]) -> None:
    for _attempt in range(5):
        points = mount_points(prefixes)
        if not points:
            return
        # Deepest first; a point mounted twice is unmounted as often as it appears.
        for point in sorted(points, key=lambda p: (-p.count("/"), p)):
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _ours(chain: str, prefixes: list[str]) -> bool:
    return any(chain.startswith(prefix) for prefix in prefixes)


def iptables_rules(binary: str, table: str) -> list[str] | None:
    proc = subprocess.run([binary, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False)
    return proc.stdout.splitlines() if proc.returncode == 0 else None


def chains_of(rules: list[str], prefixes: list[str]) -> list[str]:
    return [line.split()[1] for line in rules if line.startswith("-N ") and _ours(line.split()[1], prefixes)]


def restore_script(rules: list[str], table: str, prefixes: list[str]) -> str:
    """An iptables-restore --noflush script: drop the jumps into our chains, flush them, delete them."""
    ours = chains_of(rules, prefixes)
    lines = ["*" + table]
    lines += [":%s - [0:0]" % chain for chain in ours]  # with --noflush this empties the chain
    for line in rules:
        if not line.startswith("-A "):
            continue
        parts = line.split()
        chain = parts[1]
        target = parts[parts.index("-j") + 1] if "-j" in parts else ""
        if not _ours(chain, prefixes) and (_ours(target, prefixes) or
                                           ("-g" in parts and _ours(parts[parts.index("-g") + 1], prefixes))):
            lines.append("-D" + line[2:])
    lines += ["-X %s" % chain for chain in ours]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def iptables(prefixes: list[str]) -> None:
    for binary in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            rules = iptables_rules(binary, table)
            if not rules:
                continue
            script = restore_script(rules, table, prefixes)
            if script.count("\n") <= 2:  # nothing of ours in this table
                continue
            proc = subprocess.run([binary + "-restore", "-w", "--noflush"], input=script, text=True,
                                  capture_output=True, check=False)
            if proc.returncode != 0:
                print("cleanup: %s-restore (%s) failed: %s" % (binary, table, proc.stderr.strip()), file=sys.stderr)


def links(directory: str, target: str) -> None:
    if not os.path.isdir(directory):
        return
    target = target.rstrip("/") + "/"
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.islink(path) and os.readlink(path).startswith(target):
            os.unlink(path)


def leftovers(state: str, cgroup: str, bridge: str, prefixes: list[str]) -> list[str]:
    found = []
    socket = os.path.join(state, "containerd", "containerd.sock")
    found += ["process %d (containerd shim)" % pid for pid in shim_pids(socket)]
    for top in cgroup_dirs(cgroup):
        found += ["process %d in cgroup %s" % (pid, top) for pid in sorted(_cgroup_pids(top))]
        found.append("cgroup " + top)
    found += ["mount " + point for point in mount_points([state])]
    if os.path.exists("/sys/class/net/" + bridge):
        found.append("network interface " + bridge)
    for binary in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            for chain in chains_of(iptables_rules(binary, table) or [], prefixes):
                found.append("%s chain %s/%s" % (binary, table, chain))
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, args = argv[1], argv[2:]
    if command == "processes" and len(args) == 1:
        processes(args[0])
    elif command == "cgroups" and len(args) == 1:
        cgroups(args[0])
    elif command == "mounts" and args:
        mounts(args)
    elif command == "iptables" and args:
        iptables(args)
    elif command == "links" and len(args) == 2:
        links(*args)
    elif command == "leftovers" and len(args) >= 4:
        for item in leftovers(args[0], args[1], args[2], args[3:]):
            print(item)
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
