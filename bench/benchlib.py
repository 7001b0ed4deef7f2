"""Shared by the bench drivers: run one engine as a child process and measure it.

Peak RSS is the largest sum of the resident sets of the child and all its descendants (PySpark's
driver is a Python process plus a JVM), sampled every 20 ms with psutil; `max_rss_single` is the
kernel's exact peak of the largest single process (wait4's ru_maxrss), a lower bound that
sampling cannot miss.
"""
import json
import os
import platform
import subprocess
import time

import psutil


def measure(cmd, env=None, cwd=None, log_path=None):
    started = time.perf_counter()
    log = open(log_path, "wb") if log_path else None
    cmd = [str(c) for c in cmd]
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    root = psutil.Process(proc.pid)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        total = 0
        try:
            for p in [root] + root.children(recursive=True):
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.02)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = b""
    if log:
        log.close()
    else:
        output = proc.stdout.read()
        proc.stdout.close()
    single = usage.ru_maxrss * 1024
    return {
        "cmd": [str(c) for c in cmd],
        "rc": proc.returncode,
        "wall_seconds": wall,
        "peak_rss_bytes": max(peak, single),
        "max_rss_single_bytes": single,
        "output": output.decode(errors="replace"),
    }


def machine():
    mem = psutil.virtual_memory().total
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_bytes": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def mib(b):
    return f"{b / 2**20:,.1f} MiB"


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")
