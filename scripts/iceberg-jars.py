#!/usr/bin/env python3
"""Builds the two jars that run Iceberg 1.10 in PySpark 3.5 offline (what Glue 5.1 runs).

    python3 scripts/iceberg-jars.py DIR     # prints the comma-separated jar paths (spark.jars)

1. `iceberg-spark-runtime-3.5_2.12-1.10.2.jar`, copied from the PyPI wheel
   snowpark-connect-deps-iceberg. That build of the runtime jar lacks its shaded Jackson, so the
   first table access fails with NoClassDefFoundError .../shaded/com/fasterxml/jackson/...
2. `iceberg-shaded-jackson-2.18.8.jar`: jackson-{core,databind,annotations} 2.18.8 from the
   wheel snowpark-connect-deps-2, relocated as Iceberg's own build relocates them
   (`com/fasterxml/jackson` -> `org/apache/iceberg/shaded/com/fasterxml/jackson`) in every class
   file's constant pool and entry path.

Both wheels are pinned by hash in tests/python/requirements-iceberg-jars.txt. The work is done
once: DIR/.stamp holds a hash of that file and of this script, and a later call with the same
stamp only prints the paths.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "..", "tests", "python", "requirements-iceberg-jars.txt")
RUNTIME_JAR = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
JACKSON_JARS = ["jackson-core-2.18.8.jar", "jackson-databind-2.18.8.jar", "jackson-annotations-2.18.8.jar"]
SHADED_JAR = "iceberg-shaded-jackson-2.18.8.jar"
OLD = b"com/fasterxml/jackson"
NEW = b"org/apache/iceberg/shaded/com/fasterxml/jackson"


def utf8_entries(b: bytes) -> list[tuple[int, int]]:
    """Offsets and lengths of the CONSTANT_Utf8 entries of a class file's constant pool (JVMS 4.4)."""
    if b[:4] != b"\xca\xfe\xba\xbe":
        raise ValueError("not a class file")
    count = struct.unpack(">H", b[8:10])[0]
    i, k, out = 10, 1, []
    while k < count:
        tag = b[i]
        if tag == 1:
            n = struct.unpack(">H", b[i + 1 : i + 3])[0]
            out.append((i, n))
            i += 3 + n
        elif tag in (3, 4, 9, 10, 11, 12, 17, 18):
            i += 5
        elif tag in (5, 6):  # long and double take two slots
            i += 9
            k += 1
        elif tag in (7, 8, 16, 19, 20):
            i += 3
        elif tag == 15:
            i += 4
        else:
            raise ValueError(f"unknown constant pool tag {tag} at byte {i}")
        k += 1
    return out


def relocate_class(b: bytes) -> bytes:
    """The class with every constant-pool string rewritten (lengths fixed); the rest is unchanged."""
    out, pos = bytearray(), 0
    for i, n in utf8_entries(b):
        out += b[pos:i]
        s = b[i + 3 : i + 3 + n].replace(OLD, NEW)
        if len(s) > 0xFFFF:
            raise ValueError("relocated constant longer than 65535 bytes")
        out += b"\x01" + struct.pack(">H", len(s)) + s
        pos = i + 3 + n
    out += b[pos:]
    return bytes(out)


def stamp() -> str:
    h = hashlib.sha256()
    for path in (REQUIREMENTS, os.path.abspath(__file__)):
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def member(wheel: zipfile.ZipFile, name: str) -> bytes:
    found = [n for n in wheel.namelist() if n.endswith("/jars/" + name)]
    if len(found) != 1:
        raise SystemExit(f"{wheel.filename}: expected one jars/{name}, found {found}")
    return wheel.read(found[0])


def build(target: str) -> None:
    with tempfile.TemporaryDirectory(prefix="iceberg-jars-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--require-hashes", "-r", REQUIREMENTS, "-d", tmp],
            check=True,
        )
        wheels = {n.split("-")[0]: os.path.join(tmp, n) for n in os.listdir(tmp) if n.endswith(".whl")}
        staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(target) or ".")
        os.chmod(staging, 0o755)
        try:
            with zipfile.ZipFile(wheels["snowpark_connect_deps_iceberg"]) as w:
                with open(os.path.join(staging, RUNTIME_JAR), "wb") as f:
                    f.write(member(w, RUNTIME_JAR))
            classes = 0
            with zipfile.ZipFile(wheels["snowpark_connect_deps_2"]) as w, zipfile.ZipFile(
                os.path.join(staging, SHADED_JAR), "w", zipfile.ZIP_DEFLATED
            ) as out:
                seen = set()
                for jar_name in JACKSON_JARS:
                    with zipfile.ZipFile(io.BytesIO(member(w, jar_name))) as jar:
                        for entry in jar.namelist():
                            # Multi-release variants are optional; the base classes are enough on Java 17.
                            if not entry.endswith(".class") or entry.startswith("META-INF/"):
                                continue
                            path = entry.replace(OLD.decode(), NEW.decode())
                            if path in seen:
                                continue
                            seen.add(path)
                            out.writestr(path, relocate_class(jar.read(entry)))
                            classes += 1
            if classes < 500:
                raise SystemExit(f"only {classes} Jackson classes relocated; the wheel's layout changed")
            with open(os.path.join(staging, ".stamp"), "w") as f:
                f.write(stamp())
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
            print(f"== built {RUNTIME_JAR} and {SHADED_JAR} ({classes} classes) into {target}", file=sys.stderr)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    target = os.path.abspath(sys.argv[1])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    marker = os.path.join(target, ".stamp")
    if not (os.path.isfile(marker) and open(marker).read() == stamp()):
        build(target)
    print(",".join(os.path.join(target, j) for j in (RUNTIME_JAR, SHADED_JAR)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
