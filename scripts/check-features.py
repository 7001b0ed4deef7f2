#!/usr/bin/env python3
"""Checks that building one crate (`cargo test -p mesh-core`) uses the same third-party features
as the whole workspace. If it does not, cargo recompiles DataFusion and friends (15+ minutes on
2 cores) for a one-crate test run. Fix a reported difference by adding the crate, with the
workspace's features, to crates/mesh-hack/Cargo.toml. Exits 1 when something differs."""
import sys
import subprocess
def tree(sel):
    out = subprocess.run(["cargo","tree",*sel,"-e","normal,build,dev","--prefix","none","-f","{p}|{f}"],capture_output=True,text=True,check=True).stdout
    d = {}
    for line in out.splitlines():
        if "|" not in line: continue
        p, f = line.rsplit("|",1)
        parts = p.split()
        if parts[0].startswith("mesh-"): continue
        d[(parts[0],parts[1])] = frozenset(x.replace(" (*)","") for x in f.split(",") if x)
    return d
ws = tree(["--workspace"])
bad = False
for m in ["mesh-iceberg","mesh-core","mesh-cli"]:
    t = tree(["-p", m])
    for k,f in t.items():
        if ws[k] != f:
            bad = True
            print(m, k, "workspace-only:", sorted(ws[k]-f), "crate-only:", sorted(f-ws[k]))
sys.exit(1 if bad else 0)
